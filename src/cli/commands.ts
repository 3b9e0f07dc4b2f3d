import { parseArgs } from 'node:util'
import { ConfigError } from '../config.js'
import { WINDOW_NAMES, type WindowName } from '../metrics/buckets.js'
import { ENTITY_TYPES, type EntityType } from '../metrics/events.js'
import { checkRedis, checkService } from './check.js'
import { CliError, connectStore, redisConfig } from './common.js'
import { formatInspection, inspect } from './inspect.js'
import { loadtest } from './loadtest.js'

const USAGE = `usage: llm-gateway-metrics <command> [options]

  check                          Redis as the service's environment configures it (REDIS_URL, …):
                                 version, auth, database, eviction policy, persistence, schema, and a
                                 probe event written and read back
  check --url <base> [--token T] [--read-token T]
                                 a running service: healthz, readyz, a write and its read-back
  loadtest --url <base> [--token T] [--read-token T] [--duration S] [--connections N] [--batch N]
                                 recording load, then the service's counts of it checked
  inspect --type model|provider|gateway --id ID [--window 5m|15m|1h|6h|24h] [--json]
                                 one entity's stored buckets, decoded
`

const out = (line: string): void => { process.stdout.write(line + '\n') }
const err = (line: string): void => { process.stderr.write(line + '\n') }

function int (name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`--${name} must be an integer in ${min}..${max}`)
  return n
}

/** Runs one command; resolves with the exit code. */
export async function main (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // `llm-gateway-metrics --help` asks for the usage as `help` does (it names no command).
  const [first, ...rest] = argv
  const command = first === '--help' || first === '-h' ? 'help' : first
  const { values } = parseArgs({
    args: rest,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      'read-token': { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      batch: { type: 'string' },
      type: { type: 'string' },
      id: { type: 'string' },
      window: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true
  })
  if (values.help === true || command === undefined || command === 'help') {
    out(USAGE)
    return command === undefined ? 2 : 0
  }
  // Tokens may come from the environment, so they stay out of shell history.
  const token = values.token ?? env.METRICS_INGEST_TOKEN?.split(',')[0]?.trim()
  const readToken = values['read-token'] ?? env.METRICS_READ_TOKEN?.split(',')[0]?.trim()
  if (command === 'check') {
    const ok = values.url !== undefined ? await checkService(values.url, token, readToken, out) : await checkRedis(env, out)
    return ok ? 0 : 1
  }
  if (command === 'loadtest') {
    if (values.url === undefined) throw new CliError('loadtest needs --url <base>')
    const ok = await loadtest({
      url: values.url,
      token,
      readToken,
      durationS: int('duration', values.duration, 10, 1, 3600),
      connections: int('connections', values.connections, 10, 1, 1000),
      batch: int('batch', values.batch, 10, 1, 1000)
    }, out, err)
    return ok ? 0 : 1
  }
  if (command === 'inspect') {
    const type = values.type as EntityType | undefined
    const window = (values.window ?? '5m') as WindowName
    if (type === undefined || !ENTITY_TYPES.includes(type)) throw new CliError(`--type must be one of ${ENTITY_TYPES.join(', ')}`)
    if (values.id === undefined) throw new CliError('inspect needs --id')
    if (!WINDOW_NAMES.includes(window)) throw new CliError(`--window must be one of ${WINDOW_NAMES.join(', ')}`)
    const store = await connectStore(redisConfig(env))
    try {
      const x = await inspect(store, type, values.id, window)
      if (values.json === true) out(JSON.stringify(x, null, 2))
      else for (const line of formatInspection(x)) out(line)
    } finally {
      await store.close()
    }
    return 0
  }
  throw new CliError(`unknown command "${command}"\n${USAGE}`)
}

/** One line for the operator's mistakes and refusals; a stack only for the unexpected. */
export function describe (e: unknown): string {
  const x = e as Error
  return x.name === 'CliError' || x.name === 'StartupError' || x instanceof ConfigError || (x as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
    ? `error: ${x.message}`
    : `error: ${String(x.stack)}`
}
