import { loadConfig, type Config } from '../config.js'
import { RedisStore } from '../store/redis-store.js'

/** One step's result line: `PASS  name: reason`. WARN does not fail the command. */
export type Verdict = 'PASS' | 'WARN' | 'FAIL'

export class Report {
  failed = false
  constructor (readonly out: (line: string) => void) {}
  step (verdict: Verdict, name: string, reason: string): void {
    if (verdict === 'FAIL') this.failed = true
    this.out(`${verdict.padEnd(4)}  ${name}: ${reason}`)
  }
}

/** A command's failure the operator must fix: printed as one line, exit code 1. */
export class CliError extends Error {
  override name = 'CliError'
}

/** The service's own configuration, which must name a Redis store (the commands read and write it). */
export function redisConfig (env: NodeJS.ProcessEnv): Config & { redis: NonNullable<Config['redis']> } {
  const config = loadConfig(env)
  if (config.redis === undefined) throw new CliError('no REDIS_URL, REDIS_HOST or REDIS_CLUSTER_NODES set: the service would use its embedded store, which lives in its own process only')
  return config as Config & { redis: NonNullable<Config['redis']> }
}

/**
 * Connects as the service does (RedisStore.connect): a refusal (password, database) rejects with the
 * store's own one-line message, which never holds the password.
 */
export async function connectStore (config: Config & { redis: NonNullable<Config['redis']> }, timeoutMs = 3_000): Promise<RedisStore> {
  const store = new RedisStore(config.redis)
  // Errors after connecting are reported by the commands that meet them; the client's own error
  // events would carry the failed command (password included).
  store.client.on('error', () => {})
  if (!await store.connect(timeoutMs)) {
    await store.close()
    throw new CliError(`redis is not answering within ${timeoutMs} ms`)
  }
  return store
}

/** The Authorization header for a token, or none. */
export function bearer (token: string | undefined): Record<string, string> {
  return token === undefined || token === '' ? {} : { authorization: `Bearer ${token}` }
}
