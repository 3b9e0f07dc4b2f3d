import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A loopback TCP proxy in front of an HTTP service, for the network between the SDK and the service.
 * While `cutting`, every connection forwards the request and then, at the first bytes of the answer,
 * is destroyed on both sides: the service has handled the request, the client never learns it (the
 * ambiguous failure a network cut makes). `cutAll()` destroys every open connection at once.
 */
export class HttpCutProxy {
  readonly port: number
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  cutting = false
  /** Answers destroyed before they reached the client. */
  cutAnswers = 0

  private constructor (server: Server, port: number) {
    this.#server = server
    this.port = port
  }

  static async start (targetPort: number): Promise<HttpCutProxy> {
    let proxy: HttpCutProxy | undefined
    const server = createServer((client) => { proxy?.accept(client, targetPort) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const addr = server.address()
    proxy = new HttpCutProxy(server, typeof addr === 'object' && addr !== null ? addr.port : 0)
    return proxy
  }

  accept (client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      this.#sockets.add(s)
      s.on('close', () => this.#sockets.delete(s))
      s.on('error', () => {})
    }
    const end = (): void => { client.destroy(); upstream.destroy() }
    client.on('data', (d) => upstream.write(d))
    upstream.on('data', (d) => {
      if (this.cutting) {
        this.cutAnswers++
        end()
        return
      }
      client.write(d)
    })
    client.on('close', end)
    upstream.on('close', end)
  }

  cutAll (): void {
    for (const s of this.#sockets) s.destroy()
  }

  async close (): Promise<void> {
    this.cutAll()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
