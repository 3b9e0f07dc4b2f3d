import { PassThrough } from 'node:stream'

export interface ConnectionOptions {
  /** A comment line is sent this often, so proxies that cut idle connections leave the stream open. */
  heartbeatMs: number
  /** A client that stops reading is dropped once this much waits for it, rather than buffered without bound. */
  maxBufferedBytes: number
  /** Reconnection delay suggested to EventSource clients (the `retry:` field). */
  retryMs: number
  /** Called once, when the stream is over (ended, dropped, or the client went away). */
  onClose: () => void
}

/**
 * One open Server-Sent Events stream. `body` is what the route answers with; Fastify destroys it
 * when the client goes away, which ends the heartbeat and calls `onClose`.
 */
export class SseConnection {
  readonly body = new PassThrough()
  readonly #heartbeat: NodeJS.Timeout
  readonly #maxBuffered: number

  constructor (opts: ConnectionOptions) {
    this.#maxBuffered = opts.maxBufferedBytes
    this.#heartbeat = setInterval(() => { this.#write(': ping\n\n') }, opts.heartbeatMs)
    this.body.once('close', () => {
      clearInterval(this.#heartbeat)
      opts.onClose()
    })
    // The first bytes send the headers, so the client knows at once that it is connected.
    this.#write(`: connected\nretry: ${opts.retryMs}\n\n`)
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
}
