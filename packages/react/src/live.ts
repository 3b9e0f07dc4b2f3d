/**
 * A live snapshot from the service, without React: the event stream (GET /api/metrics/stream, read
 * with fetch so the read token goes in the Authorization header), and the matching GET route polled
 * while the stream is unavailable. The hooks in ./hooks.ts are thin wrappers around `startLive`.
 */
import { createParser } from 'eventsource-parser'

export type LiveSource = 'stream' | 'poll'

export interface LiveState<T> {
  /** The latest snapshot; kept when a later attempt fails (`stale` tells). */
  data: T | undefined
  /** What went wrong last; cleared by the next snapshot. A MetricsError when the service said why. */
  error: Error | undefined
  /** Neither a snapshot nor an error yet. */
  loading: boolean
  /** `data` may be out of date: the stream or the poll failed after it came. */
  stale: boolean
  /** Where `data` came from: the stream, or the polling fallback. */
  source: LiveSource | undefined
  /** When `data` came (epoch ms). */
  updatedAt: number | undefined
}

/** An error answer of the service (or an `error` event of the stream): its status and code. */
export class MetricsError extends Error {
  override name = 'MetricsError'
  readonly status: number
  readonly code: string | undefined

  constructor (message: string, status: number, code: string | undefined) {
    super(message)
    this.status = status
    this.code = code
  }
}

export interface LiveOptions {
  /** Where the service listens, e.g. http://127.0.0.1:3000 */
  baseUrl: string
  /** One of METRICS_READ_TOKEN, when the service has one. */
  token: string | undefined
  /** The stream topic, which is also its event name. */
  topic: 'realtime' | 'leaderboard'
  /** The query of the topic, the same for the stream and the polled route; undefined values are left out. */
  query: Record<string, string | number | undefined>
  /** The GET route polled while the stream is unavailable. */
  path: string
  /** How often the route is polled, and the stream tried again, while the stream is unavailable. */
  pollIntervalMs: number
  /** A stream silent for this long (no snapshot, no heartbeat) is taken for dead and opened again. */
  staleAfterMs: number
}

export const INITIAL_STATE: LiveState<never> = Object.freeze({ data: undefined, error: undefined, loading: true, stale: false, source: undefined, updatedAt: undefined })

/** Statuses for which asking again cannot help (bad query, missing or wrong token): the last word. */
const FINAL = new Set([400, 401, 403])

const isFinal = (err: unknown): boolean => err instanceof MetricsError && FINAL.has(err.status)

/** The error of an answer that is not ok: the service's message and code, or else its status. */
function errorOf (res: Response, text: string): MetricsError {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {}
  const { message, code } = (typeof body === 'object' && body !== null ? body : {}) as { message?: unknown, code?: unknown }
  return new MetricsError(typeof message === 'string' ? message : `HTTP ${res.status} ${res.statusText}`.trim(), res.status, typeof code === 'string' ? code : undefined)
}

async function attempt (fn: () => Promise<void>): Promise<unknown> {
  try {
    await fn()
  } catch (err) {
    return err
  }
}

/**
 * Follows one snapshot: calls `onState` with every change of state, until the returned function is
 * called (which aborts the request in flight and clears every timer). The stream is tried first;
 * when it fails or ends, the route is polled once, and both are tried again every pollIntervalMs.
 */
export function startLive<T> (opts: LiveOptions, onState: (state: LiveState<T>) => void): () => void {
  const base = opts.baseUrl.replace(/\/+$/, '')
  const params = Object.entries(opts.query).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)])
  const query = new URLSearchParams(params).toString()
  const streamUrl = `${base}/api/metrics/stream?topic=${opts.topic}&${query}`
  const pollUrl = `${base}${opts.path}?${query}`
  const auth: Record<string, string> = opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }

  let state: LiveState<T> = INITIAL_STATE
  let stopped = false
  let ctrl = new AbortController()
  let silence: ReturnType<typeof setTimeout> | undefined
  let pauseTimer: ReturnType<typeof setTimeout> | undefined
  let wake = (): void => {}

  const set = (patch: Partial<LiveState<T>>): void => {
    if (!stopped) {
      state = { ...state, ...patch }
      onState(state)
    }
  }
  const got = (data: T, source: LiveSource): void => { set({ data, error: undefined, loading: false, stale: false, source, updatedAt: Date.now() }) }
  const failed = (err: unknown): void => { set({ error: err as Error, loading: false, stale: state.data !== undefined }) }

  async function request (url: string, accept: string): Promise<Response> {
    const res = await fetch(url, { headers: { ...auth, accept }, signal: ctrl.signal, cache: 'no-store' })
    if (res.ok) return res
    // The service answers errors as {statusCode, code, error, message}; a proxy in front of it may
    // answer a page of its own instead, which says no more than its status.
    throw errorOf(res, await res.text())
  }

  /** Resolves when the service ends the stream, rejects when it fails or goes silent. */
  async function stream (): Promise<void> {
    const res = await request(streamUrl, 'text/event-stream')
    const parser = createParser({
      onEvent: (ev) => {
        if (ev.event === opts.topic) got(JSON.parse(ev.data) as T, 'stream')
        else if (ev.event === 'error') {
          const e = JSON.parse(ev.data) as { statusCode: number, code?: string, message: string }
          failed(new MetricsError(e.message, e.statusCode, e.code))
        }
      }
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    try {
      for (;;) {
        clearTimeout(silence)
        silence = setTimeout(() => { ctrl.abort(new Error(`the stream was silent for ${opts.staleAfterMs} ms`)) }, opts.staleAfterMs)
        const { done, value } = await reader.read()
        if (done) return
        parser.feed(decoder.decode(value, { stream: true }))
      }
    } finally {
      clearTimeout(silence)
    }
  }

  async function poll (): Promise<void> {
    const res = await request(pollUrl, 'application/json')
    got(await res.json() as T, 'poll')
  }

  async function run (): Promise<void> {
    while (!stopped) {
      ctrl = new AbortController()
      const streamError = await attempt(stream) ?? new Error('the service ended the stream')
      if (stopped) return
      failed(streamError)
      if (isFinal(streamError)) return
      // A fresh signal: the stream's may have been aborted by the silence timer.
      ctrl = new AbortController()
      const pollError = await attempt(poll)
      if (pollError !== undefined) failed(pollError)
      await new Promise<void>((resolve) => {
        wake = resolve
        pauseTimer = setTimeout(resolve, opts.pollIntervalMs)
      })
    }
  }

  void run()
  return () => {
    stopped = true
    ctrl.abort()
    clearTimeout(pauseTimer)
    wake()
  }
}
