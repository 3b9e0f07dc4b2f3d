import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { DEFAULT_THRESHOLDS as H, type HealthThresholds } from './metrics/status.js'
import type { RedisConnection } from './store/redis-store.js'

const Int = (min: number, max: number, def: number) => Type.Integer({ minimum: min, maximum: max, default: def })
const Num = (min: number, max: number, def: number) => Type.Number({ minimum: min, maximum: max, default: def })
/** Comma-separated tokens (several, so they can be rotated), each at least 16 characters. */
const TokenList = Type.String({ pattern: '^\\s*[^\\s,]{16,}\\s*(,\\s*[^\\s,]{16,}\\s*)*$', description: 'comma-separated tokens of 16+ characters' })

/** The environment the service reads (docs/api.md, "Configuration"). Names are the variables'. */
export const EnvSchema = Type.Object({
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Int(0, 65_535, 3000),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'a redis:// or rediss:// URL' })),
  REDIS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_PORT: Int(1, 65_535, 6379),
  REDIS_PASSWORD: Type.Optional(Type.String()),
  REDIS_DB: Int(0, 10_000, 0),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^\\s*[^\\s,]+:\\d{1,5}\\s*(,\\s*[^\\s,]+:\\d{1,5}\\s*)*$', description: 'comma-separated host:port seed nodes' })),
  REDIS_TLS: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
  METRICS_FLUSH_INTERVAL_MS: Int(10, 60_000, 200),
  METRICS_CACHE_TTL_MS: Int(0, 3_600_000, 5000),
  METRICS_RETENTION_HOURS: Int(1, 8760, 168),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  NODE_ENV: Type.Optional(Type.String()),
  METRICS_INGEST_TOKEN: Type.Optional(TokenList),
  METRICS_READ_TOKEN: Type.Optional(TokenList),
  METRICS_ALLOW_ANONYMOUS: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
  METRICS_MAX_BUFFERED_KEYS: Int(100, 100_000_000, 200_000),
  METRICS_IDEMPOTENCY_WINDOW_MS: Int(1000, 86_400_000, 600_000),
  METRICS_SHUTDOWN_DELAY_MS: Int(0, 300_000, 5000),
  // 20 000 requests a second per token (else per IP): twice what one gateway sending 10 000 events/s
  // one per request needs (docs/operations.md, "Rate limits").
  METRICS_RATE_LIMIT_MAX: Int(0, 1_000_000_000, 20_000),
  METRICS_RATE_LIMIT_WINDOW_MS: Int(1000, 86_400_000, 1_000),
  CORS_ORIGINS: Type.Optional(Type.String()),
  METRICS_MAX_MODELS: Int(1, 1_000_000, 1000),
  METRICS_MAX_PROVIDERS: Int(1, 1_000_000, 100),
  METRICS_MAX_GATEWAYS: Int(1, 1_000_000, 100),
  METRICS_EXPORT_GENAI: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
  METRICS_EXPORT_GENAI_TOP: Int(1, 1000, 20),
  METRICS_STREAM_INTERVAL_MS: Int(100, 60_000, 2000),
  METRICS_STREAM_HEARTBEAT_MS: Int(100, 300_000, 15_000),
  METRICS_STREAM_MAX_SUBSCRIBERS: Int(1, 100_000, 1000),
  METRICS_READ_CONCURRENCY: Int(1, 64, 2),
  METRICS_READ_QUEUE: Int(0, 10_000, 64),
  METRICS_READ_BUDGET_MS: Int(0, 1000, 500),
  METRICS_MAX_MODEL_GATEWAYS: Int(1, 10_000_000, 5000),
  METRICS_MAX_MODEL_PROVIDERS: Int(1, 10_000_000, 2000),
  METRICS_MAX_CATALOG_IDS: Int(1, 100_000_000, 50_000),
  // Health states, baselines and anomalies (docs/health.md says why each default is what it is).
  METRICS_STATUS_MIN_SAMPLES: Int(1, 1_000_000, H.minSamples),
  METRICS_STATUS_CONSECUTIVE_MINUTES: Int(1, 20, H.consecutiveMinutes),
  METRICS_STATUS_DEGRADED_UPTIME: Num(0, 100, H.degradedUptime),
  METRICS_STATUS_DOWN_UPTIME: Num(0, 100, H.downUptime),
  METRICS_STATUS_TTFT_FACTOR: Num(1, 1000, H.ttftFactor),
  METRICS_BASELINE_MIN_SAMPLES: Int(1, 1_000_000, H.baselineMinSamples),
  METRICS_ANOMALY_TTFT_FACTOR: Num(1, 1000, H.anomalyTtftFactor),
  METRICS_ANOMALY_ERROR_RATE_PP: Num(0, 100, H.anomalyErrorRatePp)
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
  /** Bearer tokens accepted on the POST routes; empty: no token needed. */
  ingestTokens: string[]
  /** Bearer tokens accepted on the GET /api/ routes; empty: open. */
  readTokens: string[]
  /** Distinct entity-buckets the in-process buffer may hold; beyond it new events get 503. */
  maxBufferedKeys: number
  /** How long a recording request's Idempotency-Key is remembered: its events are applied at most once within it. */
  idempotencyWindowMs: number
  /** On SIGTERM: how long readiness says 503 while the service still accepts, before it stops listening. */
  shutdownDelayMs: number
  /** Requests per window per token (else per IP); 0 turns rate limiting off (token refusals included). */
  rateLimitMax: number
  rateLimitWindowMs: number
  /** Origins allowed by CORS; empty: no CORS headers. */
  corsOrigins: string[]
  /** Distinct ids per hour bucket beyond which events naming a new one are refused (429). */
  maxIds: { model: number, provider: number, gateway: number }
  /**
   * GET /metrics also exports the recorded model metrics as OpenTelemetry GenAI series: for the
   * `topModels` models with the most requests, the rest aggregated as `other`.
   */
  genAiExport: { enabled: boolean, topModels: number }
  /** GET /api/metrics/stream: push interval, heartbeat comment interval, open streams at most. */
  stream: { intervalMs: number, heartbeatMs: number, maxSubscribers: number }
  /**
   * Store reads of the read routes and the stream: in flight at once, waiting at most, and milliseconds
   * of store round trips per second (0: no such limit); beyond them a read is answered 503.
   */
  readBudget: { concurrency: number, queue: number, msPerSecond: number }
  /** Distinct model × gateway and model × provider pairs per hour bucket, likewise. */
  maxPairs: { model_gateway: number, model_provider: number }
  /** Model-list entries stored per hour (each new list's ids, one per fetch carrying a list), likewise. */
  maxCatalogIds: number
  /** Thresholds of the health states, baselines and anomalies. */
  health: HealthThresholds
}

const SECRET = /TOKEN|PASSWORD|REDIS_URL/

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
    const described = error.schema.description as string | undefined
    const why = choices !== undefined ? `expected one of ${choices.join(', ')}` : described !== undefined ? `expected ${described}` : error.message.toLowerCase()
    // Secrets are never echoed: the line ends up in logs.
    const shown = given === undefined || SECRET.test(name) ? '' : `=${JSON.stringify(given)}`
    throw new ConfigError(`invalid ${name}${shown}: ${why}`)
  }
  const parsed = value as Env
  if (parsed.REDIS_CLUSTER_NODES !== undefined && (parsed.REDIS_URL !== undefined || parsed.REDIS_HOST !== undefined)) {
    throw new ConfigError('REDIS_CLUSTER_NODES cannot be combined with REDIS_URL or REDIS_HOST: set one of them')
  }
  if (list(parsed.REDIS_CLUSTER_NODES).some((n) => !(hostPort(n).port >= 1 && hostPort(n).port <= 65_535))) {
    throw new ConfigError('invalid REDIS_CLUSTER_NODES: expected ports in 1..65535')
  }
  if (parsed.REDIS_TLS === 'true' && parsed.REDIS_URL?.startsWith('redis://') === true) {
    throw new ConfigError('REDIS_TLS=true with a redis:// REDIS_URL: use a rediss:// URL for TLS')
  }
  if (parsed.METRICS_STATUS_DOWN_UPTIME > parsed.METRICS_STATUS_DEGRADED_UPTIME) {
    throw new ConfigError(`invalid METRICS_STATUS_DOWN_UPTIME=${parsed.METRICS_STATUS_DOWN_UPTIME}: expected at most METRICS_STATUS_DEGRADED_UPTIME (${parsed.METRICS_STATUS_DEGRADED_UPTIME})`)
  }
  if (parsed.NODE_ENV === 'production' && parsed.METRICS_INGEST_TOKEN === undefined && parsed.METRICS_ALLOW_ANONYMOUS !== 'true') {
    throw new ConfigError('METRICS_INGEST_TOKEN is required with NODE_ENV=production (or set METRICS_ALLOW_ANONYMOUS=true to accept events from anyone)')
  }
  return fromEnv(parsed)
}

export function fromEnv (e: Env): Config {
  let redis: RedisConnection | undefined
  const secure = { ...(e.REDIS_PASSWORD !== undefined ? { password: e.REDIS_PASSWORD } : {}), ...(e.REDIS_TLS === 'true' ? { tls: true } : {}) }
  if (e.REDIS_URL !== undefined) redis = { url: e.REDIS_URL }
  else if (e.REDIS_CLUSTER_NODES !== undefined) redis = { cluster: list(e.REDIS_CLUSTER_NODES).map(hostPort), ...secure }
  else if (e.REDIS_HOST !== undefined) redis = { host: e.REDIS_HOST, port: e.REDIS_PORT, db: e.REDIS_DB, ...secure }
  return {
    host: e.HOST,
    port: e.PORT,
    redis,
    flushIntervalMs: e.METRICS_FLUSH_INTERVAL_MS,
    cacheTtlMs: e.METRICS_CACHE_TTL_MS,
    retentionHours: e.METRICS_RETENTION_HOURS,
    logLevel: e.LOG_LEVEL,
    ingestTokens: list(e.METRICS_INGEST_TOKEN),
    readTokens: list(e.METRICS_READ_TOKEN),
    maxBufferedKeys: e.METRICS_MAX_BUFFERED_KEYS,
    idempotencyWindowMs: e.METRICS_IDEMPOTENCY_WINDOW_MS,
    shutdownDelayMs: e.METRICS_SHUTDOWN_DELAY_MS,
    rateLimitMax: e.METRICS_RATE_LIMIT_MAX,
    rateLimitWindowMs: e.METRICS_RATE_LIMIT_WINDOW_MS,
    corsOrigins: list(e.CORS_ORIGINS),
    maxIds: { model: e.METRICS_MAX_MODELS, provider: e.METRICS_MAX_PROVIDERS, gateway: e.METRICS_MAX_GATEWAYS },
    genAiExport: { enabled: e.METRICS_EXPORT_GENAI === 'true', topModels: e.METRICS_EXPORT_GENAI_TOP },
    stream: { intervalMs: e.METRICS_STREAM_INTERVAL_MS, heartbeatMs: e.METRICS_STREAM_HEARTBEAT_MS, maxSubscribers: e.METRICS_STREAM_MAX_SUBSCRIBERS },
    readBudget: { concurrency: e.METRICS_READ_CONCURRENCY, queue: e.METRICS_READ_QUEUE, msPerSecond: e.METRICS_READ_BUDGET_MS },
    maxPairs: { model_gateway: e.METRICS_MAX_MODEL_GATEWAYS, model_provider: e.METRICS_MAX_MODEL_PROVIDERS },
    maxCatalogIds: e.METRICS_MAX_CATALOG_IDS,
    health: {
      minSamples: e.METRICS_STATUS_MIN_SAMPLES,
      consecutiveMinutes: e.METRICS_STATUS_CONSECUTIVE_MINUTES,
      degradedUptime: e.METRICS_STATUS_DEGRADED_UPTIME,
      downUptime: e.METRICS_STATUS_DOWN_UPTIME,
      ttftFactor: e.METRICS_STATUS_TTFT_FACTOR,
      baselineMinSamples: e.METRICS_BASELINE_MIN_SAMPLES,
      anomalyTtftFactor: e.METRICS_ANOMALY_TTFT_FACTOR,
      anomalyErrorRatePp: e.METRICS_ANOMALY_ERROR_RATE_PP
    }
  }
}

/** `host:port`, the host possibly an IPv6 address in brackets (`[::1]:7000`). */
function hostPort (s: string): { host: string, port: number } {
  const at = s.lastIndexOf(':')
  return { host: s.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(at + 1)) }
}

function list (v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
}

/** The configuration with every default, for tests and embedding. */
export function defaultConfig (overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), ...overrides }
}
