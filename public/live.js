// The live stream, read with fetch: EventSource cannot send the Authorization header, and a token
// never goes in a URL. Reconnects after a failure with a growing delay; a 401 is not retried (the
// page asks for a token and connects again).
import { createParser } from './vendor/eventsource-parser.js'

/** A stream silent this long (no snapshot, no heartbeat comment) is taken for dead. */
const SILENT_MS = 45_000
const MAX_DELAY_MS = 15_000

export class HttpError extends Error {
  constructor (message, status, retryAfterS) {
    super(message)
    this.status = status
    this.retryAfterS = retryAfterS
  }
}

function headers (token, accept) {
  const h = { accept }
  if (token) h.authorization = `Bearer ${token}`
  return h
}

async function failure (res) {
  let message = `HTTP ${res.status}`
  try {
    message = (await res.json()).message ?? message
  } catch {
    // not the service's JSON error: keep the status
  }
  return new HttpError(message, res.status, Number(res.headers.get('retry-after')) || 0)
}

/** GET a JSON route; rejects with an HttpError on an error answer. */
export async function getJson (url, token) {
  const res = await fetch(url, { headers: headers(token, 'application/json'), cache: 'no-store' })
  if (!res.ok) throw await failure(res)
  return await res.json()
}

/**
 * Follows the stream at `url`: `onEvent(name, data)` for every event, `onState({state, error,
 * retryInMs})` when the connection changes (live, reconnecting, offline, unauthorized). Returns the
 * function that stops following.
 */
export function follow ({ url, token, onEvent, onState }) {
  let stopped = false
  let ctrl = null
  let retryTimer = null
  let silence = null
  let failures = 0

  async function run () {
    ctrl = new AbortController()
    const mine = ctrl
    try {
      const res = await fetch(url, { headers: headers(token, 'text/event-stream'), signal: mine.signal, cache: 'no-store' })
      if (res.status === 401) {
        onState({ state: 'unauthorized', error: await failure(res) })
        return
      }
      if (!res.ok) throw await failure(res)
      failures = 0
      onState({ state: 'live' })
      const parser = createParser({ onEvent: (ev) => onEvent(ev.event, JSON.parse(ev.data)) })
      const reader = res.body.getReader()
      const decoder = new TextDecoder()
      for (;;) {
        clearTimeout(silence)
        silence = setTimeout(() => mine.abort(), SILENT_MS)
        const { done, value } = await reader.read()
        if (done) throw new Error('the service closed the stream')
        parser.feed(decoder.decode(value, { stream: true }))
      }
    } catch (err) {
      clearTimeout(silence)
      if (stopped) return
      failures++
      const delay = err.retryAfterS > 0 ? err.retryAfterS * 1000 : Math.min(MAX_DELAY_MS, 1000 * 2 ** (failures - 1))
      onState({ state: err instanceof HttpError ? 'reconnecting' : 'offline', error: err, retryInMs: delay })
      retryTimer = setTimeout(run, delay)
    }
  }

  run()
  return () => {
    stopped = true
    clearTimeout(retryTimer)
    clearTimeout(silence)
    ctrl?.abort()
  }
}
