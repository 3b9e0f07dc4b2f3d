/**
 * The gateway SDK: record chat completions and model-list fetches without ever getting in the
 * gateway's way. Calls return at once and never throw; events are queued and sent in batches.
 * No runtime dependency: only the global `fetch` (Node 20+, browsers, edge runtimes).
 *
 *   import { createMetricsClient } from '@llm-gateway-metrics/client'
 *
 * For code written against a `metricsService` with recordRequestComplete / recordStatus /
 * recordLatency / recordGatewayFetch, `createMetricsService` (./service.ts) keeps those calls.
 *
 * Delivery: every batch carries an Idempotency-Key that its retries reuse, so a batch the service
 * applied but whose answer was lost (a timeout, a reset connection) is not counted twice. Transient
 * failures are retried with backoff for up to `maxRetryMs`; an event the service refuses for itself
 * (invalid, an id over a cardinality limit) is set aside without holding up the others.
 */
import type { components, paths } from './api-types.js'
import { determineErrorType } from './errors.js'
import { extractProvider } from './provider.js'

/**
 * Optional fields may also be given as `undefined` (left out of the JSON sent), so that code compiled
 * with exactOptionalPropertyTypes can pass values that may be missing as they are.
 */
export type Loose<T> = { [K in keyof T]: {} extends Pick<T, K> ? T[K] | undefined : T[K] }
export type ChatEvent = Loose<components['schemas']['ChatEvent']>
export type GatewayFetchEvent = Loose<components['schemas']['GatewayFetchEvent']>
/** GET /api/metrics/route's answer: the candidates for a model, ranked. */
export type RouteHint = paths['/api/metrics/route']['get']['responses'][200]['content']['application/json']
export type RouteOptions = NonNullable<paths['/api/metrics/route']['get']['parameters']['query']> extends infer Q ? Omit<Q, 'model'> : never

/** Events that will never reach the service, reported through `onError` (each counted in the stats counter of the same name). */
export interface DeliveryError {
  /**
   * invalid: the service (or the SDK, for a value that is not a JSON object) found the event invalid;
   * refused: an id of the event is over one of the service's cardinality limits this hour;
   * failed: the service refused the request (401, 403, another 4xx, or an event too large alone);
   * dropped: the queue was full (the oldest waiting events go), or the event was recorded after close();
   * expired: not delivered within `maxRetryMs` of retrying, or by the end of close().
   */
  kind: 'invalid' | 'refused' | 'failed' | 'dropped' | 'expired'
  count: number
  /** The HTTP status of the last answer, when there was one. */
  status?: number
  message: string
}

export interface MetricsClientOptions {
  /** Where the service listens, e.g. http://127.0.0.1:3000 */
  baseUrl: string
  /** One of METRICS_INGEST_TOKEN, sent as a bearer token. */
  token?: string | undefined
  /** How often queued events are sent (ms); default 1000. */
  flushIntervalMs?: number | undefined
  /** Events per request (1..1000); default 500. */
  maxBatch?: number | undefined
  /**
   * Events waiting at most (both kinds together), not counting the batch being sent or retried (at
   * most `maxBatch` per route); beyond it the oldest waiting event of the kind being recorded is
   * dropped and counted. Default 10 000.
   */
  maxQueue?: number | undefined
  /** Time allowed to one request (ms); default 5000. A request that times out is retried with the same Idempotency-Key. */
  timeoutMs?: number | undefined
  /**
   * How long a batch is retried after transient failures (network errors, timeouts, 429 from the rate
   * limiter, 502, 503, 504), counted from its first attempt (ms); default 300 000. Then its events
   * are counted as expired. At most 570 000 − timeoutMs: the service remembers an Idempotency-Key for
   * METRICS_IDEMPOTENCY_WINDOW_MS (10 minutes by default), and a retry it no longer recognized could
   * apply a batch a second time. Keep maxRetryMs + timeoutMs below that window if it is shortened.
   */
  maxRetryMs?: number | undefined
  /** Backoff before the first retry: a random delay up to this (ms, doubling each retry); default 100. */
  retryBaseMs?: number | undefined
  /** The longest backoff between two retries (ms); default 5000. A Retry-After from the service is waited for even when longer. */
  retryMaxMs?: number | undefined
  /** How long close() keeps sending and retrying (ms); default 10 000. What is left then is counted as expired. */
  closeTimeoutMs?: number | undefined
  /** Told about events that will never be delivered. Called asynchronously; what it throws is ignored. */
  onError?: ((e: DeliveryError) => void) | undefined
  /** Told about the events the service accepted (202), as sent, with the route they were sent to. What it throws is ignored. */
  onSent?: ((events: unknown[], route: string) => void) | undefined
  /** One of METRICS_READ_TOKEN, for route() when the service guards its reads; default: `token`. */
  readToken?: string | undefined
  /** How long route() keeps an answer before asking again (ms); default 2000. */
  routeCacheMs?: number | undefined
  /** For tests: the fetch and the clock (ms; retries are scheduled by it too) to use. */
  fetch?: typeof fetch | undefined
  now?: (() => number) | undefined
}

/**
 * Every event recorded is counted in exactly one of sent, dropped, failed, invalid, refused, expired
 * and queued: their sum is the number of record calls (trackCompletion records at most one each).
 */
export interface MetricsClientStats {
  /** Events waiting to be sent, being sent, or waiting for a retry. */
  queued: number
  /** Events the service accepted (202). */
  sent: number
  /** Events dropped because the queue was full, or recorded after close(). */
  dropped: number
  /** Events whose request the service refused (401, 403, another 4xx), or too large to send even alone (413). */
  failed: number
  /** Events the service refused as invalid (400), or that are not JSON objects. */
  invalid: number
  /** Events naming an id over one of the service's cardinality limits (429 METRICS_TOO_MANY_IDS). */
  refused: number
  /** Events not delivered within maxRetryMs of retrying, or by the end of close(). */
  expired: number
  /** Requests retried after a transient failure. */
  retries: number
}

export interface TrackOptions { model: string, gateway?: string | undefined, provider?: string | undefined, streamed?: boolean | undefined }

export interface CompletionTracker {
  /** Call at the first content chunk; later calls are ignored. */
  firstToken: () => void
  /** The completion succeeded: records one event (once). */
  end: (usage?: { output_tokens?: number | undefined, input_tokens?: number | undefined }) => void
  /** The completion failed: records one event (once) with the error's type. */
  fail: (error: unknown) => void
}

export interface MetricsClient {
  /**
   * Records one event. An event without a `timestamp` gets the time of this call (epoch ms), so
   * events sent in one batch keep their own times.
   */
  recordChat: (event: ChatEvent) => void
  /** Records one model-list fetch; stamped like `recordChat`. */
  recordGatewayFetch: (event: GatewayFetchEvent) => void
  /**
   * Times one completion. `streamed: false` for an answer that comes whole: it gives no
   * tokens-per-second sample (it has no generation time of its own), though `firstToken()` may still
   * mark when the answer arrived.
   */
  trackCompletion: (opts: TrackOptions) => CompletionTracker
  stats: () => MetricsClientStats
  /**
   * Where to send a request for `model`: the service's ranked candidates (GET /api/metrics/route),
   * kept `routeCacheMs` in this process, so it can be asked per request. Concurrent calls share one
   * request. Never rejects: when the service cannot answer, the last answer for the same question
   * (however old), else null.
   */
  route: (model: string, options?: RouteOptions) => Promise<RouteHint | null>
  /**
   * Sends everything queued; resolves when every event is delivered or set aside, or waits for a
   * retry after a transient failure (the retry happens later by itself). Never rejects.
   */
  flush: () => Promise<void>
  /**
   * Stops the timer and sends everything queued, retrying for up to closeTimeoutMs; what is left
   * then is counted as expired. Later records are dropped and counted. Never rejects.
   */
  close: () => Promise<void>
}

const MAX_TIMER_MS = 2 ** 31 - 1
/** Route answers kept at most (distinct model, by, window). */
const MAX_ROUTE_ENTRIES = 1000
/** How long the service remembers an Idempotency-Key by default (METRICS_IDEMPOTENCY_WINDOW_MS). */
const IDEMPOTENCY_WINDOW_MS = 600_000
/** Room left within that window for a slow last request and the time the first one took to arrive. */
const WINDOW_MARGIN_MS = 30_000
/** The gateway the service files a chat event under when it names none. */
const DEFAULT_GATEWAY = 'default'

function option (v: number | undefined, fallback: number, min: number, max: number): number {
  if (typeof v !== 'number' || Number.isNaN(v)) return fallback
  return Math.min(max, Math.max(min, Math.floor(v)))
}

type Route = '/api/metrics/chat' | '/api/metrics/gateway/fetch'
const ROUTES: Route[] = ['/api/metrics/chat', '/api/metrics/gateway/fetch']

/** An id the service refused (429 METRICS_TOO_MANY_IDS): pair ids are "<model> <gateway or provider>". */
interface Refusal { type: string, id: string }

/** What one request's answer means for its batch. */
type Answer =
  | { kind: 'sent' }
  /** Apply to the events naming the refused id; the rest are resent. */
  | { kind: 'refused', status: number, message: string, refused: Refusal }
  /** Some event is at fault: split the batch (at `index` when known); one alone is counted as `as`. */
  | { kind: 'split', as: 'invalid' | 'refused' | 'failed', status: number, message: string, index?: number | undefined }
  | { kind: 'failed', status: number, message: string }
  /** Transient: the same batch again, with the same key, not before retryAfterMs. */
  | { kind: 'retry', status?: number, message: string, retryAfterMs: number }

/** A batch in flight: its key and its retry budget stay with it until the service answers for it. */
interface Batch {
  events: string[]
  key: string
  attempts: number
  /** When the next attempt may start (clock ms). */
  retryAt: number
  /** After this (clock ms) no retry starts; set at the first attempt. */
  deadline: number
  /** An attempt ended without an answer that says nothing was recorded: the service may hold the key already. */
  unsure: boolean
}

interface Lane {
  route: Route
  /** Events waiting, as JSON. */
  queue: string[]
  /** Batches taken from the queue and not yet settled, the next to send first (the parts of a split batch come before the rest). */
  batches: Batch[]
  running: Promise<void> | null
}

let keySeq = 0
/** A fresh Idempotency-Key: 1..128 characters of [A-Za-z0-9._:-]. */
function newKey (): string {
  const c = globalThis.crypto
  if (typeof c?.randomUUID === 'function') return c.randomUUID()
  // Without Web Crypto (a plain-HTTP browser page): time, a counter and randomness are unique enough.
  return `${Date.now().toString(36)}-${(keySeq++).toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`
}

/** Retry-After in ms: delay-seconds or an HTTP date; 0 when absent or unreadable. */
function retryAfterMs (header: string | null): number {
  if (header === null || header.trim() === '') return 0
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(header)
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : 0
}

function describe (err: unknown): string {
  try {
    const e = err as { name?: unknown, message?: unknown, cause?: { code?: unknown, message?: unknown } }
    // undici's network errors: "fetch failed", caused by an error with a code (ECONNREFUSED) or only a message.
    const cause = e?.cause !== undefined && e.cause !== null ? ` (${String(e.cause.code ?? e.cause.message ?? e.cause)})` : ''
    return `${String(e?.name ?? 'Error')}: ${String(e?.message ?? err)}${cause}`
  } catch {
    return 'an error that cannot be described'
  }
}

/** Rejects when `signal` aborts, even if `p` ignores it (a fetch given for tests may). */
async function unlessAborted<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
  })
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await Promise.race([p, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Whether a queued event (JSON) names the refused id, as the service reads the event. */
function names (route: Route, refusal: Refusal, json: string): boolean {
  // Queued events are JSON.stringify's output of objects: they parse back. The service validates a
  // whole request before it counts ids, so every chat event of a refused one has a string model.
  const e = JSON.parse(json) as Record<string, unknown>
  if (route === '/api/metrics/gateway/fetch') return refusal.type === 'gateway' && e.gateway === refusal.id
  const model = String(e.model)
  const provider = typeof e.provider === 'string' ? e.provider : extractProvider(model)
  const gateway = typeof e.gateway === 'string' ? e.gateway : DEFAULT_GATEWAY
  switch (refusal.type) {
    case 'model': return model === refusal.id
    case 'provider': return provider === refusal.id
    case 'gateway': return gateway === refusal.id
    case 'model_gateway': return `${model} ${gateway}` === refusal.id
    case 'model_provider': return `${model} ${provider}` === refusal.id
    default: return false
  }
}

/** The body of an error answer as an object, or null (absent, not JSON, or cut off). */
async function errorBody (res: Response, signal: AbortSignal): Promise<Record<string, unknown> | null> {
  const text = await unlessAborted(res.text(), signal)
  try {
    const body = JSON.parse(text) as unknown
    return body !== null && typeof body === 'object' ? body as Record<string, unknown> : null
  } catch {
    return null
  }
}

function refusalOf (body: Record<string, unknown> | null): Refusal | undefined {
  const r = body?.refused as Record<string, unknown> | undefined
  if (r === null || typeof r !== 'object' || typeof r.type !== 'string' || typeof r.id !== 'string') return undefined
  return { type: r.type, id: r.id }
}

function messageOf (status: number, body: Record<string, unknown> | null): string {
  const code = typeof body?.code === 'string' ? ` ${body.code}` : ''
  const message = typeof body?.message === 'string' ? `: ${body.message}` : ''
  return `HTTP ${status}${code}${message}`
}

/** The index of the invalid event a 400 names ("body[3].ttft_ms must be …"), if any. */
function invalidIndex (message: unknown): number | undefined {
  const m = typeof message === 'string' ? /\bbody\[(\d+)\]/.exec(message) : null
  return m === null ? undefined : Number(m[1])
}

export function createMetricsClient (opts: MetricsClientOptions): MetricsClient {
  const base = opts.baseUrl.replace(/\/+$/, '')
  // Options often come from Number(process.env.X): NaN or Infinity fall back to the default or the bound.
  const flushIntervalMs = option(opts.flushIntervalMs, 1000, 1, MAX_TIMER_MS)
  const maxBatch = option(opts.maxBatch, 500, 1, 1000)
  const maxQueue = option(opts.maxQueue, 10_000, 1, Number.MAX_SAFE_INTEGER)
  const timeoutMs = option(opts.timeoutMs, 5000, 1, MAX_TIMER_MS)
  const maxRetryMs = option(opts.maxRetryMs, 300_000, 0, Math.max(0, IDEMPOTENCY_WINDOW_MS - WINDOW_MARGIN_MS - timeoutMs))
  const retryBaseMs = option(opts.retryBaseMs, 100, 1, MAX_TIMER_MS)
  const retryMaxMs = option(opts.retryMaxMs, 5000, retryBaseMs, MAX_TIMER_MS)
  const closeTimeoutMs = option(opts.closeTimeoutMs, 10_000, 0, MAX_TIMER_MS)
  const routeCacheMs = option(opts.routeCacheMs, 2000, 0, MAX_TIMER_MS)
  const readToken = opts.readToken ?? opts.token
  const doFetch = opts.fetch ?? globalThis.fetch
  const now = opts.now ?? (() => performance.now())
  // Events are kept as JSON, serialized when recorded: a later change by the caller does not alter
  // them, and one that cannot be serialized is refused alone instead of sinking its batch.
  const lanes: Lane[] = ROUTES.map((route) => ({ route, queue: [], batches: [], running: null }))
  const laneOf = (route: Route): Lane => lanes[route === '/api/metrics/chat' ? 0 : 1]!
  const waiting = (): number => lanes[0]!.queue.length + lanes[1]!.queue.length
  const queued = (): number => lanes.reduce((n, l) => l.batches.reduce((m, b) => m + b.events.length, n + l.queue.length), 0)
  const counts = { sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 0 }
  /** No more records (close() called). */
  let closed = false
  /** No more requests (close() is over): requests in flight are aborted. */
  let stopped = false
  const stop = new AbortController()

  /** The caller's callbacks must never break delivery: what they throw or reject is ignored. */
  const safely = (fn: () => unknown): void => {
    try {
      const r = fn() as { then?: unknown } | undefined
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') (r as Promise<unknown>).then(undefined, () => {})
    } catch {}
  }
  const report = (e: DeliveryError): void => {
    const onError = opts.onError
    if (onError !== undefined) safely(() => onError(e))
  }
  // Reports from record calls are gathered and made after the caller's code, once per kind and
  // reason: a full queue drops one event per record, and onError may itself record.
  const later = new Map<string, DeliveryError>()
  const reportLater = (kind: DeliveryError['kind'], message: string): void => {
    const key = `${kind} ${message}`
    const pending = later.get(key)
    if (pending !== undefined) {
      pending.count++
      return
    }
    later.set(key, { kind, count: 1, message })
    if (later.size === 1) {
      queueMicrotask(() => {
        const all = [...later.values()]
        later.clear()
        for (const e of all) report(e)
      })
    }
  }

  const newBatch = (events: string[]): Batch => ({ events, key: newKey(), attempts: 0, retryAt: 0, deadline: Infinity, unsure: false })

  const enqueue = (route: Route, event: unknown): void => {
    if (closed) {
      counts.dropped++
      reportLater('dropped', 'recorded after close()')
      return
    }
    let json: string | undefined
    try {
      json = JSON.stringify(event)
    } catch {}
    if (json === undefined || event === null || typeof event !== 'object') {
      counts.invalid++
      reportLater('invalid', 'not a JSON object')
      return
    }
    // Each event carries its own time: without one the service would take the arrival time, the
    // same for every event of a batch, and could not tell apart events recorded apart (or merge them).
    // Placed first, so that a `timestamp` the object's own serialization gives still wins.
    if (json.startsWith('{') && (event as { timestamp?: unknown }).timestamp === undefined) {
      json = `{"timestamp":${Date.now()}${json === '{}' ? '' : ','}${json.slice(1)}`
    }
    const lane = laneOf(route)
    lane.queue.push(json)
    if (waiting() > maxQueue) {
      lane.queue.shift()
      counts.dropped++
      reportLater('dropped', `the queue was full (maxQueue ${maxQueue}): the oldest waiting event was dropped`)
    }
    // A lane busy with a batch, or waiting to retry one, comes back to its queue by itself.
    if (lane.queue.length >= maxBatch && lane.running === null && lane.batches.length === 0) void flush()
  }

  /** One request for the batch, and what its answer means; rejects when no answer came. */
  const ask = async (route: Route, batch: Batch, signal: AbortSignal): Promise<Answer> => {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': batch.key }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
    const res = await unlessAborted(doFetch(base + route, { method: 'POST', headers, body: `[${batch.events.join(',')}]`, signal }), signal)
    const status = res.status
    if (status >= 200 && status < 300) {
      void res.body?.cancel().catch(() => {})
      return { kind: 'sent' }
    }
    if (status === 400 || status === 429) {
      // A 429 whose body is cut off cannot be told apart: retried, like any lost answer.
      const body = await errorBody(res, signal)
      const message = messageOf(status, body)
      if (status === 400) return { kind: 'split', as: 'invalid', status, message, index: invalidIndex(body?.message) }
      const refused = refusalOf(body)
      if (refused !== undefined) return { kind: 'refused', status, message, refused }
      if (body?.code === 'METRICS_TOO_MANY_IDS') return { kind: 'split', as: 'refused', status, message }
      return { kind: 'retry', status, message, retryAfterMs: retryAfterMs(res.headers.get('retry-after')) }
    }
    void res.body?.cancel().catch(() => {})
    // Too large: smaller parts fit.
    if (status === 413) return { kind: 'split', as: 'failed', status, message: `HTTP ${status}: the request was too large` }
    // The request timed out on the service's side, or a 5xx (store down, draining, a proxy in
    // between): the key makes a retry safe whatever happened to the first attempt.
    if (status === 408 || status >= 500) return { kind: 'retry', status, message: `HTTP ${status}`, retryAfterMs: retryAfterMs(res.headers.get('retry-after')) }
    return { kind: 'failed', status, message: `HTTP ${status}` }
  }

  const post = async (route: Route, batch: Batch): Promise<Answer> => {
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')) }, timeoutMs)
    timer.unref?.()
    const onStop = (): void => { controller.abort(new DOMException('close() ran out of time', 'AbortError')) }
    stop.signal.addEventListener('abort', onStop, { once: true })
    // Network errors (ECONNREFUSED, ECONNRESET, "fetch failed", "terminated") and timeouts alike:
    // the service may or may not have applied the batch; the same key settles it.
    const answer = await ask(route, batch, controller.signal)
      .catch((err: unknown): Answer => ({ kind: 'retry', message: describe(err), retryAfterMs: 0 }))
    clearTimeout(timer)
    stop.signal.removeEventListener('abort', onStop)
    return answer
  }

  /** Full jitter: a random delay up to base × 2^(attempt − 1), capped; never shorter than Retry-After. */
  const backoff = (attempts: number, atLeastMs: number): number =>
    Math.max(atLeastMs, Math.random() * Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(attempts - 1, 40)))

  const settle = (kind: 'invalid' | 'refused' | 'failed' | 'expired', count: number, message: string, status?: number): void => {
    counts[kind] += count
    report({ kind, count, message, ...(status !== undefined ? { status } : {}) })
  }

  const delivered = (route: Route, batch: Batch): void => {
    counts.sent += batch.events.length
    const onSent = opts.onSent
    if (onSent !== undefined) {
      safely(() => {
        const events = batch.events.map((json) => JSON.parse(json) as unknown)
        return onSent(events, route)
      })
    }
  }

  /** A batch some event of which is at fault: in parts, each with its own key; one event alone is counted. */
  const split = (lane: Lane, events: string[], as: 'invalid' | 'refused' | 'failed', status: number, message: string, index?: number): void => {
    if (events.length === 1) {
      settle(as, 1, message, status)
      return
    }
    // The events before the one a 400 names passed validation; it is confirmed alone, so a message
    // that named the wrong event could cost a request, never a valid event.
    const parts = index !== undefined && index < events.length
      ? [events.slice(0, index), events.slice(index, index + 1), events.slice(index + 1)]
      : [events.slice(0, events.length >> 1), events.slice(events.length >> 1)]
    lane.batches.unshift(...parts.filter((p) => p.length > 0).map(newBatch))
  }

  /** One attempt of the lane's first batch, and what its answer does to it. */
  const attempt = async (lane: Lane, batch: Batch): Promise<void> => {
    if (batch.attempts++ === 0) batch.deadline = now() + maxRetryMs
    const answer = await post(lane.route, batch)
    if (answer.kind === 'retry') {
      // A 429 comes before anything is recorded; a lost answer, a timeout or a 5xx may come after.
      if (answer.status !== 429) batch.unsure = true
      if (stopped) return // close() is over: counted with the rest
      const delay = backoff(batch.attempts, answer.retryAfterMs)
      if (now() + delay > batch.deadline) {
        lane.batches.shift()
        settle('expired', batch.events.length, `not delivered within maxRetryMs (${maxRetryMs} ms, ${batch.attempts} attempts); last: ${answer.message}`, answer.status)
      } else {
        counts.retries++
        batch.retryAt = now() + delay
      }
      return
    }
    lane.batches.shift()
    switch (answer.kind) {
      case 'sent':
        delivered(lane.route, batch)
        return
      case 'refused': {
        const refusal = answer.refused
        const hit = batch.events.filter((json) => names(lane.route, refusal, json))
        if (hit.length === 0) {
          // The id names none of them as the SDK reads them: find the refused ones by halves.
          split(lane, batch.events, 'refused', answer.status, answer.message)
          return
        }
        settle('refused', hit.length, answer.message, answer.status)
        const rest = batch.events.filter((json) => !names(lane.route, refusal, json))
        if (rest.length === 0) return
        // Nothing of the refused request was recorded: the rest goes at once, under a new key. But
        // when an earlier attempt may have been applied (its answer lost, and the limit reached
        // since), the rest keeps the key, and its retry budget: the service then applies it once.
        lane.batches.unshift(batch.unsure ? { ...batch, events: rest, retryAt: 0 } : newBatch(rest))
        return
      }
      case 'split':
        split(lane, batch.events, answer.as, answer.status, answer.message, answer.index)
        return
      default:
        settle('failed', batch.events.length, answer.message, answer.status)
    }
  }

  let wakeTimer: ReturnType<typeof setTimeout> | undefined
  let wakeAt = Infinity
  /** Sends again when the earliest retry is due (the flush timer may be much later). */
  const wakeIn = (ms: number): void => {
    const at = now() + ms
    if (wakeTimer !== undefined && wakeAt <= at) return
    clearTimeout(wakeTimer)
    wakeAt = at
    wakeTimer = setTimeout(() => {
      wakeTimer = undefined
      wakeAt = Infinity
      void flush()
    }, Math.min(Math.max(1, Math.ceil(ms)), MAX_TIMER_MS))
    wakeTimer.unref?.()
  }

  /** Sends one route's batches in order until its queue is empty or its next batch waits for a retry. */
  const runLane = async (lane: Lane): Promise<void> => {
    while (!stopped) {
      let batch = lane.batches[0]
      if (batch === undefined) {
        if (lane.queue.length === 0) return
        batch = newBatch(lane.queue.splice(0, maxBatch))
        lane.batches.push(batch)
      }
      const wait = batch.retryAt - now()
      if (wait > 0) {
        wakeIn(wait)
        return
      }
      await attempt(lane, batch)
    }
  }

  /** Runs every lane that has work; both routes are sent side by side, each in order. */
  const pump = async (): Promise<void> => {
    await Promise.all(lanes.map(async (lane) => {
      lane.running ??= runLane(lane).catch(() => {}).finally(() => { lane.running = null })
      await lane.running
    }))
  }

  const sendable = (): boolean => !stopped && lanes.some((l) => {
    const next = l.batches[0]
    return next !== undefined ? next.retryAt <= now() : l.queue.length > 0
  })

  const flush = async (): Promise<void> => {
    // A lane that finished may have missed the latest record: run again while anything can go now.
    do {
      await pump()
    } while (sendable())
  }

  const timer = setInterval(() => { void flush() }, flushIntervalMs)
  timer.unref?.()

  const shutDown = async (): Promise<void> => {
    closed = true
    clearInterval(timer)
    let timeUp = false
    let endTimer: ReturnType<typeof setTimeout> | undefined
    const end = new Promise<void>((resolve) => { endTimer = setTimeout(() => { timeUp = true; resolve() }, closeTimeoutMs) })
    try {
      while (!timeUp) {
        await Promise.race([flush(), end])
        if (timeUp || queued() === 0) break
        // Everything left waits for a retry: wait for the earliest (or the end).
        const next = Math.min(...lanes.map((l) => l.batches[0]?.retryAt ?? Infinity)) - now()
        let pause: ReturnType<typeof setTimeout> | undefined
        await Promise.race([new Promise<void>((resolve) => { pause = setTimeout(resolve, Math.min(Math.max(1, Math.ceil(next)), MAX_TIMER_MS)) }), end])
        clearTimeout(pause)
      }
    } finally {
      clearTimeout(endTimer)
    }
    stopped = true
    stop.abort()
    clearTimeout(wakeTimer)
    await Promise.all(lanes.map(async (l) => { await l.running }))
    for (const lane of lanes) {
      const left = lane.queue.length + lane.batches.reduce((n, b) => n + b.events.length, 0)
      lane.queue.length = 0
      lane.batches.length = 0
      // A request cut short may still have been applied: "expired" means not confirmed.
      if (left > 0) settle('expired', left, `not delivered by the end of close() (closeTimeoutMs ${closeTimeoutMs} ms) to ${lane.route}`)
    }
  }
  let closing: Promise<void> | null = null

  const trackCompletion = (t: TrackOptions): CompletionTracker => {
    if (t === null || typeof t !== 'object') t = { model: String(t) }
    const started = now()
    let ttft: number | undefined
    let done = false
    const base = { model: t.model, ...(t.gateway !== undefined ? { gateway: t.gateway } : {}), ...(t.provider !== undefined ? { provider: t.provider } : {}), ...(t.streamed === false ? { streamed: false } : {}) }
    const ms = (v: number): number => Math.min(3_600_000, Math.max(0, Math.round(v * 1000) / 1000))
    return {
      firstToken () {
        if (ttft === undefined && !done) ttft = ms(now() - started)
      },
      end (usage = {}) {
        if (done) return
        done = true
        enqueue('/api/metrics/chat', { ...base, success: true, total_time_ms: ms(now() - started), ...(ttft !== undefined ? { ttft_ms: ttft } : {}), ...usage })
      },
      fail (error: unknown) {
        if (done) return
        done = true
        enqueue('/api/metrics/chat', { ...base, success: false, error_type: determineErrorType(error), total_time_ms: ms(now() - started), ...(ttft !== undefined ? { ttft_ms: ttft } : {}) })
      }
    }
  }

  const routes = new Map<string, { value: RouteHint, expires: number }>()
  const asking = new Map<string, Promise<RouteHint | null>>()

  const askRoute = async (query: string): Promise<RouteHint | null> => {
    try {
      const res = await doFetch(`${base}/api/metrics/route?${query}`, {
        headers: readToken !== undefined ? { authorization: `Bearer ${readToken}` } : {},
        signal: AbortSignal.timeout(timeoutMs)
      })
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {})
        return null
      }
      const value = await res.json() as RouteHint
      routes.delete(query)
      routes.set(query, { value, expires: now() + routeCacheMs })
      if (routes.size > MAX_ROUTE_ENTRIES) routes.delete(routes.keys().next().value!)
      return value
    } catch {
      return null
    }
  }

  const route = async (model: string, options: RouteOptions = {}): Promise<RouteHint | null> => {
    const params = new URLSearchParams({ model: String(model) })
    if (options?.by !== undefined) params.set('by', options.by)
    if (options?.window !== undefined) params.set('window', options.window)
    const query = params.toString()
    const cached = routes.get(query)
    if (cached !== undefined && now() < cached.expires) return cached.value
    let p = asking.get(query)
    if (p === undefined) {
      p = askRoute(query).finally(() => asking.delete(query))
      asking.set(query, p)
    }
    return (await p) ?? routes.get(query)?.value ?? null
  }

  return {
    route,
    recordChat: (event) => { enqueue('/api/metrics/chat', event) },
    recordGatewayFetch: (event) => { enqueue('/api/metrics/gateway/fetch', event) },
    trackCompletion,
    stats: () => ({ queued: queued(), ...counts }),
    flush,
    async close () {
      closing ??= shutDown()
      await closing
    }
  }
}
