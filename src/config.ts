import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { RedisConnection } from './store/redis-store.js'

const Int = (min: number, max: number, def: number) => Type.Integer({ minimum: min, maximum: max, default: def })

/** The environment the service reads (API.md, "Configuration"). Names are the variables'. */
export const EnvSchema = Type.Object({
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Int(0, 65_535, 3000),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_PORT: Int(1, 65_535, 6379),
  REDIS_PASSWORD: Type.Optional(Type.String()),
  REDIS_DB: Int(0, 10_000, 0),
  METRICS_FLUSH_INTERVAL_MS: Int(10, 60_000, 200),
  METRICS_CACHE_TTL_MS: Int(0, 3_600_000, 5000),
  METRICS_RETENTION_HOURS: Int(1, 8760, 168),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' })
})

export type Env = Static<typeof EnvSchema>

export interface Config {
  host: string
  port: number
  /** Undefined: the embedded in-process store. */
  redis: RedisConnection | undefined
  flushIntervalMs: number
  cacheTtlMs: number
  retentionHours: number
  logLevel: string
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Reads the configuration from environment variables. Throws a ConfigError whose one-line message
 * names the first bad variable. Empty values count as unset.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const v = env[key]
    if (v !== undefined && v.trim() !== '') raw[key] = v.trim()
  }
  const value = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw))
  const error = Value.Errors(EnvSchema, value).First()
  if (error !== undefined) {
    const name = error.path.replace(/^\//, '')
    const given = raw[name]
    const choices = (error.schema.anyOf as Array<{ const?: unknown }> | undefined)?.map((s) => s.const)
    const why = choices !== undefined ? `expected one of ${choices.join(', ')}` : error.message.toLowerCase()
    throw new ConfigError(`invalid ${name}${given === undefined ? '' : `=${JSON.stringify(given)}`}: ${why}`)
  }
  return fromEnv(value as Env)
}

export function fromEnv (e: Env): Config {
  let redis: RedisConnection | undefined
  if (e.REDIS_URL !== undefined) redis = { url: e.REDIS_URL }
  else if (e.REDIS_HOST !== undefined) {
    redis = { host: e.REDIS_HOST, port: e.REDIS_PORT, db: e.REDIS_DB, ...(e.REDIS_PASSWORD !== undefined ? { password: e.REDIS_PASSWORD } : {}) }
  }
  return {
    host: e.HOST,
    port: e.PORT,
    redis,
    flushIntervalMs: e.METRICS_FLUSH_INTERVAL_MS,
    cacheTtlMs: e.METRICS_CACHE_TTL_MS,
    retentionHours: e.METRICS_RETENTION_HOURS,
    logLevel: e.LOG_LEVEL
  }
}

/** The configuration with every default, for tests and embedding. */
export function defaultConfig (overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), ...overrides }
}
