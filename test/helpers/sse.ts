import { createParser } from 'eventsource-parser'

export interface SseEvent { event: string, data: string }

export interface SseClient {
  status: number
  headers: Headers
  /** Every event received so far, in order. */
  events: SseEvent[]
  /** Comment lines received so far (`: ping`). */
  comments: string[]
  /** Resolves with the first event (from `from` on) that `match` accepts; rejects after `timeoutMs`. */
  next: (match: (e: SseEvent) => boolean, opts?: { from?: number, timeoutMs?: number }) => Promise<SseEvent>
  /** Resolves when the server ends the stream. */
  ended: Promise<void>
  /** Goes away (aborts the request). */
  close: () => void
}

/** Opens GET `url` as an event stream with fetch (as the dashboard does) and collects what comes. */
export async function openSse (url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const ctrl = new AbortController()
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ctrl.signal })
  const events: SseEvent[] = []
  const comments: string[] = []
  const waiters = new Set<() => void>()
  const parser = createParser({
    onEvent: (e) => {
      events.push({ event: e.event ?? 'message', data: e.data })
      for (const w of waiters) w()
    },
    onComment: (c) => { comments.push(c.trim()) }
  })
  const ended = (async () => {
    if (res.body === null) return
    const decoder = new TextDecoder()
    try {
      for await (const chunk of res.body) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }))
    } catch {
      // aborted by close()
    }
  })()
  const next: SseClient['next'] = async (match, opts = {}) => {
    const timeoutMs = opts.timeoutMs ?? 10_000
    let from = opts.from ?? 0
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        for (; from < events.length; from++) {
          const e = events[from]!
          if (match(e)) {
            waiters.delete(check)
            clearTimeout(timer)
            resolve(e)
            return
          }
        }
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no matching event within ${timeoutMs} ms; got ${events.map((e) => e.event).join(', ')}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  }
  return { status: res.status, headers: res.headers, events, comments, next, ended, close: () => { ctrl.abort() } }
}

/** Polls `cond` every `everyMs` (20 ms) until it holds; fails after `timeoutMs`. */
export async function until (cond: () => boolean, what: string, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}
