/**
 * Fault-injection helpers: a cutting TCP proxy in front of Redis, a Redis with persistence that can be
 * killed and restarted on the same port and directory, and a bounded HTTP load generator.
 *
 * Everything binds to 127.0.0.1; every process started here is stopped by its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { freePort, redisAvailable } from './redis.js'

const CRLF = Buffer.from('\r\n')

/**
 * End offset of the RESP2/RESP3 value starting at `off`, or -1 when `buf` does not hold all of it yet.
 * An attribute (`|`) is returned together with the value it annotates.
 */
export function respValueEnd (buf: Buffer, off: number): number {
  if (off >= buf.length) return -1
  const type = String.fromCharCode(buf[off] as number)
  const le = buf.indexOf(CRLF, off)
  if (le === -1) return -1
  const next = le + 2
  const head = buf.toString('latin1', off + 1, le)
  switch (type) {
    case '+': case '-': case ':': case ',': case '#': case '_': case '(':
      return next
    case '$': case '!': case '=': {
      const len = Number(head)
      if (!Number.isInteger(len)) throw new Error(`bad RESP bulk length ${JSON.stringify(head)}`)
      if (len < 0) return next
      const end = next + len + 2
      return end <= buf.length ? end : -1
    }
    case '*': case '~': case '>': case '%': case '|': {
      const n = Number(head)
      if (!Number.isInteger(n)) throw new Error(`bad RESP aggregate length ${JSON.stringify(head)}`)
      if (n < 0) return next
      const count = type === '%' || type === '|' ? 2 * n : n
      let p = next
      for (let i = 0; i < count; i++) {
        p = respValueEnd(buf, p)
        if (p === -1) return -1
      }
      return type === '|' ? respValueEnd(buf, p) : p
    }
    default:
      // An inline command (client side only): one line.
      return next
  }
}

/** Splits a growing byte stream into complete RESP values. */
class RespSplitter {
  #buf: Buffer = Buffer.alloc(0)

  /** Appends `chunk`; returns the complete values now available (their raw bytes), in order. */
  push (chunk: Buffer): Buffer[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    const out: Buffer[] = []
    let off = 0
    for (;;) {
      const end = respValueEnd(this.#buf, off)
      if (end === -1) break
      out.push(this.#buf.subarray(off, end))
      off = end
    }
    this.#buf = this.#buf.subarray(off)
    return out
  }
}

export interface CutRecord {
  /** Which proxied connection (1-based, in accept order). */
  connection: number
  /** Index of the command (0-based, on that connection) whose reply was dropped. */
  command: number
  /** The dropped reply, as Redis sent it (e.g. `:1\r\n` when the APPLY script wrote). */
  reply: string
}

/**
 * A loopback TCP proxy in front of a Redis port. It forwards both ways; it parses both directions
 * (RESP2/RESP3) so it knows which reply answers which command.
 *
 * `armCut(marker, n)`: the next `n` times the reply to a command whose bytes contain `marker`
 * (case-insensitive) arrives from Redis, the proxy forwards the replies before it, drops that reply
 * and closes both sockets. Redis has executed the command (it replied), the client never learns it:
 * an ambiguous failure. Commands are matched whatever their form (EVAL or EVALSHA), so arm it on a
 * string inside the command's arguments, e.g. `:flushed:` (the APPLY script's marker key).
 *
 * `pause()` stops reading from both sides of every connection (and of new ones) until `resume()`.
 */
export class RedisCutProxy {
  readonly port: number
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #resumers = new Set<() => void>()
  #marker = ''
  #cutsLeft = 0
  #skip = 0
  #paused = false
  /** Every cut made, in order. */
  readonly cutRecords: CutRecord[] = []
  /** Connections accepted since start. */
  connections = 0
  /** Commands seen carrying the marker (whether cut or not). */
  markedCommands = 0
  /** Replies to commands carrying the marker that were forwarded, by reply (e.g. `:1`, `:0`). */
  readonly markedReplies = new Map<string, number>()

  private constructor (server: Server, port: number) {
    this.#server = server
    this.port = port
  }

  static async start (targetPort: number, targetHost = '127.0.0.1'): Promise<RedisCutProxy> {
    let proxy: RedisCutProxy | undefined
    const server = createServer({ pauseOnConnect: true }, (client) => { proxy?.accept(client, targetPort, targetHost) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const addr = server.address()
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0
    proxy = new RedisCutProxy(server, port)
    return proxy
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Cuts made so far. */
  get cuts (): number {
    return this.cutRecords.length
  }

  /** Cuts still armed. */
  get armed (): number {
    return this.#cutsLeft
  }

  /** Watches for `marker` (counting commands and replies) without cutting anything. */
  watch (marker: string): void {
    this.armCut(marker, 0)
  }

  /**
   * Arms `count` cuts on replies to commands carrying `marker`; `skip` replies to such commands are
   * forwarded first (e.g. skip 2 cuts the third command of a flush pipeline, after two were answered).
   */
  armCut (marker: string, count = 1, opts: { skip?: number } = {}): void {
    if (marker === '') throw new Error('armCut needs a marker')
    this.#marker = marker.toLowerCase()
    this.#cutsLeft = count
    this.#skip = opts.skip ?? 0
  }

  disarm (): void {
    this.#cutsLeft = 0
  }

  pause (): void {
    this.#paused = true
    for (const s of this.#sockets) s.pause()
  }

  resume (): void {
    this.#paused = false
    for (const s of this.#sockets) s.resume()
    for (const r of this.#resumers) r()
    this.#resumers.clear()
  }

  /** Stops listening and closes every proxied connection. */
  async close (): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  /** Closes every proxied connection (the client sees the connection drop), keeps listening. */
  dropConnections (): void {
    for (const s of this.#sockets) s.destroy()
  }

  private accept (client: Socket, targetPort: number, targetHost: string): void {
    const id = ++this.connections
    const upstream = connect(targetPort, targetHost)
    this.#sockets.add(client)
    this.#sockets.add(upstream)
    let dead = false
    const kill = (): void => {
      if (dead) return
      dead = true
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', kill)
      s.on('close', () => {
        this.#sockets.delete(s)
        kill()
      })
    }
    const requests = new RespSplitter()
    const replies = new RespSplitter()
    /** For each command sent on this connection and not yet answered: whether it carries the marker. */
    const marked: boolean[] = []
    let answered = 0

    client.on('data', (chunk: Buffer) => {
      if (dead) return
      upstream.write(chunk)
      for (const cmd of requests.push(chunk)) {
        const hit = this.#marker !== '' && cmd.toString('latin1').toLowerCase().includes(this.#marker)
        if (hit) this.markedCommands++
        marked.push(hit)
      }
    })
    upstream.on('data', (chunk: Buffer) => {
      if (dead) return
      const values = replies.push(chunk)
      const forward: Buffer[] = []
      for (const v of values) {
        // A push message (`>`) answers no command.
        const isPush = v[0] === 0x3e
        const cmdIndex = answered
        // Replies come in command order: this one answers the oldest unanswered command.
        const isMarked = !isPush && marked[0] === true
        if (isMarked && this.#cutsLeft > 0 && this.#skip > 0) {
          this.#skip--
        } else if (isMarked && this.#cutsLeft > 0) {
          this.#cutsLeft--
          this.cutRecords.push({ connection: id, command: cmdIndex, reply: v.toString('latin1') })
          dead = true
          upstream.destroy()
          if (forward.length > 0) {
            client.end(Buffer.concat(forward))
            setTimeout(() => client.destroy(), 500).unref()
          } else {
            client.destroy()
          }
          return
        }
        if (isMarked) {
          const key = v.toString('latin1').trim().slice(0, 40)
          this.markedReplies.set(key, (this.markedReplies.get(key) ?? 0) + 1)
        }
        if (!isPush) {
          answered++
          marked.shift()
        }
        forward.push(v)
      }
      if (forward.length > 0) client.write(Buffer.concat(forward))
    })
    const start = (): void => {
      client.resume()
    }
    upstream.once('connect', () => {
      if (dead) return
      if (this.#paused) {
        client.pause()
        upstream.pause()
        this.#resumers.add(start)
      } else {
        start()
      }
    })
  }
}

/** Waits until Redis on `port` answers PING with PONG (an AOF still loading answers LOADING). */
export async function waitForPong (port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: 1000 })
    c.on('error', () => {})
    try {
      await c.connect()
      if ((await c.ping()) === 'PONG') return
    } catch {
      // not up yet
    } finally {
      c.disconnect()
    }
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not answer PING within ${timeoutMs} ms (${attempt + 1} attempts)`)
    await sleep(50)
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Waits for `proc` to exit, sending SIGKILL (by its PID) if it has not after `graceMs`. */
async function waitExit (proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const timer = setTimeout(() => { proc.kill('SIGKILL') }, graceMs)
  await exited
  clearTimeout(timer)
}

/**
 * A redis-server with an append-only file fsynced on every write, so a SIGKILL loses nothing Redis
 * answered; it can be restarted on the same port and directory.
 */
export class PersistentRedis {
  readonly port: number
  readonly dir: string
  #proc: ChildProcess
  #stopped = false

  private constructor (port: number, dir: string, proc: ChildProcess) {
    this.port = port
    this.dir = dir
    this.#proc = proc
  }

  static spawnProcess (port: number, dir: string): ChildProcess {
    return spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''
    ], { stdio: 'ignore' })
  }

  static async start (port?: number, dir?: string): Promise<PersistentRedis> {
    const p = port ?? await freePort()
    const d = dir ?? mkdtempSync(join(tmpdir(), 'metrics-redis-aof-'))
    const proc = PersistentRedis.spawnProcess(p, d)
    const r = new PersistentRedis(p, d, proc)
    try {
      await waitForPong(p, 10_000)
    } catch (err) {
      await r.stop()
      throw err
    }
    return r
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid (): number {
    return this.#proc.pid ?? -1
  }

  get running (): boolean {
    return this.#proc.exitCode === null && this.#proc.signalCode === null
  }

  /** Sends `signal` to the current redis-server (by its PID). */
  signal (signal: NodeJS.Signals): void {
    if (this.running) this.#proc.kill(signal)
  }

  /** SIGKILL, and waits until the process is gone. */
  async kill (): Promise<void> {
    if (!this.running) return
    const exited = new Promise<void>((resolve) => this.#proc.once('exit', () => resolve()))
    this.#proc.kill('SIGCONT')
    this.#proc.kill('SIGKILL')
    await exited
  }

  /** Starts redis-server again on the same port and directory (after `kill`), waits for PONG. */
  async restart (): Promise<void> {
    if (this.running) await this.kill()
    this.#proc = PersistentRedis.spawnProcess(this.port, this.dir)
    await waitForPong(this.port, 10_000)
  }

  /** A client for the test's own reads (not through any proxy). Disconnect it when done. */
  client (): Redis {
    const c = new Redis({ port: this.port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
    c.on('error', () => {})
    return c
  }

  /** SIGCONT then SIGTERM (SIGKILL after 5 s), by PID. */
  async stop (): Promise<void> {
    if (this.running) {
      this.#proc.kill('SIGCONT')
      this.#proc.kill('SIGTERM')
    }
    await waitExit(this.#proc, 5_000)
  }

  /** Stops the server and removes its directory. */
  async dispose (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

interface Teardown {
  teardown: (fn: () => unknown) => void
  comment: (...args: unknown[]) => void
}

/**
 * A persistent Redis for one test, disposed in teardown. When redis-server is missing: under CI=true
 * this throws; elsewhere it returns null and the test says it is skipped.
 */
export async function startPersistentRedis (t: Teardown): Promise<PersistentRedis | null> {
  if (!redisAvailable()) {
    if (process.env.CI === 'true') throw new Error('redis-server is not installed, and CI=true: Redis suites must run in CI')
    t.comment('SKIP: redis-server is not installed (under CI=true this fails)')
    return null
  }
  const r = await PersistentRedis.start()
  t.teardown(async () => { await r.dispose() })
  return r
}

// ---------------------------------------------------------------------------------------------
// Load

export interface ChatEventBody {
  model: string
  success: boolean
  timestamp?: number
  ttft_ms?: number
  total_time_ms?: number
  provider?: string
  gateway?: string
}

export interface PostResult {
  status: number | 'network-error'
  accepted: number
  retryAfter: string | null
  body: unknown
  error?: string
}

/** POSTs one batch to /api/metrics/chat; never throws (a network failure is a result). */
export async function postChat (baseUrl: string, events: ChatEventBody[], opts: { token?: string, timeoutMs?: number } = {}): Promise<PostResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  try {
    const res = await fetch(`${baseUrl}/api/metrics/chat`, {
      method: 'POST',
      headers,
      body: JSON.stringify(events),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000)
    })
    const text = await res.text()
    let body: unknown = text
    try { body = JSON.parse(text) } catch { /* not JSON */ }
    const accepted = res.status === 202 && typeof body === 'object' && body !== null ? Number((body as { accepted?: unknown }).accepted) : 0
    return { status: res.status, accepted, retryAfter: res.headers.get('retry-after'), body }
  } catch (err) {
    return { status: 'network-error', accepted: 0, retryAfter: null, body: null, error: (err as Error).message }
  }
}

export interface LoadStats {
  requests: number
  /** Sum of `accepted` over the 202 answers. */
  accepted: number
  /** Accepted events by model. */
  acceptedByModel: Map<string, number>
  /** Answers by status (`network-error` for a failed connection). */
  statuses: Map<string, number>
  /** Answers that were not 202, with why (first few). */
  samples: string[]
  /** 202 answers whose `accepted` differed from the batch size. */
  badAccepted: number
  /** 503 answers without a Retry-After header. */
  missingRetryAfter: number
}

export function newLoadStats (): LoadStats {
  return { requests: 0, accepted: 0, acceptedByModel: new Map(), statuses: new Map(), samples: [], badAccepted: 0, missingRetryAfter: 0 }
}

export function record (stats: LoadStats, batch: ChatEventBody[], r: PostResult): void {
  stats.requests++
  const key = String(r.status)
  stats.statuses.set(key, (stats.statuses.get(key) ?? 0) + 1)
  if (r.status === 202) {
    if (r.accepted !== batch.length) stats.badAccepted++
    stats.accepted += r.accepted
    for (const e of batch) stats.acceptedByModel.set(e.model, (stats.acceptedByModel.get(e.model) ?? 0) + 1)
    return
  }
  if (r.status === 503 && r.retryAfter === null) stats.missingRetryAfter++
  if (stats.samples.length < 5) stats.samples.push(`${key}: ${r.error ?? JSON.stringify(r.body)}`)
}

/**
 * Runs `workers` concurrent posting loops against `targets` (round robin) until `stop()` says so,
 * `maxRequests` have been sent or `deadlineMs` has passed, whichever comes first.
 */
export async function runLoad (opts: {
  targets: string[]
  workers: number
  makeBatch: (n: number) => ChatEventBody[]
  stop: () => boolean
  maxRequests: number
  deadlineMs: number
  token?: string
  /** Pause between two requests of one worker. */
  pauseMs?: number
}): Promise<LoadStats> {
  const stats = newLoadStats()
  const deadline = Date.now() + opts.deadlineMs
  let n = 0
  const worker = async (): Promise<void> => {
    while (!opts.stop() && Date.now() < deadline && n < opts.maxRequests) {
      const i = n++
      const target = opts.targets[i % opts.targets.length] as string
      const batch = opts.makeBatch(i)
      const r = await postChat(target, batch, opts.token !== undefined ? { token: opts.token } : {})
      record(stats, batch, r)
      if (opts.pauseMs !== undefined) await sleep(opts.pauseMs)
      else if (r.status === 'network-error') await sleep(20)
    }
  }
  await Promise.all(Array.from({ length: opts.workers }, worker))
  return stats
}

/** GET /readyz: status and the JSON body (null on a network failure). */
export async function readyz (baseUrl: string, timeoutMs = 5_000): Promise<{ status: number | 'network-error', pending: number | null }> {
  try {
    const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs) })
    const body = await res.json() as { pending_events?: number }
    return { status: res.status, pending: typeof body.pending_events === 'number' ? body.pending_events : null }
  } catch {
    return { status: 'network-error', pending: null }
  }
}

/** Polls /readyz until it answers 200 with pending_events 0; false if `timeoutMs` passes first. */
export async function waitFlushed (baseUrl: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const r = await readyz(baseUrl)
    if (r.status === 200 && r.pending === 0) return true
    await sleep(100)
  }
  return false
}

/** Polls `cond` every `everyMs` until true or `timeoutMs` passes; returns the last value. */
export async function until (cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return true
    if (Date.now() >= deadline) return false
    await sleep(everyMs)
  }
}

/**
 * Sum of field `n` of `metrics:<type>:{<id>}:stats:<bucket>` over `buckets`, read straight from Redis.
 */
export async function sumN (client: Redis, type: 'model' | 'provider' | 'gateway', id: string, buckets: Iterable<string>): Promise<number> {
  let sum = 0
  for (const b of buckets) sum += Number(await client.hget(`metrics:${type}:{${id}}:stats:${b}`, 'n') ?? 0)
  return sum
}

/** Lines of pino JSON output, parsed (non-JSON lines skipped). */
export function logLines (output: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue
    try { out.push(JSON.parse(line) as Record<string, unknown>) } catch { /* partial line */ }
  }
  return out
}

/**
 * Asserts that Redis holds, for each model, exactly the events its 202s accepted (summed over the
 * hour buckets `hours`), and returns the total held.
 */
export async function expectModelTotals (t: Pick<Test, 'equal'>, client: Redis, models: Iterable<string>, hours: Iterable<string>, stats: LoadStats): Promise<number> {
  let total = 0
  for (const model of models) {
    const n = await sumN(client, 'model', model, hours)
    total += n
    const accepted = stats.acceptedByModel.get(model) ?? 0
    t.equal(n, accepted, `${model}: Redis holds exactly its ${accepted} accepted events`)
  }
  return total
}
