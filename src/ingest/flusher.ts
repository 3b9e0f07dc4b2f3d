import { randomBytes } from 'node:crypto'
// A turn of the event loop: what is waiting (requests, replies) runs before the next step.
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { ChatEvent, FetchEvent } from '../metrics/events.js'
import { isRefusal, type GroupWrite, type MetricsStore } from '../store/types.js'
import { Aggregator } from './aggregator.js'

export interface FlusherOptions {
  store: MetricsStore
  intervalMs: number
  /** Entity-buckets the buffer may hold, sealed batch included. */
  maxBufferedKeys: number
  retentionHours: number
  log: FastifyBaseLogger
  now?: () => number
  /** Called after a batch has fully landed. */
  onFlushed?: () => Promise<void>
  /** How long an idempotency key's events are applied at most once (ms); default 10 minutes. */
  idempotencyWindowMs?: number
  /** This instance's name among those sharing the store (default: random); batches are marked with it. */
  instanceId?: string
  /** Told of every write attempt (GET /metrics times them). */
  observer?: FlushObserver
}

/** A group the store refused for its content, kept (bounded, for a day) for inspection. */
export interface SetAside {
  /** When it was refused, epoch ms. */
  at: number
  /** The store's reason. */
  reason: string
  marker: string
  /** The group's keys, and its first field operations (at most SET_ASIDE_OPS of them). */
  keys: string[]
  ops: Array<[string, string, string, string]>
}

/** Set-aside groups kept for inspection, at most, and for how long. */
export const SET_ASIDE_KEPT = 100
export const SET_ASIDE_TTL_MS = 24 * 3_600_000
const SET_ASIDE_OPS = 50
/** How long a set-aside group keeps the service "degraded" (readiness says so; it still answers 200). */
export const DEGRADED_FOR_MS = 3_600_000

/** A recording request that carried an idempotency key, held until the key is claimed in the store. */
interface Keyed { key: string, token: string, chat: readonly ChatEvent[], fetch: readonly FetchEvent[] }

/** Default idempotency window: how long a key's events are applied at most once. */
export const IDEMPOTENCY_WINDOW_MS = 600_000

/** Told of every write of a sealed batch to the store (for GET /metrics). */
export interface FlushObserver {
  /** One write attempt: how long the store took, and whether every group landed. */
  attempted: (seconds: number, ok: boolean) => void
}

interface Sealed { seq: number, groups: GroupWrite[], events: number, entityBucketIds: ReadonlySet<string> }

const MAX_BACKOFF_MS = 5_000
/**
 * Field operations handed to the store at once: the store encodes a call's groups synchronously, so
 * a large batch goes out in several calls, the event loop free between them.
 */
export const APPLY_CHUNK_OPS = 4_096

/**
 * Buffers events and writes them to the store every `intervalMs`, exactly once.
 *
 * Each flush seals what the buffer holds into an immutable batch with this instance's id and the next
 * sequence number. The store applies it group by group; a group that may not have landed is retried
 * with the same sequence (the store skips a group already applied), with backoff, until it lands.
 * The next batch is sealed only when the previous one has fully landed, so sequences reach every
 * group in order. Events arriving meanwhile wait in a fresh buffer.
 *
 * No step of a flush holds the event loop for long: the batch is sealed in steps and handed to the
 * store in chunks, with a turn of the loop between them, so requests keep being served meanwhile.
 */
export class Flusher {
  /** Markers of different instances never collide: each names its batches with its own id. */
  readonly instanceId: string
  readonly #store: MetricsStore
  readonly #intervalMs: number
  readonly #maxBufferedKeys: number
  readonly #retentionHours: number
  readonly #log: FastifyBaseLogger
  readonly #now: () => number
  readonly #onFlushed: (() => Promise<void>) | undefined
  #live = new Aggregator()
  #sealed: Sealed | null = null
  #seq = 0
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #failures = 0
  #nextAttempt = 0
  /** Events written to the store since start. */
  flushedEvents = 0
  /** Events accepted into the buffer since start, by kind. */
  acceptedChatEvents = 0
  acceptedFetchEvents = 0
  /** Events given up unwritten since start (see `abandon`). */
  droppedEvents = 0
  /** Groups the store refused for their content since start, and the events of the batches they were in. */
  setAsideGroups = 0
  /** Recording requests whose idempotency key had been applied already (their events were not counted again). */
  duplicateRequests = 0
  duplicateEvents = 0
  readonly #observer: FlushObserver | undefined
  readonly #setAside: SetAside[] = []
  readonly #idempotencyWindowMs: number
  /** Keyed requests accepted and not yet claimed, oldest first. */
  #keyed: Keyed[] = []
  #keyedEvents = 0
  #requestSeq = 0

  constructor (opts: FlusherOptions) {
    this.#store = opts.store
    this.#intervalMs = opts.intervalMs
    this.#maxBufferedKeys = opts.maxBufferedKeys
    this.#retentionHours = opts.retentionHours
    this.#log = opts.log
    this.#now = opts.now ?? Date.now
    this.#onFlushed = opts.onFlushed
    this.#idempotencyWindowMs = opts.idempotencyWindowMs ?? IDEMPOTENCY_WINDOW_MS
    this.instanceId = opts.instanceId ?? randomBytes(8).toString('hex')
    this.#observer = opts.observer
  }

  /** Events accepted and not yet written (keyed ones waiting for their claim included). */
  get pendingEvents (): number {
    return this.#live.events + (this.#sealed?.events ?? 0) + this.#keyedEvents
  }

  /** Groups set aside within the last day, newest last (at most SET_ASIDE_KEPT). */
  setAside (): readonly SetAside[] {
    const cutoff = this.#now() - SET_ASIDE_TTL_MS
    while (this.#setAside.length > 0 && this.#setAside[0]!.at < cutoff) this.#setAside.shift()
    return this.#setAside
  }

  /** Degraded: a group was set aside within DEGRADED_FOR_MS; recording goes on for everything else. */
  get degraded (): boolean {
    const last = this.#setAside.at(-1)
    return last !== undefined && last.at > this.#now() - DEGRADED_FOR_MS
  }

  /** Distinct entity-buckets held, the sealed batch's included. */
  get bufferedKeys (): number {
    return (this.#sealed?.entityBucketIds.size ?? 0) + this.#live.extra
  }

  /** Seconds a client should wait before retrying when the buffer is full. */
  get retryAfterSec (): number {
    return Math.max(1, Math.ceil((this.#nextAttempt - Date.now()) / 1000))
  }

  /**
   * Whether these events fit in the buffer. Each chat event can add at most 13 entity-buckets (3
   * entities × minute, 10-minute and hour, 2 pairs × minute and hour), a fetch 4 (its gateway × its
   * three buckets, its model list): the exact count is only taken near the limit.
   *
   * Keyed events (`addKeyed`) wait for their claim as events, not aggregated yet: they are bounded
   * by count instead, at half of the entity-bucket limit, and are aggregated, once claimed, only
   * when they fit.
   */
  hasRoomFor (chat: readonly ChatEvent[], fetch: readonly FetchEvent[] = [], keyed = false): boolean {
    if (keyed) return this.#keyedEvents + chat.length + fetch.length <= this.#maxBufferedKeys / 2
    const held = this.bufferedKeys
    if (held + 13 * chat.length + 4 * fetch.length <= this.#maxBufferedKeys) return true
    return held + this.#live.newEntityBuckets(chat, fetch) <= this.#maxBufferedKeys
  }

  addChat (e: ChatEvent): void {
    this.acceptedChatEvents++
    this.#live.addChat(e)
  }

  addFetch (e: FetchEvent): void {
    this.acceptedFetchEvents++
    this.#live.addFetch(e)
  }

  /**
   * Accepts a request that carried an idempotency key: its events are held as they are until the next
   * flush attempt claims the key in the store (SET NX, for the idempotency window, across instances and
   * restarts). The claim's winner aggregates them; a request whose key was claimed before (a retry, by
   * this instance or another, or before a restart) is counted in `duplicateRequests` and left out.
   */
  addKeyed (key: string, chat: readonly ChatEvent[], fetch: readonly FetchEvent[]): void {
    this.acceptedChatEvents += chat.length
    this.acceptedFetchEvents += fetch.length
    this.#keyed.push({ key, token: `${this.instanceId}:${++this.#requestSeq}`, chat, fetch })
    this.#keyedEvents += chat.length + fetch.length
  }

  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => { void this.#join() }, this.#intervalMs)
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /**
   * One flush attempt that includes every event accepted before the call: an attempt already running
   * took only the events held when it began, so it is waited for and followed by one more.
   * Concurrent calls share attempts. Resolves true when nothing is left pending.
   */
  async flush (): Promise<boolean> {
    if (this.#running !== null) await this.#running
    await this.#join()
    return this.pendingEvents === 0
  }

  /** The attempt running, or a new one (the timer's tick: never queues a second attempt). */
  async #join (): Promise<void> {
    this.#running ??= this.#attempt().finally(() => { this.#running = null })
    await this.#running
  }

  /**
   * Writes everything pending, retrying until it lands or `timeoutMs` passes. Resolves with the
   * number of events still unwritten (0 on success).
   */
  async drain (timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs
    this.#nextAttempt = 0
    while (!(await this.flush())) {
      if (Date.now() >= deadline) break
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, this.#intervalMs)))
      this.#nextAttempt = 0
    }
    return this.pendingEvents
  }

  /**
   * Gives up on everything pending (shutdown, after `drain` could not write it): the buffer is
   * emptied and the events are counted in `droppedEvents`. Returns how many were given up.
   */
  abandon (): number {
    const dropped = this.pendingEvents
    this.droppedEvents += dropped
    this.#live = new Aggregator()
    this.#sealed = null
    this.#keyed = []
    this.#keyedEvents = 0
    return dropped
  }

  async #attempt (): Promise<void> {
    if (Date.now() < this.#nextAttempt) return
    // A store that cannot take the claims will not take the writes either: both wait for the next attempt.
    if (this.#keyed.length > 0 && !(await this.#claimKeyed())) {
      this.#backOff(this.#claimError, 'idempotency claims failed, will retry')
      return
    }
    if (this.#sealed === null && this.#live.empty) return
    const sealed = this.#sealed ?? await this.#seal()
    const started = performance.now()
    const results = await this.#apply(sealed)
    const failed: GroupWrite[] = []
    sealed.groups.forEach((g, i) => {
      const err = results[i]
      if (err === null || err === undefined) return
      if (isRefusal(err)) this.#putAside(g, err, sealed.seq)
      else failed.push(g)
    })
    this.#observer?.attempted((performance.now() - started) / 1000, failed.length === 0)
    if (failed.length === 0) {
      this.flushedEvents += sealed.events
      this.#sealed = null
      this.#live.forgetBesides()
      if (this.#failures > 0) this.#log.info({ seq: sealed.seq, retries: this.#failures }, 'flush landed after retries')
      this.#failures = 0
      // Not awaited: a slow store must not hold up the next flush.
      void this.#onFlushed?.()
      return
    }
    sealed.groups = failed
    const err = results.find((r) => r !== null && !isRefusal(r))
    this.#backOff(err, 'flush failed, will retry', { seq: sealed.seq, groups: failed.length })
  }

  #claimError: unknown = null

  #backOff (err: unknown, msg: string, extra: object = {}): void {
    this.#failures++
    const backoff = Math.min(this.#intervalMs * 2 ** Math.min(this.#failures, 10), MAX_BACKOFF_MS)
    this.#nextAttempt = Date.now() + backoff
    this.#log.warn({ err, ...extra, pendingEvents: this.pendingEvents, retryInMs: backoff }, msg)
  }

  /**
   * Claims the keys of the keyed requests held, in one round trip: a request whose claim this
   * instance holds (now, or from an earlier attempt whose answer was lost: the claim carries the
   * request's own token) is aggregated; one whose key another request holds is a duplicate. A claim
   * the store did not answer stays held for the next attempt. Resolves false when some claim failed.
   */
  async #claimKeyed (): Promise<boolean> {
    const batch = this.#keyed
    this.#keyed = []
    const expireAt = Date.now() + this.#idempotencyWindowMs
    let results: Array<boolean | Error>
    try {
      results = await this.#store.claimOnce(batch.map((k) => ({ key: k.key, token: k.token, expireAt })))
    } catch (err) {
      results = batch.map(() => err as Error)
    }
    const retry: Keyed[] = []
    let failed = false
    batch.forEach((k, i) => {
      const won = results[i]
      if (won instanceof Error) {
        this.#claimError = won
        failed = true
        retry.push(k)
        return
      }
      // Claimed, but the buffer is full: it waits (still claimed by its token) until a flush lands.
      // An empty buffer always takes it, so that every claimed request is aggregated in the end.
      if (won && !this.#live.empty && !this.hasRoomFor(k.chat, k.fetch)) {
        retry.push(k)
        return
      }
      this.#keyedEvents -= k.chat.length + k.fetch.length
      if (won) {
        for (const e of k.chat) this.#live.addChat(e)
        for (const e of k.fetch) this.#live.addFetch(e)
      } else {
        this.duplicateRequests++
        this.duplicateEvents += k.chat.length + k.fetch.length
      }
    })
    // Requests accepted while the claims were out come after the ones to retry.
    this.#keyed = retry.concat(this.#keyed)
    return !failed
  }

  /**
   * Sets aside a group the store refused for its content: retrying cannot make it land, and waiting
   * for it would hold up every later batch. It is logged whole, counted, and kept for inspection.
   */
  #putAside (g: GroupWrite, err: unknown, seq: number): void {
    this.setAsideGroups++
    const ops: SetAside['ops'] = []
    for (const kw of g.keys) {
      for (const [op, field, value] of kw.ops) {
        if (ops.length >= SET_ASIDE_OPS) break
        ops.push([kw.key, op, field, value])
      }
    }
    const entry: SetAside = { at: this.#now(), reason: String((err as Error).message), marker: g.marker, keys: g.keys.map((kw) => kw.key), ops }
    this.#setAside.push(entry)
    if (this.#setAside.length > SET_ASIDE_KEPT) this.#setAside.shift()
    this.#log.error({ seq, setAside: entry }, `flush: the store refused a group for its content; set aside (${entry.reason})`)
  }

  /**
   * Takes what the buffer holds as the next batch (pending, its entity-buckets held, from now on) and
   * seals it in steps, a turn of the loop after each. Events arriving meanwhile go to a fresh buffer.
   */
  async #seal (): Promise<Sealed> {
    const live = this.#live
    this.#live = new Aggregator(live.entityBucketIds)
    const sealed: Sealed = { seq: ++this.#seq, events: live.events, entityBucketIds: live.entityBucketIds, groups: [] }
    this.#sealed = sealed
    const steps = live.sealInSteps({ now: this.#now(), retentionHours: this.#retentionHours, instanceId: this.instanceId })
    let step = steps.next()
    while (step.done !== true) {
      await nextTurn()
      step = steps.next()
    }
    sealed.groups = step.value
    // Let requests in before the batch is sent.
    await nextTurn()
    return sealed
  }

  /**
   * Hands the batch's groups to the store in chunks of about APPLY_CHUNK_OPS field operations, a
   * turn of the loop after each, and resolves with one entry per group: null when it landed. Each
   * group is in exactly one chunk; a chunk the store rejects counts as failed for all its groups.
   */
  async #apply (sealed: Sealed): Promise<unknown[]> {
    const sent: Array<Promise<unknown[]>> = []
    const send = (chunk: GroupWrite[]): void => {
      sent.push(this.#store.applyGroups(sealed.seq, chunk).catch((err: unknown) => chunk.map(() => err)))
    }
    let chunk: GroupWrite[] = []
    let ops = 0
    for (const g of sealed.groups) {
      chunk.push(g)
      for (const kw of g.keys) ops += kw.ops.length
      if (ops >= APPLY_CHUNK_OPS) {
        send(chunk)
        chunk = []
        ops = 0
        await nextTurn()
      }
    }
    if (chunk.length > 0) send(chunk)
    return (await Promise.all(sent)).flat()
  }
}
