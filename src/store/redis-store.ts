import { Redis, type RedisOptions, type Result } from 'ioredis'
import { APPLY_LUA, MERGE_LUA } from './lua.js'
import { MARKER_TTL_MS, type SharedCount, type Fields, type GroupWrite, type MergeRead, type MetricsStore } from './types.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    metricsApply: (numKeys: number, ...args: Array<string | number>) => Result<number, Context>
    metricsMerge: (numKeys: number, ...args: Array<string | number>) => Result<unknown[], Context>
  }
}

/** Either a URL, or the parts of one (the REDIS_HOST family). */
export type RedisConnection = { url: string } | { host: string, port: number, db: number, password?: string }

/**
 * Client settings chosen so that nothing waits on Redis for long (ioredis 6 otherwise holds a command
 * about 74 s while Redis is down): no offline queue (a command fails at once while disconnected; the
 * flusher keeps the data and retries), one retry per command, a per-command timeout, and a capped
 * reconnect backoff. Unanswered commands are still re-sent after a reconnect: the flush script makes
 * that harmless.
 */
export const REDIS_CLIENT_DEFAULTS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2_000,
  connectTimeout: 2_000,
  retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000)
}

export function redisOptions (conn: RedisConnection, extra: RedisOptions = {}): RedisOptions {
  const base: RedisOptions = { ...REDIS_CLIENT_DEFAULTS, ...extra }
  return 'url' in conn ? base : { ...base, ...conn }
}

function toFields (flat: unknown[]): Fields {
  const out: Fields = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
  return out
}

/**
 * The Redis store: one EVALSHA per group on writes, one per read, each batch in one pipeline. A
 * pipeline without MULTI always answers one reply per command (`exec()` is null only after MULTI).
 */
export class RedisStore implements MetricsStore {
  readonly kind = 'redis' as const
  readonly client: Redis
  #closed = false

  constructor (conn: RedisConnection, extra: RedisOptions = {}) {
    const options = redisOptions(conn, extra)
    this.client = 'url' in conn ? new Redis(conn.url, options) : new Redis(options)
    this.client.defineCommand('metricsApply', { lua: APPLY_LUA })
    this.client.defineCommand('metricsMerge', { lua: MERGE_LUA })
  }

  /**
   * Connects, waiting at most `timeoutMs`. Rejects on an error Redis itself answered (wrong password,
   * unknown database): those do not heal by reconnecting. A network failure resolves false and
   * leaves the client reconnecting in the background.
   */
  async connect (timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    let replyError: Error | undefined
    const onError = (err: Error): void => { if (err.name === 'ReplyError') replyError ??= err }
    this.client.on('error', onError)
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
    try {
      const ok = await Promise.race([this.client.connect().then(() => true, () => false), timeout])
      if (replyError !== undefined) {
        this.client.disconnect()
        throw replyError
      }
      return ok
    } finally {
      clearTimeout(timer)
      this.client.off('error', onError)
    }
  }

  async applyGroups (seq: number, groups: GroupWrite[]): Promise<Array<Error | null>> {
    const pipeline = this.client.pipeline()
    for (const g of groups) {
      const args: Array<string | number> = [g.marker]
      for (const kw of g.keys) args.push(kw.key)
      args.push(seq, MARKER_TTL_MS)
      for (const kw of g.keys) {
        args.push(kw.expireAt, kw.ops.length)
        for (const [op, field, value] of kw.ops) args.push(op, field, value)
      }
      pipeline.metricsApply(g.keys.length + 1, ...args)
    }
    const results = (await pipeline.exec())!
    return groups.map((_, i) => {
      const err = results[i]![0]
      return err
    })
  }

  async shareCounts (items: SharedCount[]): Promise<number[]> {
    const pipeline = this.client.pipeline()
    for (const { key, member, count, expireAt } of items) pipeline.hset(key, member, count).pexpireat(key, expireAt).hvals(key)
    const results = (await pipeline.exec())!
    return items.map((_, i) => {
      const [err, counts] = results[3 * i + 2]!
      if (err !== null) throw err
      return (counts as string[]).reduce((sum, c) => sum + Number(c), 0)
    })
  }

  async fieldNames (keys: string[]): Promise<string[][]> {
    const pipeline = this.client.pipeline()
    for (const key of keys) pipeline.hkeys(key)
    const results = (await pipeline.exec())!
    return keys.map((_, i) => {
      const [err, names] = results[i]!
      if (err !== null) throw err
      return (names as string[]).map(String)
    })
  }

  async read (reads: MergeRead[]): Promise<Fields[][]> {
    if (reads.length === 0) return []
    const pipeline = this.client.pipeline()
    for (const r of reads) pipeline.metricsMerge(r.keys.length, ...r.keys, ...r.slots.map((s, i) => r.counters?.[i] === true ? -(s + 1) : s + 1), r.nSlots)
    const results = (await pipeline.exec())!
    return results.map(([err, value], i) => {
      if (err !== null) throw err
      const slots = value as unknown[][]
      return Array.from({ length: reads[i]!.nSlots }, (_, s) => toFields(slots[s]!))
    })
  }

  async ping (): Promise<void> {
    await this.client.ping()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    try {
      await this.client.quit()
    } catch {
      this.client.disconnect()
    }
  }
}
