/**
 * The SDK's delivery through the faults it can see, over real HTTP on 127.0.0.1: an answer that comes
 * after the SDK gave up, a restart (503 while closing, connections refused while down), sockets
 * destroyed mid-answer, close() while the service is down, and the live service's rate limiter and
 * cardinality limit. The test servers honour Idempotency-Key as the service does: a key's events
 * are applied once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createMetricsClient, type DeliveryError, type MetricsClientOptions, type MetricsClientStats } from '../../packages/client/src/index.js'
import { build } from '../helpers/app.js'

const NEVER = 1_000_000_000
const KEY = /^[A-Za-z0-9._:-]{1,128}$/

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Waits (bounded) until `done()` holds. */
async function until (done: () => boolean, what: string, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (done()) return
    await sleep(25)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** The events every counter accounts for. */
const total = (s: MetricsClientStats): number => s.sent + s.dropped + s.failed + s.invalid + s.refused + s.expired + s.queued

interface Attempt { key: string | undefined, events: number[] }
type Handler = (req: IncomingMessage, res: ServerResponse, body: unknown[], n: number) => 'apply' | 'handled'

/**
 * A node:http ingest service that applies a key's events once and answers a known key 202 like the
 * first time; `handler` may answer otherwise ('handled'). Events are told apart by output_tokens.
 */
class Ingest {
  readonly attempts: Attempt[] = []
  readonly applied: number[] = []
  readonly #keys = new Set<string>()
  server: Server | null = null
  readonly #sockets = new Set<Socket>()

  constructor (readonly handler: Handler = () => 'apply') {}

  async listen (port = 0): Promise<number> {
    const server = createServer((req, res) => { void this.#serve(req, res) })
    server.on('connection', (s) => {
      this.#sockets.add(s)
      s.once('close', () => this.#sockets.delete(s))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
    this.server = server
    return (server.address() as AddressInfo).port
  }

  async close (): Promise<void> {
    const server = this.server
    if (server === null) return
    this.server = null
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  async #serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = ''
    for await (const chunk of req) text += String(chunk)
    const body = JSON.parse(text) as Array<{ output_tokens?: number, model_count?: number }>
    const key = req.headers['idempotency-key'] as string | undefined
    this.attempts.push({ key, events: body.map((e) => e.output_tokens ?? e.model_count ?? -1) })
    if (this.handler(req, res, body, this.attempts.length) === 'handled') return
    this.apply(key, body)
    res.writeHead(202, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ accepted: body.length }))
  }

  /** Applies the events unless their key was applied before. */
  apply (key: string | undefined, body: Array<{ output_tokens?: number, model_count?: number }>): void {
    if (key !== undefined && this.#keys.has(key)) return
    if (key !== undefined) this.#keys.add(key)
    for (const e of body) this.applied.push(e.output_tokens ?? e.model_count ?? -1)
  }
}

async function ingest (t: Test, handler?: Handler): Promise<{ ingest: Ingest, baseUrl: string }> {
  const s = new Ingest(handler)
  const port = await s.listen()
  t.teardown(async () => { await s.close() })
  return { ingest: s, baseUrl: `http://127.0.0.1:${port}` }
}

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** A fetch that keeps what the real fetch threw. */
function watchingFetch (): { fetch: typeof fetch, thrown: unknown[], calls: () => number } {
  const thrown: unknown[] = []
  let calls = 0
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls++
    try {
      return await fetch(input, init)
    } catch (err) {
      thrown.push(err)
      throw err
    }
  }
  return { fetch: f as typeof fetch, thrown, calls: () => calls }
}

/** A client with quick retries, its reports and what it sent; closed in teardown. */
function sdk (t: Test, opts: MetricsClientOptions): { c: ReturnType<typeof createMetricsClient>, errors: DeliveryError[], sent: unknown[] } {
  const errors: DeliveryError[] = []
  const sent: unknown[] = []
  const c = createMetricsClient({ flushIntervalMs: NEVER, retryBaseMs: 5, retryMaxMs: 50, onError: (e) => { errors.push(e) }, onSent: (events) => { sent.push(...events) }, ...opts })
  t.teardown(async () => { await c.close() })
  return { c, errors, sent }
}

const chat = (i: number): Record<string, unknown> => ({ model: 'deliver/m', success: true, ttft_ms: 100, total_time_ms: 500, output_tokens: i })
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i)

t.test('an answer after timeoutMs: retried with the same key, and a service honouring keys counts the batch once', async (t) => {
  const timeoutMs = 300
  const { ingest: svc, baseUrl } = await ingest(t, (_req, res, body, n) => {
    if (n > 1) return 'apply'
    // The first attempt is applied, but its answer comes after the SDK stopped waiting.
    svc.apply(_req.headers['idempotency-key'] as string | undefined, body as never)
    setTimeout(() => {
      if (!res.destroyed) res.writeHead(202).end('{"accepted":100}')
    }, timeoutMs * 3)
    return 'handled'
  })
  const watch = watchingFetch()
  const { c, errors, sent } = sdk(t, { baseUrl, timeoutMs, maxBatch: 100, fetch: watch.fetch })
  for (const i of range(100)) c.recordChat(chat(i) as never)
  await c.flush()
  await until(() => c.stats().sent === 100, 'the retry')
  t.ok(svc.attempts.length >= 2, `retried (${svc.attempts.length} attempts)`)
  t.equal(new Set(svc.attempts.map((a) => a.key)).size, 1, 'every attempt with the same Idempotency-Key')
  t.match(svc.attempts[0]?.key, KEY, 'a key of [A-Za-z0-9._:-], 1..128 characters')
  t.same(svc.applied.sort((a, b) => a - b), range(100), '100 events sent, 100 counted, each once')
  // Every attempt after the first is a retry, whether or not it reached the service: on a loaded
  // machine a retry can also time out before the service's handler ever sees it.
  t.same(c.stats(), { queued: 0, sent: 100, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: watch.calls() - 1 })
  t.ok(watch.calls() >= svc.attempts.length, 'the service saw no attempt the SDK did not make')
  t.equal(sent.length, 100, 'onSent saw the 100 events once')
  t.same(errors, [])
})

t.test('a restart: 503 while closing, connections refused while down, then back: nothing lost, nothing twice', async (t) => {
  const port = await closedPort()
  // The old instance is closing: it answers 503 without Retry-After (Fastify's return503OnClosing).
  const old = new Ingest((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' }).end('{"statusCode":503,"code":"FST_ERR_REPLY_SERVER_CLOSING"}')
    return 'handled'
  })
  await old.listen(port)
  t.teardown(async () => { await old.close() })
  const next = new Ingest()
  t.teardown(async () => { await next.close() })
  const watch = watchingFetch()
  const { c, errors } = sdk(t, { baseUrl: `http://127.0.0.1:${port}`, fetch: watch.fetch, maxBatch: 100, retryBaseMs: 20, retryMaxMs: 100, closeTimeoutMs: 60_000 })
  for (const i of range(320)) c.recordChat(chat(i) as never)
  await c.flush()
  await until(() => old.attempts.length >= 2, 'a retry of the 503')
  await old.close()
  const refused = (): number => watch.thrown.filter((e) => (e as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED').length
  await until(() => refused() >= 3, 'refused connections')
  // More traffic while the service is down.
  for (const i of range(320, 320)) c.recordChat(chat(i) as never)
  t.equal(total(c.stats()), 640, 'every event accounted for while down')
  t.equal(c.stats().queued, 640, 'all still queued')
  await next.listen(port)
  await c.close()
  t.same(c.stats(), { queued: 0, sent: 640, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: c.stats().retries })
  t.same(next.applied.sort((a, b) => a - b), range(640), 'the new instance got the 640 events, each once')
  t.same(errors, [], 'nothing reported lost')
  // Closing the old instance may also cut a request in flight (UND_ERR_SOCKET): network errors all the same.
  t.ok(watch.thrown.every((e) => e instanceof TypeError && e.message === 'fetch failed'), 'what fetch threw was TypeError "fetch failed"')
  t.ok(refused() >= 3, 'caused by ECONNREFUSED while down')
  t.ok(c.stats().retries >= watch.thrown.length + 1, 'each retried')
})

t.test('sockets destroyed mid-answer are network errors: the same batch, the same key, until it lands', async (t) => {
  const { ingest: svc, baseUrl } = await ingest(t, (req, res, _body, n) => {
    switch (n) {
      case 1: // before any answer
        req.socket.destroy()
        return 'handled'
      case 2: // within the status line
        req.socket.write('HTTP/1.1 202 Acc')
        req.socket.destroy()
        return 'handled'
      case 3: // a 429 whose body is cut off: undici's "terminated" while reading it
        res.writeHead(429, { 'content-type': 'application/json', 'content-length': '200' })
        res.write('{"code":"METRICS_TOO_MA')
        setTimeout(() => req.socket.destroy(), 20)
        return 'handled'
      default:
        return 'apply'
    }
  })
  const watch = watchingFetch()
  const { c, errors } = sdk(t, { baseUrl, fetch: watch.fetch })
  for (const i of range(5)) c.recordChat(chat(i) as never)
  await c.close()
  t.same(c.stats(), { queued: 0, sent: 5, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 3 })
  t.equal(svc.attempts.length, 4)
  t.equal(new Set(svc.attempts.map((a) => a.key)).size, 1, 'one key for the four attempts')
  t.same(svc.applied, range(5))
  t.same(watch.thrown.map((e) => [(e as Error).name, (e as Error).message, (e as { cause?: { code?: string } }).cause?.code]),
    [['TypeError', 'fetch failed', 'UND_ERR_SOCKET'], ['TypeError', 'fetch failed', 'UND_ERR_SOCKET']], 'the real errors of undici')
  t.same(errors, [])
})

t.test('close() with the service down keeps retrying for closeTimeoutMs, then counts and reports the rest as expired', async (t) => {
  const port = await closedPort()
  const watch = watchingFetch()
  const { c, errors } = sdk(t, { baseUrl: `http://127.0.0.1:${port}`, fetch: watch.fetch, closeTimeoutMs: 400, retryBaseMs: 10, retryMaxMs: 40 })
  for (const i of range(5)) c.recordChat(chat(i) as never)
  c.recordGatewayFetch({ gateway: 'gw-down', status: 'success', model_count: 1 })
  c.recordGatewayFetch({ gateway: 'gw-down', status: 'success', model_count: 2 })
  await t.resolves(c.close())
  const s = c.stats()
  t.same(s, { queued: 0, sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 7, retries: s.retries }, 'all seven expired')
  t.ok(watch.calls() > 2, `kept retrying during close() (${watch.calls()} attempts)`)
  t.same(errors.map((e) => [e.kind, e.count]).sort(), [['expired', 2], ['expired', 5]])
  t.ok(errors.every((e) => /closeTimeoutMs/.test(e.message)))
  c.recordChat(chat(99) as never)
  await Promise.resolve()
  t.equal(c.stats().dropped, 1, 'a record after close() is dropped and counted')
  t.same(errors.at(-1), { kind: 'dropped', count: 1, message: 'recorded after close()' })
})

t.test('close() does not wait for a request that hangs beyond closeTimeoutMs', async (t) => {
  const { ingest: svc, baseUrl } = await ingest(t, () => 'handled') // never answers
  const { c } = sdk(t, { baseUrl, timeoutMs: 600_000, closeTimeoutMs: 200 })
  for (const i of range(3)) c.recordChat(chat(i) as never)
  await t.resolves(c.close())
  t.equal(svc.attempts.length, 1)
  t.same(c.stats(), { queued: 0, sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 3, retries: 0 }, 'counted as expired: it was not confirmed')
})

/** The app on the embedded store, listening on 127.0.0.1. */
async function liveApp (t: Test, config: Record<string, unknown>): Promise<{ app: FastifyInstance, baseUrl: string }> {
  const { app } = await build(t, { config: { rateLimitMax: 0, ...config } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, baseUrl: `http://127.0.0.1:${port}` }
}

async function requests (app: FastifyInstance, model: string): Promise<number> {
  for (let i = 0; i < 50 && !(await app.flusher.flush()); i++) await sleep(20)
  // From another address than the SDK's: reads stay out of its rate limit.
  const res = await app.inject({ url: `/api/metrics/realtime?type=model&id=${encodeURIComponent(model)}&window=5m`, remoteAddress: '10.0.0.1' })
  if (res.statusCode !== 200) throw new Error(`realtime ${res.statusCode}: ${res.body}`)
  return (res.json() as { requests: number }).requests
}

t.test('the live service: its rate limiter\'s 429 is waited out (Retry-After) and every event lands once', async (t) => {
  const { app, baseUrl } = await liveApp(t, { rateLimitMax: 1, rateLimitWindowMs: 1000 })
  const { c, errors } = sdk(t, { baseUrl, maxBatch: 10, closeTimeoutMs: 30_000 })
  for (const i of range(30)) c.recordChat({ ...chat(i), model: 'limited/m' } as never)
  await c.close()
  const s = c.stats()
  t.same(s, { queued: 0, sent: 30, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: s.retries })
  t.ok(s.retries >= 1, `rate-limited, retried (${s.retries})`)
  t.same(errors, [])
  t.equal(await requests(app, 'limited/m'), 30)
})

t.test('the live service: one model over the cardinality limit is refused alone; the others and later events land', async (t) => {
  const { app, baseUrl } = await liveApp(t, { maxIds: { model: 2, provider: 1000, gateway: 1000 } })
  const { c, errors } = sdk(t, { baseUrl, maxBatch: 50 })
  const models = ['card/a', 'card/b', 'card/over']
  for (const i of range(30)) c.recordChat({ ...chat(i), model: models[i % 3] } as never)
  await c.flush()
  t.same(c.stats(), { queued: 0, sent: 20, dropped: 0, failed: 0, invalid: 0, refused: 10, expired: 0, retries: 0 })
  for (const i of range(20, 30)) c.recordChat({ ...chat(i), model: models[i % 2] } as never)
  await c.flush()
  t.equal(c.stats().sent, 40, 'later events are not held up')
  t.equal(c.stats().queued, 0)
  t.equal(errors.reduce((n, e) => n + (e.kind === 'refused' ? e.count : 0), 0), 10, 'the refused ten reported')
  t.ok(errors.every((e) => e.kind === 'refused' && e.status === 429 && /METRICS_TOO_MANY_IDS/.test(e.message)))
  t.equal(await requests(app, 'card/a'), 20)
  t.equal(await requests(app, 'card/b'), 20)
  t.equal(await requests(app, 'card/over'), 0)
})
