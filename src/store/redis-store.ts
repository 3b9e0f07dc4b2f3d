import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type RedisOptions, type Result } from 'ioredis'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { BlockCache, fetchAll, mergeRead, namesOf, planFetch, SealIndexes, type FetchPlan, type Fetched } from './fetch.js'
import { LAYOUT_VERSION, locate, SCHEMA_KEY, SCHEMA_TTL_MS, sealsKey, type SealUnit } from './layout.js'
import { APPLY_LUA, FETCH_LUA, SEAL_LUA } from './lua.js'
import { MARKER_TTL_MS, MAX_PART_OPS, PARTS_PER_GROUP, type Claim, type SharedCount, type Fields, type GroupWrite, type MergeRead, type MetricsStore } from './types.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    metricsApply: (numKeys: number, ...args: Array<string | number>) => Result<number, Context>
    metricsFetchBuffer: (numKeys: number, ...args: Array<string | number>) => Result<Buffer[], Context>
    metricsSeal: (numKeys: number, ...args: Array<string | number>) => Result<number, Context>
  }
}

/** A URL, the parts of one (the REDIS_HOST family), or the seed nodes of a Redis Cluster. */
export type RedisConnection =
  | { url: string }
  | { host: string, port: number, db: number, password?: string, tls?: boolean }
  | { cluster: Array<{ host: string, port: number }>, password?: string, tls?: boolean }

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
  if ('url' in conn) return base
  const { tls, ...rest } = conn
  const node = 'cluster' in conn ? { ...(conn.password !== undefined ? { password: conn.password } : {}) } : rest
  return { ...base, ...node, ...(tls === true ? { tls: {} } : {}) }
}

/**
 * Cluster settings: the per-node settings above and no offline queue. Each command is routed by its
 * own keys (one hash slot each); automatic pipelining stays off because it picks a command's node from
 * its first argument, which for a script is the key count, not a key. Redirections (MOVED, ASK,
 * TRYAGAIN during a slot migration) are followed by ioredis; a write that still fails is retried by
 * the flusher with the same sequence, which the flush script makes harmless.
 */
export function clusterOptions (conn: RedisConnection, extra: RedisOptions = {}): ClusterOptions {
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...node } = redisOptions(conn, extra)
  return {
    lazyConnect,
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy as ClusterOptions['clusterRetryStrategy'],
    retryDelayOnTryAgain: 50,
    retryDelayOnMoved: 0,
    slotsRefreshTimeout: 2_000,
    redisOptions: node
  }
}

/** Ends each token of a key's packed ops in APPLY's arguments (see lua.ts). */
const US = '\u001f'

/** Commands per pipeline: a chunk of flush groups encodes in about a millisecond. */
export const PIPELINE_CHUNK = 32

/** A group's keys in parts of about MAX_PART_OPS operations (a key larger than that is a part alone). */
function partsOfGroup (keys: GroupWrite['keys']): Array<GroupWrite['keys']> {
  const parts: Array<GroupWrite['keys']> = [[]]
  let ops = 0
  for (const kw of keys) {
    if (ops > 0 && ops + kw.ops.length > MAX_PART_OPS) {
      parts.push([])
      ops = 0
    }
    parts[parts.length - 1]!.push(kw)
    ops += kw.ops.length
  }
  return parts
}

/** One command of a batch, sent through a pipeline (one node) or on its own (a cluster). */
type Command = (c: ChainableCommander | Cluster) => unknown

/**
 * The Redis store: one EVALSHA per group on writes, one per read. On one node each batch is one
 * pipeline (without MULTI a pipeline answers one reply per command: `exec()` is null only after MULTI).
 * On a cluster the commands go out together, each to the node serving its keys; every command's keys
 * share one hash slot (the `{…}` tag), so none is ever refused as CROSSSLOT.
 */
export class RedisStore implements MetricsStore {
  readonly kind = 'redis' as const
  readonly client: Redis | Cluster
  #closed = false

  constructor (conn: RedisConnection, extra: RedisOptions = {}) {
    if ('cluster' in conn) this.client = new Cluster(conn.cluster, clusterOptions(conn, extra))
    else {
      const options = redisOptions(conn, extra)
      this.client = 'url' in conn ? new Redis(conn.url, options) : new Redis(options)
    }
    this.client.defineCommand('metricsApply', { lua: APPLY_LUA })
    this.client.defineCommand('metricsFetch', { lua: FETCH_LUA })
    this.client.defineCommand('metricsSeal', { lua: SEAL_LUA })
  }

  /** Decoded sealed blocks of this store's reads. */
  readonly #blocks = new BlockCache()
  /** The seal indexes of the tags read, so that fetches can leave out what they say is sealed. */
  readonly #seals = new SealIndexes()

  /**
   * Connects, waiting at most `timeoutMs`. Rejects on an error Redis itself answered (wrong password,
   * no password, unknown database): those do not heal by reconnecting. The rejection is a new error
   * named `StartupError` whose one-line message says what to fix; the client's own error carries the
   * command that failed, password included (`HELLO 3 AUTH user password`), so it is never passed on.
   * A network failure resolves false and leaves the client reconnecting in the background.
   */
  async connect (timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    let replyError: Error | undefined
    // A cluster reports a node's refusal as the last node error of a failed slots refresh.
    const onError = (err: Error & { lastNodeError?: Error }): void => {
      const reply = err.name === 'ReplyError' ? err : err.lastNodeError?.name === 'ReplyError' ? err.lastNodeError : undefined
      replyError ??= reply
    }
    this.client.on('error', onError)
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
    try {
      const ok = await Promise.race([this.client.connect().then(() => true, () => false), timeout])
      if (replyError !== undefined) {
        this.client.disconnect()
        // clusterOptions always sets the nodes' options.
        const options = this.client instanceof Cluster ? this.client.options.redisOptions! : this.client.options
        const said = options.password ? replyError.message.split(options.password).join('***') : replyError.message
        const code = said.split(' ', 1)[0]!
        const why = code === 'WRONGPASS'
          ? 'authentication failed (WRONGPASS): check REDIS_PASSWORD or the password in REDIS_URL'
          : code === 'NOAUTH'
            ? 'a password is required (NOAUTH): set REDIS_PASSWORD or put the password in REDIS_URL'
            : /DB index is out of range/i.test(said)
              ? `database ${String(options.db)} does not exist (${said}): check REDIS_DB or the database in REDIS_URL`
              : `refused the connection (${said})`
        throw Object.assign(new Error(`redis: ${why}`), { name: 'StartupError', code })
      }
      return ok
    } finally {
      clearTimeout(timer)
      this.client.off('error', onError)
    }
  }

  /** Sends the commands in one round trip per node; one [error, reply] per command, in order. */
  async #batch (commands: Command[]): Promise<Array<[Error | null, unknown]>> {
    const client = this.client
    if (client instanceof Cluster) {
      const settle = async (c: Command): Promise<[Error | null, unknown]> =>
        await (c(client) as Promise<unknown>).then((v): [null, unknown] => [null, v], (err: Error): [Error, null] => [err, null])
      return await Promise.all(commands.map(settle))
    }
    // Large batches (a flush under heavy load carries hundreds of groups) go out as several
    // pipelines, the event loop free between them: encoding them all at once would stall it.
    const replies: Array<Promise<Array<[Error | null, unknown]>>> = []
    for (let i = 0; i < commands.length; i += PIPELINE_CHUNK) {
      if (i > 0) await nextTurn()
      const pipeline = client.pipeline()
      for (const c of commands.slice(i, i + PIPELINE_CHUNK)) c(pipeline)
      replies.push(pipeline.exec() as Promise<Array<[Error | null, unknown]>>)
    }
    return (await Promise.all(replies)).flat()
  }

  async applyGroups (seq: number, groups: GroupWrite[]): Promise<Array<Error | null>> {
    const commands: Command[] = []
    /** The commands of each group: its parts. */
    const partsOf: number[] = []
    for (const g of groups) {
      // The seal index of the group's tag: the marker shares it.
      const seals = sealsKey(g.marker.slice(0, g.marker.indexOf('}') + 1))
      const parts = partsOfGroup(g.keys)
      parts.forEach((keys, p) => {
        const args: Array<string | number> = [g.marker, seals]
        for (const kw of keys) args.push(kw.key)
        args.push(seq * PARTS_PER_GROUP + p, MARKER_TTL_MS)
        for (const kw of keys) {
          let packed = ''
          for (const [op, field, value] of kw.ops) packed += op + US + field + US + value + US
          const loc = locate(kw.key)
          args.push(kw.expireAt, packed, loc === null ? '' : `${loc.period}|${loc.sub}`)
        }
        commands.push((c) => c.metricsApply(keys.length + 2, ...args))
      })
      partsOf.push(parts.length)
    }
    const results = await this.#batch(commands)
    let at = 0
    // A group's error: its first part's that failed (the parts after it wait for it).
    return partsOf.map((n) => {
      const errs = results.slice(at, at += n).map(([err]) => err)
      return errs.find((e) => e !== null) ?? null
    })
  }

  async shareCounts (items: SharedCount[]): Promise<number[]> {
    const commands: Command[] = []
    for (const { key, member, count, expireAt } of items) {
      commands.push((c) => c.hset(key, member, count), (c) => c.pexpireat(key, expireAt), (c) => c.hvals(key))
    }
    const results = await this.#batch(commands)
    return items.map((_, i) => {
      const [err, counts] = results[3 * i + 2]!
      if (err !== null) throw err
      return (counts as string[]).reduce((sum, c) => sum + Number(c), 0)
    })
  }

  async claim (key: string, member: string, expireAt: number): Promise<boolean> {
    return await this.client.set(key, member, 'PXAT', expireAt, 'NX') === 'OK'
  }

  async claimOnce (items: Claim[]): Promise<Array<boolean | Error>> {
    if (items.length === 0) return []
    const results = await this.#batch(items.map(({ key, token, expireAt }) => (c) => c.set(key, token, 'PXAT', expireAt, 'NX', 'GET')))
    return results.map(([err, held], i) => err ?? (held === null || held === items[i]!.token))
  }

  /** Fetches the stored keys behind `keys` (live hashes and their blocks): one script call per list. */
  async #fetch (lists: ReadonlyArray<readonly string[]>, answered?: () => void): Promise<Array<{ plan: FetchPlan, got: Fetched }>> {
    const fetched = await fetchAll(lists.map(planFetch), this.#blocks, this.#seals, async (calls) => {
      const results = await this.#batch(calls.map((call) => (c) => c.metricsFetchBuffer(call.keys.length, ...call.keys, ...call.args)))
      return results.map(([err, value]) => {
        if (err !== null) throw err
        return value as Buffer[]
      })
    })
    // Answered only when every call was: a call that timed out (Redis frozen) is not store time.
    answered?.()
    return fetched
  }

  async fieldNames (keys: string[]): Promise<string[][]> {
    if (keys.length === 0) return []
    // Keys of different hash slots: one fetch each.
    const fetched = await this.#fetch(keys.map((k) => [k]))
    return fetched.map(({ plan, got }) => namesOf(plan, got, 1)[0]!)
  }

  async liveFieldNames (keys: string[]): Promise<string[][]> {
    const results = await this.#batch(keys.map((key) => (c) => c.hkeys(key)))
    return keys.map((_, i) => {
      const [err, names] = results[i]!
      if (err !== null) throw err
      return (names as string[]).map(String)
    })
  }

  async read (reads: MergeRead[], answered?: () => void): Promise<Fields[][]> {
    if (reads.length === 0) return []
    const fetched = await this.#fetch(reads.map((r) => r.keys), answered)
    return fetched.map(({ plan, got }, i) => mergeRead(reads[i]!, plan, got))
  }

  async seal (units: SealUnit[]): Promise<number> {
    const args = (u: SealUnit): Array<string | number> => {
      const out: Array<string | number> = [u.keys.length + 2, u.block, u.seals, ...u.keys, u.period, u.prune?.hours ?? '', u.prune?.spans ?? '']
      u.keys.forEach((_, i) => out.push(u.subs[i]!, u.parts[i]!))
      return out
    }
    const results = await this.#batch(units.map((u) => (c) => c.metricsSeal(...(args(u) as [number, ...string[]]))))
    let bytes = 0
    for (const [err, n] of results) {
      if (err !== null) throw err
      bytes += n as number
    }
    return bytes
  }

  /**
   * Checks that the store holds this layout, or nothing yet (then says so for later instances), and
   * refreshes the schema key. Rejects with a StartupError when the store holds a layout this
   * version does not know: it must not write into it.
   */
  async checkLayout (): Promise<void> {
    const held = await this.client.set(SCHEMA_KEY, LAYOUT_VERSION, 'PX', SCHEMA_TTL_MS, 'NX', 'GET')
    if (held !== null && held !== String(LAYOUT_VERSION)) {
      throw Object.assign(new Error(`redis: the store holds stored-layout version ${held} (${SCHEMA_KEY}); this version of the service reads and writes version ${LAYOUT_VERSION} only`), { name: 'StartupError', code: 'LAYOUT' })
    }
    await this.client.pexpire(SCHEMA_KEY, SCHEMA_TTL_MS)
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
