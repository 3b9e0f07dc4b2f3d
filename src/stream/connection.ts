import type { EventEmitter } from 'node:events'
import { PassThrough, type Writable } from 'node:stream'

export interface ConnectionOptions {
  /** A comment line is sent this often, so proxies that cut idle connections leave the stream open. */
  heartbeatMs: number
  /** A client that stops reading is dropped once this much waits for it, rather than buffered without bound. */
  maxBufferedBytes: number
  /**
   * A client whose connection has taken nothing for this long while bytes wait for it is dropped:
   * it stopped reading, or vanished without closing (no FIN), and only then would its slot be kept.
   */
  stallMs: number
  /** Reconnection delay suggested to EventSource clients (the `retry:` field). */
  retryMs: number
  /** Called once, when the stream is over (ended, dropped, or the client went away). */
  onClose: () => void
}

/**
 * One open Server-Sent Events stream. `body` is what the route answers with; Fastify destroys it
 * when the response closes, and `attach` ties it to the client's connection as well: whatever way
 * the client goes away, the heartbeat stops and `onClose` runs, once.
 */
export class SseConnection {
  readonly body = new PassThrough()
  readonly #heartbeat: NodeJS.Timeout
  readonly #maxBuffered: number
  readonly #stallMs: number
  #response: Writable | undefined
  /** Since when (epoch ms) the response has been waiting for the client to take bytes. */
  #stalledSince: number | undefined
  #detach: () => void = () => {}

  constructor (opts: ConnectionOptions) {
    this.#maxBuffered = opts.maxBufferedBytes
    this.#stallMs = opts.stallMs
    this.#heartbeat = setInterval(() => {
      this.#write(': ping\n\n')
      this.#checkStall()
    }, opts.heartbeatMs)
    this.body.once('close', () => {
      clearInterval(this.#heartbeat)
      this.#detach()
      opts.onClose()
    })
    // The first bytes send the headers, so the client knows at once that it is connected.
    this.#write(`: connected\nretry: ${opts.retryMs}\n\n`)
  }

  /**
   * Ties the stream to the client: `socket` closing ends it (a response queued behind another on a
   * pipelined connection never sees its own close), and `response` not draining for `stallMs` drops it.
   */
  attach (socket: EventEmitter & { destroyed?: boolean }, response: Writable): void {
    if (this.body.destroyed) return
    if (socket.destroyed === true) {
      this.body.destroy()
      return
    }
    this.#response = response
    const gone = (): void => { this.body.destroy() }
    const drained = (): void => { this.#stalledSince = undefined }
    socket.once('close', gone)
    response.on('drain', drained)
    this.#detach = () => {
      socket.off('close', gone)
      response.off('drain', drained)
    }
  }

  /** One event; `data` is a single line (JSON). */
  send (event: string, data: string): void {
    this.#write(`event: ${event}\ndata: ${data}\n\n`)
  }

  /** Ends the stream gracefully (the client sees the end of the response). */
  end (): void {
    this.body.end()
  }

  #write (chunk: string): void {
    if (!this.body.writable) return
    if (this.body.writableLength > this.#maxBuffered) {
      this.body.destroy()
      return
    }
    this.body.write(chunk)
  }

  /** A heartbeat that finds the response still waiting on the client, stallMs after it began to: dropped. */
  #checkStall (): void {
    if (this.body.destroyed || this.#response === undefined) return
    if (!this.#response.writableNeedDrain) {
      this.#stalledSince = undefined
      return
    }
    const now = Date.now()
    this.#stalledSince ??= now
    if (now - this.#stalledSince >= this.#stallMs) this.body.destroy()
  }
}
