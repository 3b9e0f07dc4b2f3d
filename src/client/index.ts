/**
 * The gateway SDK: record chat completions and model-list fetches without ever getting in the
 * gateway's way. Calls return at once and never throw; events are queued and sent in batches.
 * No dependency on Fastify or Redis: only the global `fetch`.
 *
 *   import { createMetricsClient } from 'llm-gateway-metrics/client'
 */
import type { components, paths } from './api-types.js'
import { determineErrorType, type ChatErrorType } from './errors.js'
import { extractProvider } from '../metrics/provider.js'

export { determineErrorType, extractProvider }
export type { ChatErrorType }
export type ChatEvent = components['schemas']['ChatEvent']
export type GatewayFetchEvent = components['schemas']['GatewayFetchEvent']
/** GET /api/metrics/route's answer: the candidates for a model, ranked. */
export type RouteHint = paths['/api/metrics/route']['get']['responses'][200]['content']['application/json']
export type RouteOptions = NonNullable<paths['/api/metrics/route']['get']['parameters']['query']> extends infer Q ? Omit<Q, 'model'> : never

export interface MetricsClientOptions {
  /** Where the service listens, e.g. http://127.0.0.1:3000 */
  baseUrl: string
  /** One of METRICS_INGEST_TOKEN, sent as a bearer token. */
  token?: string
  /** How often queued events are sent (ms); default 1000. */
  flushIntervalMs?: number
  /** Events per request (1..1000); default 500. */
  maxBatch?: number
  /** Events queued at most (both kinds together); beyond it the oldest of the kind being recorded is dropped and counted. Default 10 000. */
  maxQueue?: number
  /** Time allowed to one request (ms); default 5000. */
  timeoutMs?: number
  /** One of METRICS_READ_TOKEN, for route() when the service guards its reads; default: `token`. */
  readToken?: string
  /** How long route() keeps an answer before asking again (ms); default 2000. */
  routeCacheMs?: number
  /** For tests: the fetch and the clock to use. */
  fetch?: typeof fetch
  now?: () => number
}

export interface MetricsClientStats {
  /** Events waiting to be sent. */
  queued: number
  /** Events the service accepted (202). */
  sent: number
  /** Events dropped because the queue was full. */
  dropped: number
  /** Events the service refused as invalid (400) or unauthorized (401), or that could not be sent after a retry. */
  failed: number
  /** Requests retried after a network error or a 429/503. */
  retries: number
}

export interface CompletionTracker {
  /** Call at the first content chunk; later calls are ignored. */
  firstToken: () => void
  /** The completion succeeded: records one event (once). */
  end: (usage?: { output_tokens?: number, input_tokens?: number }) => void
  /** The completion failed: records one event (once) with the error's type. */
  fail: (error: unknown) => void
}

export interface MetricsClient {
  recordChat: (event: ChatEvent) => void
  recordGatewayFetch: (event: GatewayFetchEvent) => void
  trackCompletion: (opts: { model: string, gateway?: string, provider?: string }) => CompletionTracker
  stats: () => MetricsClientStats
  /**
   * Where to send a request for `model`: the service's ranked candidates (GET /api/metrics/route),
   * kept `routeCacheMs` in this process, so it can be asked per request. Concurrent calls share one
   * request. Never rejects: when the service cannot answer, the last answer for the same question
   * (however old), else null.
   */
  route: (model: string, options?: RouteOptions) => Promise<RouteHint | null>
  /** Sends everything queued; resolves when done (never rejects). */
  flush: () => Promise<void>
  /** Stops the timer and sends everything queued; later records are dropped and counted. */
  close: () => Promise<void>
}

const MAX_TIMER_MS = 2 ** 31 - 1
/** Route answers kept at most (distinct model, by, window). */
const MAX_ROUTE_ENTRIES = 1000

function option (v: number | undefined, fallback: number, min: number, max: number): number {
  if (typeof v !== 'number' || Number.isNaN(v)) return fallback
  return Math.min(max, Math.max(min, Math.floor(v)))
}

type Route = '/api/metrics/chat' | '/api/metrics/gateway/fetch'
type Outcome = { kind: 'sent' | 'invalid' | 'refused' | 'network' } | { kind: 'retry', retryAfterMs: number }

export function createMetricsClient (opts: MetricsClientOptions): MetricsClient {
  const base = opts.baseUrl.replace(/\/+$/, '')
  // Options often come from Number(process.env.X): NaN or Infinity fall back to the default or the bound.
  const flushIntervalMs = option(opts.flushIntervalMs, 1000, 1, MAX_TIMER_MS)
  const maxBatch = option(opts.maxBatch, 500, 1, 1000)
  const maxQueue = option(opts.maxQueue, 10_000, 1, Number.MAX_SAFE_INTEGER)
  const timeoutMs = option(opts.timeoutMs, 5000, 1, MAX_TIMER_MS)
  const routeCacheMs = option(opts.routeCacheMs, 2000, 0, MAX_TIMER_MS)
  const readToken = opts.readToken ?? opts.token
  const doFetch = opts.fetch ?? globalThis.fetch
  const now = opts.now ?? (() => performance.now())
  // Events are kept as JSON, serialized when recorded: a later change by the caller does not alter
  // them, and one that cannot be serialized is refused alone instead of sinking its batch.
  const queues: Record<Route, string[]> = { '/api/metrics/chat': [], '/api/metrics/gateway/fetch': [] }
  const queued = (): number => queues['/api/metrics/chat'].length + queues['/api/metrics/gateway/fetch'].length
  const counts = { sent: 0, dropped: 0, failed: 0, retries: 0 }
  let closed = false
  let pausedUntil = 0
  let sending: Promise<void> | null = null

  const enqueue = (route: Route, event: unknown): void => {
    if (closed) {
      counts.dropped++
      return
    }
    let json: string | undefined
    try {
      json = JSON.stringify(event)
    } catch {}
    if (json === undefined || event === null || typeof event !== 'object') {
      counts.failed++
      return
    }
    const q = queues[route]
    q.push(json)
    if (queued() > maxQueue) {
      q.shift()
      counts.dropped++
    }
    if (q.length >= maxBatch) void flush()
  }

  const post = async (route: Route, batch: string[]): Promise<Outcome> => {
    try {
      const res = await doFetch(base + route, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}) },
        body: `[${batch.join(',')}]`,
        signal: AbortSignal.timeout(timeoutMs)
      })
      await res.body?.cancel().catch(() => {})
      if (res.status === 202) return { kind: 'sent' }
      if (res.status === 429 || res.status === 503) {
        const after = Number(res.headers.get('retry-after'))
        return { kind: 'retry', retryAfterMs: Number.isFinite(after) && after > 0 ? after * 1000 : flushIntervalMs }
      }
      if (res.status === 400) return { kind: 'invalid' }
      return { kind: 'refused' }
    } catch {
      return { kind: 'network' }
    }
  }

  /**
   * Sends one batch. A network error is retried once. A 400 means some event is invalid: the batch
   * is split in halves to send the valid ones and count the invalid ones (at most log2(maxBatch)
   * levels). A 429/503 puts the batch back and pauses until Retry-After.
   */
  const send = async (route: Route, batch: string[]): Promise<void> => {
    let outcome = await post(route, batch)
    if (outcome.kind === 'network') {
      counts.retries++
      outcome = await post(route, batch)
    }
    switch (outcome.kind) {
      case 'sent':
        counts.sent += batch.length
        return
      case 'retry':
        counts.retries++
        pausedUntil = Date.now() + outcome.retryAfterMs
        queues[route].unshift(...batch)
        trim(route)
        return
      case 'invalid':
        if (batch.length === 1) {
          counts.failed++
          return
        }
        await send(route, batch.slice(0, batch.length >> 1))
        await send(route, batch.slice(batch.length >> 1))
        return
      default:
        counts.failed += batch.length
    }
  }

  const trim = (route: Route): void => {
    const over = queued() - maxQueue
    if (over > 0) {
      counts.dropped += over
      queues[route].splice(0, over)
    }
  }

  /** Sends until both queues are empty or a Retry-After pause starts (events recorded meanwhile included). */
  const drain = async (): Promise<void> => {
    let progress = true
    while (progress && Date.now() >= pausedUntil) {
      progress = false
      for (const route of Object.keys(queues) as Route[]) {
        const q = queues[route]
        if (q.length > 0 && Date.now() >= pausedUntil) {
          progress = true
          await send(route, q.splice(0, maxBatch))
        }
      }
    }
  }

  const flush = async (): Promise<void> => {
    // A flush already running may have checked a queue before the latest record: run again after it.
    while (queued() > 0 && Date.now() >= pausedUntil) {
      if (sending === null) sending = drain().finally(() => { sending = null })
      await sending
    }
    if (sending !== null) await sending
  }

  const timer = setInterval(() => { void flush() }, flushIntervalMs)
  timer.unref?.()

  const trackCompletion = (t: { model: string, gateway?: string, provider?: string }): CompletionTracker => {
    if (t === null || typeof t !== 'object') t = { model: String(t) }
    const started = now()
    let ttft: number | undefined
    let done = false
    const base = { model: t.model, ...(t.gateway !== undefined ? { gateway: t.gateway } : {}), ...(t.provider !== undefined ? { provider: t.provider } : {}) }
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
      closed = true
      clearInterval(timer)
      pausedUntil = 0
      await flush()
      // What the service would still not take is dropped, and counted: never silently.
      for (const q of Object.values(queues)) {
        counts.dropped += q.length
        q.length = 0
      }
    }
  }
}
