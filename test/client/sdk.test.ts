/**
 * The gateway SDK (packages/client/src/client.ts) against a live service on 127.0.0.1 and against raw
 * node:http servers that misbehave: batching, auth, never throwing, splitting on 400, timeouts, a
 * down server, the bounded queue, Retry-After, close(), and trackCompletion with a fake clock.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createMetricsClient, type ChatEvent, type MetricsClient, type MetricsClientOptions, type MetricsClientStats, type DeliveryError } from '../../packages/client/src/index.js'
import { build } from '../helpers/app.js'

const TOKEN = 'sdk-ingest-token-0123456789'
/** Long enough that the SDK's timer never fires during a test (and below setInterval's 2^31 − 1 limit). */
const NEVER = 1_000_000_000
const CLIENT_MODULE = fileURLToPath(new URL('../../packages/client/src/index.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Every counter, zero unless given. */
const stats = (s: Partial<MetricsClientStats>): MetricsClientStats => ({ queued: 0, sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 0, ...s })

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Sent { url: string, body: unknown[], authorization: string | null }

/** A fetch that records what the SDK sends, then really sends it. */
function recordingFetch (): { fetch: typeof fetch, sent: Sent[] } {
  const sent: Sent[] = []
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let body: unknown[] = []
    try { body = JSON.parse(String(init?.body)) as unknown[] } catch {}
    sent.push({ url: String(input), body, authorization: new Headers(init?.headers).get('authorization') })
    return await fetch(input, init)
  }
  return { fetch: wrapped as typeof fetch, sent }
}

/** The app on the embedded store, listening on 127.0.0.1 (closed in teardown by the helper). */
async function liveApp (t: Test, config: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, baseUrl: string }> {
  const { app } = await build(t, { config: { rateLimitMax: 0, ...config } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, baseUrl: `http://127.0.0.1:${port}` }
}

/** Writes everything the service buffered to the store (bounded). */
async function landAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await app.flusher.flush()) return
    await sleep(20)
  }
  throw new Error('the ingest buffer did not drain')
}

async function realtime (app: FastifyInstance, type: string, id: string): Promise<Record<string, any>> {
  const res = await app.inject({ url: `/api/metrics/realtime?type=${type}&id=${encodeURIComponent(id)}&window=5m` })
  if (res.statusCode !== 200) throw new Error(`realtime ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** A client closed in teardown. */
function client (t: Test, opts: MetricsClientOptions): MetricsClient {
  const c = createMetricsClient(opts)
  t.teardown(async () => { await c.close() })
  return c
}

/** A raw HTTP server on 127.0.0.1; every socket is destroyed and the server closed in teardown. */
async function rawServer (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server, baseUrl: string }> {
  const server = createServer(handler)
  const sockets = new Set<Socket>()
  server.on('connection', (s) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const { port } = server.address() as AddressInfo
  return { server, baseUrl: `http://127.0.0.1:${port}` }
}

async function readBody (req: IncomingMessage): Promise<unknown[]> {
  let text = ''
  for await (const chunk of req) text += String(chunk)
  return JSON.parse(text) as unknown[]
}

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

interface Child { code: number | null, out: string, killed: boolean }

/** Runs a TypeScript script in a child node (tsx), killed after `guardMs` if it has not exited. */
async function runChild (script: string, args: string[], guardMs = 20_000): Promise<Child> {
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  let killed = false
  const guard = setTimeout(() => { killed = true; child.kill('SIGKILL') }, guardMs)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  clearTimeout(guard)
  return { code, out, killed }
}

const chat = (model: string, extra: Partial<ChatEvent> = {}): ChatEvent => ({ model, success: true, ttft_ms: 100, total_time_ms: 500, ...extra })

t.test('batching: 250 events with maxBatch 100 are exactly 3 POSTs, and every one lands', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const rec = recordingFetch()
  const c = client(t, { baseUrl, maxBatch: 100, flushIntervalMs: NEVER, fetch: rec.fetch })
  for (let i = 0; i < 250; i++) c.recordChat(chat('batch/m', { gateway: 'gw-batch', output_tokens: i }))
  await c.flush()
  t.equal(rec.sent.length, 3, 'three requests')
  t.same(rec.sent.map((s) => s.body.length).sort((a, b) => b - a), [100, 100, 50], 'of 100, 100 and 50 events')
  t.ok(rec.sent.every((s) => s.url === `${baseUrl}/api/metrics/chat`), 'all to /api/metrics/chat')
  t.same(rec.sent.flatMap((s) => s.body.map((e) => (e as { output_tokens: number }).output_tokens)), Array.from({ length: 250 }, (_, i) => i), 'in order, each once')
  t.same(c.stats(), stats({ queued: 0, sent: 250, dropped: 0, failed: 0, retries: 0 }))
  await landAll(app)
  const rt = await realtime(app, 'model', 'batch/m')
  t.equal(rt.requests, 250, 'realtime counts exactly 250 requests')
  t.equal(rt.successes, 250)
  t.equal((await realtime(app, 'gateway', 'gw-batch')).requests, 250)
})

t.test('recordGatewayFetch lands under gateway_fetches', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const rec = recordingFetch()
  const c = client(t, { baseUrl, flushIntervalMs: NEVER, fetch: rec.fetch })
  const now = Date.now()
  t.equal(c.recordGatewayFetch({ gateway: 'gw-fetch', status: 'success', model_count: 10, response_time_ms: 300, timestamp: now - 3000 }), undefined)
  c.recordGatewayFetch({ gateway: 'gw-fetch', status: 'success', model_count: 12, response_time_ms: 500, timestamp: now - 2000 })
  c.recordGatewayFetch({ gateway: 'gw-fetch', status: 'error', error_type: 'timeout', response_time_ms: 10_000, timestamp: now - 1000 })
  c.recordGatewayFetch({ gateway: 'gw-fetch', status: 'error', timestamp: now - 500 })
  await c.flush()
  t.same(rec.sent.map((s) => s.url), [`${baseUrl}/api/metrics/gateway/fetch`], 'one request to /api/metrics/gateway/fetch')
  t.same(c.stats(), stats({ queued: 0, sent: 4, dropped: 0, failed: 0, retries: 0 }))
  await landAll(app)
  const rt = await realtime(app, 'gateway', 'gw-fetch')
  t.ok(rt.gateway_fetches !== undefined, 'gateway_fetches present')
  t.equal(rt.gateway_fetches.fetches, 4)
  t.equal(rt.gateway_fetches.errors, 2)
  t.equal(rt.gateway_fetches.timeouts, 1)
  t.equal(rt.gateway_fetches.last_model_count, 12, 'the latest successful fetch')
  t.equal(rt.gateway_fetches.response_time_ms.count, 3)
  t.equal(rt.requests, 0, 'no chat requests')
})

t.test('the token is sent; a wrong or missing token is counted as failed, never thrown', async (t) => {
  const { app, baseUrl } = await liveApp(t, { ingestTokens: [TOKEN] })

  const good = recordingFetch()
  const ok = client(t, { baseUrl, token: TOKEN, flushIntervalMs: NEVER, fetch: good.fetch })
  for (let i = 0; i < 3; i++) ok.recordChat(chat('auth/good'))
  ok.recordGatewayFetch({ gateway: 'gw-auth', status: 'success' })
  await ok.flush()
  t.equal(good.sent.length, 2)
  t.ok(good.sent.every((s) => s.authorization === `Bearer ${TOKEN}`), 'Authorization: Bearer <token> on every request')
  t.ok(good.sent.every((s) => !s.url.includes(TOKEN)), 'never in the URL')
  t.same(ok.stats(), stats({ queued: 0, sent: 4, dropped: 0, failed: 0, retries: 0 }))

  const bad = recordingFetch()
  const wrong = client(t, { baseUrl, token: 'a-wrong-token-of-enough-chars', flushIntervalMs: NEVER, fetch: bad.fetch })
  for (let i = 0; i < 5; i++) t.equal(wrong.recordChat(chat('auth/bad')), undefined)
  wrong.recordGatewayFetch({ gateway: 'gw-auth-bad', status: 'success' })
  await t.resolves(wrong.flush(), 'flush resolves')
  t.equal(bad.sent.length, 2, 'one request per route, no retry of a 401')
  t.same(wrong.stats(), stats({ queued: 0, sent: 0, dropped: 0, failed: 6, retries: 0 }), 'all six counted as failed')

  const none = client(t, { baseUrl, flushIntervalMs: NEVER })
  none.recordChat(chat('auth/bad'))
  await none.flush()
  t.same(none.stats(), stats({ queued: 0, sent: 0, dropped: 0, failed: 1, retries: 0 }), 'no token: failed too')

  await landAll(app)
  t.equal((await realtime(app, 'model', 'auth/good')).requests, 3)
  t.equal((await realtime(app, 'model', 'auth/bad')).requests, 0, 'nothing recorded without the right token')
  t.equal((await realtime(app, 'gateway', 'gw-auth-bad')).gateway_fetches.fetches, 0)
})

t.test('record* return undefined synchronously and never throw, whatever they are given', async (t) => {
  const { baseUrl } = await liveApp(t)
  const c = client(t, { baseUrl, flushIntervalMs: NEVER })
  const circular: Record<string, unknown> = { model: 'x/y', success: true }
  circular.self = circular
  const garbage: unknown[] = [null, undefined, 42, 'a string', true, [], {}, { model: 7 }, { model: 'has space', success: true },
    { success: 'yes' }, Symbol('s'), () => 1, circular, { model: 'x/y', success: true, n: 10n }]
  const returned: unknown[] = []
  const threw: string[] = []
  for (const g of garbage) {
    try { returned.push(c.recordChat(g as never)) } catch (err) { threw.push(`recordChat: ${String(err)}`) }
    try { returned.push(c.recordGatewayFetch(g as never)) } catch (err) { threw.push(`recordGatewayFetch: ${String(err)}`) }
  }
  t.same(threw, [], 'nothing thrown')
  t.ok(returned.length === garbage.length * 2 && returned.every((r) => r === undefined), 'every call returned undefined')
  t.equal(c.stats().sent, 0, 'nothing sent yet')
  await t.resolves(c.flush(), 'flush resolves')
  const s = c.stats()
  t.equal(s.queued, 0)
  t.equal(s.sent, 0, 'none of it was accepted')
  t.equal(s.invalid, garbage.length * 2, 'every one counted as invalid')
  t.equal(s.failed, 0)

  const tracker = c.trackCompletion({ model: 'garbage/tracker' })
  t.doesNotThrow(() => tracker.firstToken())
  t.doesNotThrow(() => tracker.end(null as never), 'end(null)')
  t.doesNotThrow(() => tracker.fail(undefined))
  t.doesNotThrow(() => c.trackCompletion({ model: 'garbage/t2' }).end('usage' as never), "end('usage')")
  t.doesNotThrow(() => c.trackCompletion({ model: 'garbage/t3' }).fail(null))
  t.doesNotThrow(() => c.trackCompletion({ model: 'garbage/t4' }).fail(Symbol('err')))
  await t.resolves(c.flush())
})

t.test('trackCompletion and fail() never throw, even on pathological errors or options', async (t) => {
  const c = client(t, { baseUrl: 'http://127.0.0.1:9', flushIntervalMs: NEVER, fetch: (async () => new Response(null, { status: 202 })) as typeof fetch })
  t.doesNotThrow(() => c.trackCompletion({ model: 'garbage/t5' }).fail({ status: 429, get message (): string { throw new Error('getter') } }), 'fail(an error whose message getter throws)')
  t.doesNotThrow(() => c.trackCompletion({ model: 'garbage/t6' }).fail({ message: Object.create(null) }), 'fail(an error whose message has no toString)')
  t.doesNotThrow(() => c.trackCompletion(null as never), 'trackCompletion(null)')
  t.doesNotThrow(() => c.trackCompletion(undefined as never), 'trackCompletion(undefined)')
})

t.test('a batch with one invalid event: the valid ones land, invalid counts the others', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const rec = recordingFetch()
  const c = client(t, { baseUrl, flushIntervalMs: NEVER, fetch: rec.fetch })
  for (let i = 0; i < 20; i++) {
    c.recordChat(i === 7 ? chat('split/m', { ttft_ms: -5 }) : chat('split/m'))
  }
  await c.flush()
  t.same(c.stats(), stats({ queued: 0, sent: 19, dropped: 0, invalid: 1, retries: 0 }))
  t.ok(rec.sent.length <= 2 * Math.ceil(Math.log2(20)) + 1, `split in a bounded number of requests (${rec.sent.length})`)
  await landAll(app)
  t.equal((await realtime(app, 'model', 'split/m')).requests, 19, 'the 19 valid events landed')

  const c2 = client(t, { baseUrl, flushIntervalMs: NEVER, maxBatch: 64 })
  const bad = new Set([0, 13, 14, 63])
  for (let i = 0; i < 64; i++) c2.recordChat(bad.has(i) ? chat('has space') : chat('split/m2'))
  await c2.flush()
  t.same(c2.stats(), stats({ queued: 0, sent: 60, dropped: 0, invalid: 4, retries: 0 }), 'four invalid: invalid = 4')
  await landAll(app)
  t.equal((await realtime(app, 'model', 'split/m2')).requests, 60)

  const c3 = client(t, { baseUrl, flushIntervalMs: NEVER })
  c3.recordGatewayFetch({ gateway: 'gw-split', status: 'success' })
  c3.recordGatewayFetch({ gateway: 'gw-split', status: 'success', error_type: 'timeout' })
  c3.recordGatewayFetch({ gateway: 'gw-split', status: 'error' })
  await c3.flush()
  t.same(c3.stats(), stats({ queued: 0, sent: 2, dropped: 0, invalid: 1, retries: 0 }), 'same for gateway fetches')
})

t.test('an event that cannot be serialized does not take the valid events of its batch with it', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const c = client(t, { baseUrl, flushIntervalMs: NEVER })
  for (let i = 0; i < 10; i++) {
    c.recordChat(i === 4 ? { ...chat('unserializable/m'), output_tokens: 10n } as never : chat('unserializable/m'))
  }
  await c.flush()
  const s = c.stats()
  t.equal(s.sent, 9, 'the 9 valid events are sent')
  t.equal(s.invalid, 1, 'only the BigInt event is set aside, as invalid')
  t.equal(s.retries, 0, 'not a network error: nothing to retry')
  await landAll(app)
  t.equal((await realtime(app, 'model', 'unserializable/m')).requests, 9)
})

t.test('a server that accepts and never answers: each request bounded by timeoutMs, retried with the same key, then expired', async (t) => {
  const keys: string[] = []
  const { baseUrl } = await rawServer(t, (req) => {
    keys.push(String(req.headers['idempotency-key']))
    req.resume() // read the body, never answer
  })
  const errors: DeliveryError[] = []
  const c = createMetricsClient({ baseUrl, timeoutMs: 200, maxRetryMs: 500, retryBaseMs: 1, retryMaxMs: 20, closeTimeoutMs: 60_000, flushIntervalMs: NEVER, onError: (e) => { errors.push(e) } })
  for (let i = 0; i < 5; i++) t.equal(c.recordChat(chat('hang/m')), undefined, 'recordChat returns at once')
  t.equal(c.stats().queued, 5)
  await t.resolves(c.flush(), 'flush resolves')
  t.equal(c.stats().queued, 5, 'after a timeout the batch waits for its retry, still counted as queued')
  await t.resolves(c.close(), 'close() resolves')
  const s = c.stats()
  t.same(s, stats({ expired: 5, retries: s.retries }), 'expired = 5, nothing else')
  t.ok(s.retries >= 1, `retried (${s.retries} times)`)
  t.ok(keys.length >= 2, `the request and its retries reached the server (${keys.length})`)
  t.equal(new Set(keys).size, 1, 'every attempt carried the same Idempotency-Key')
  t.same(errors.map((e) => [e.kind, e.count]), [['expired', 5]], 'reported once through onError')
  t.match(errors[0]?.message, /maxRetryMs/)
})

t.test('a client whose requests hang does not hold the process open', async (t) => {
  const { baseUrl } = await rawServer(t, (req) => { req.resume() })
  const dir = mkdtempSync(join(tmpdir(), 'sdk-exit-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const script = join(dir, 'child.mts')
  writeFileSync(script, [
    `import { createMetricsClient } from ${JSON.stringify(pathToFileURL(CLIENT_MODULE).href)}`,
    'const [baseUrl, mode] = process.argv.slice(2)',
    'const c = createMetricsClient({ baseUrl, timeoutMs: 200, flushIntervalMs: 50 })',
    "for (let i = 0; i < 3; i++) c.recordChat({ model: 'hang/child', success: true })",
    "if (mode === 'flush') await c.flush()",
    'process.stdout.write(JSON.stringify(c.stats()))',
    '// neither close() nor process.exit(): the process must end by itself'
  ].join('\n'))
  const run = async (mode: string): Promise<Child> => await runChild(script, [baseUrl, mode])
  const flushed = await run('flush')
  t.notOk(flushed.killed, 'exits by itself after flush() of hanging requests')
  t.equal(flushed.code, 0, flushed.out)
  t.match(flushed.out, /"queued":3/, 'the three events wait for a retry')
  const idle = await run('idle')
  t.notOk(idle.killed, 'exits by itself with events still queued (the timer does not hold it)')
  t.equal(idle.code, 0, idle.out)
})

t.test('a down server: no throw, no rejection; retried for maxRetryMs, then expired and reported', async (t) => {
  const port = await closedPort()
  const errors: DeliveryError[] = []
  const c = createMetricsClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2000, maxRetryMs: 300, retryBaseMs: 1, retryMaxMs: 20, flushIntervalMs: NEVER, onError: (e) => { errors.push(e) } })
  for (let i = 0; i < 4; i++) t.doesNotThrow(() => c.recordChat(chat('down/m')))
  c.recordGatewayFetch({ gateway: 'gw-down', status: 'success' })
  await t.resolves(c.flush())
  await t.resolves(c.close())
  const s = c.stats()
  t.same(s, stats({ expired: 5, retries: s.retries }), 'all five expired, none counted elsewhere')
  t.ok(s.retries >= 2, `each batch was retried (${s.retries} retries)`)
  t.same(errors.map((e) => [e.kind, e.count]).sort(), [['expired', 1], ['expired', 4]], 'one report per batch')
  t.ok(errors.every((e) => /ECONNREFUSED/.test(e.message)), 'naming the last error')
})

t.test('bounded queue: maxQueue 10, 15 records → 5 dropped, the oldest', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const rec = recordingFetch()
  const c = client(t, { baseUrl, maxQueue: 10, maxBatch: 1000, flushIntervalMs: NEVER, fetch: rec.fetch })
  for (let i = 0; i < 15; i++) c.recordChat(chat('queue/m', { output_tokens: i }))
  t.equal(rec.sent.length, 0, 'nothing sent yet')
  t.same(c.stats(), stats({ queued: 10, sent: 0, dropped: 5, failed: 0, retries: 0 }))
  await c.flush()
  t.same(rec.sent.flatMap((s) => s.body.map((e) => (e as { output_tokens: number }).output_tokens)), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14], 'events 0..4 were dropped')
  t.same(c.stats(), stats({ queued: 0, sent: 10, dropped: 5, failed: 0, retries: 0 }))
  await landAll(app)
  t.equal((await realtime(app, 'model', 'queue/m')).requests, 10)
})

for (const status of [503, 429]) {
  t.test(`${status} with Retry-After: the batch waits and is sent again, with the same key, nothing lost`, async (t) => {
    const bodies: Array<{ status: number, body: unknown[], key: unknown }> = []
    const { baseUrl } = await rawServer(t, (req, res) => {
      void readBody(req).then((body) => {
        const first = bodies.length === 0
        bodies.push({ status: first ? status : 202, body, key: req.headers['idempotency-key'] })
        if (first) {
          res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '1' })
          res.end(JSON.stringify({ statusCode: status, error: 'busy', message: 'busy' }))
        } else {
          res.writeHead(202, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ accepted: body.length }))
        }
      })
    })
    const c = client(t, { baseUrl, flushIntervalMs: 100 })
    for (let i = 0; i < 6; i++) c.recordChat(chat('retry-after/m', { output_tokens: i }))
    await c.flush()
    t.equal(bodies.length, 1, 'first attempt refused')
    t.equal(c.stats().queued, 6, 'the batch waits for its retry')
    t.equal(c.stats().failed, 0)
    for (let i = 0; i < 100 && c.stats().sent < 6; i++) await sleep(50)
    const s = c.stats()
    t.equal(s.sent, 6, 'sent later by the timer')
    t.equal(s.failed, 0)
    t.equal(s.dropped, 0)
    t.equal(s.queued, 0)
    t.ok(s.retries >= 1, 'counted as a retry')
    t.equal(bodies.length, 2, 'nothing sent during the pause: exactly one more request')
    t.same(bodies[1]?.body.map((e) => (e as { output_tokens: number }).output_tokens), [0, 1, 2, 3, 4, 5], 'the same events, each once')
    t.equal(bodies[1]?.key, bodies[0]?.key, 'under the same Idempotency-Key')
  })
}

t.test('close() sends everything queued; later records are dropped and counted', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const rec = recordingFetch()
  const c = createMetricsClient({ baseUrl, maxBatch: 1000, flushIntervalMs: NEVER, fetch: rec.fetch })
  for (let i = 0; i < 7; i++) c.recordChat(chat('close/m'))
  c.recordGatewayFetch({ gateway: 'gw-close', status: 'success', model_count: 3 })
  await t.resolves(c.close())
  t.same(c.stats(), stats({ queued: 0, sent: 8, dropped: 0, failed: 0, retries: 0 }))
  const requests = rec.sent.length
  t.equal(c.recordChat(chat('close/m')), undefined)
  t.doesNotThrow(() => c.recordGatewayFetch({ gateway: 'gw-close', status: 'success' }))
  c.trackCompletion({ model: 'close/m' }).end()
  await t.resolves(c.flush())
  await t.resolves(c.close(), 'a second close() is harmless')
  t.equal(rec.sent.length, requests, 'nothing sent after close()')
  t.same(c.stats(), stats({ queued: 0, sent: 8, dropped: 3, failed: 0, retries: 0 }), 'three dropped after close')
  await landAll(app)
  t.equal((await realtime(app, 'model', 'close/m')).requests, 7)
  t.equal((await realtime(app, 'gateway', 'gw-close')).gateway_fetches.fetches, 1)
})

t.test('flush() and close() during a flush in progress also send what was recorded meanwhile', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const c = client(t, { baseUrl, flushIntervalMs: NEVER })
  c.recordGatewayFetch({ gateway: 'gw-race', status: 'success' })
  const first = c.flush() // sending the gateway fetch now (the chat queue was empty)
  c.recordChat(chat('race/flush'))
  await c.flush()
  t.equal(c.stats().queued, 0, 'flush() resolved with nothing left queued')
  await first

  const c2 = createMetricsClient({ baseUrl, flushIntervalMs: NEVER })
  c2.recordGatewayFetch({ gateway: 'gw-race', status: 'success' })
  void c2.flush() // as the timer would
  c2.recordChat(chat('race/close'))
  await c2.close()
  t.same(c2.stats(), stats({ queued: 0, sent: 2, dropped: 0, failed: 0, retries: 0 }), 'close() sent the chat event recorded during the flush')
  await landAll(app)
  t.equal((await realtime(app, 'model', 'race/close')).requests, 1)
})

t.test('trackCompletion with a fake clock', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  const rec = recordingFetch()
  let clock = 0
  const c = client(t, { baseUrl, flushIntervalMs: NEVER, fetch: rec.fetch, now: () => clock })
  const since = Date.now()
  // Each event carries the wall-clock time of its record call (the fake clock times durations only).
  const events = (): Array<Record<string, unknown>> => rec.sent.flatMap((s) => s.body as Array<Record<string, unknown>>).map(({ timestamp, ...e }) => {
    t.ok(typeof timestamp === 'number' && timestamp >= since && timestamp <= Date.now(), 'stamped when recorded')
    return e
  })

  const t0 = 50_000
  clock = t0
  const tr = c.trackCompletion({ model: 'track/m', gateway: 'gw-track' })
  clock = t0 + 120
  t.equal(tr.firstToken(), undefined)
  clock = t0 + 300
  tr.firstToken() // later calls are ignored
  clock = t0 + 900
  t.equal(tr.end({ output_tokens: 78, input_tokens: 10 }), undefined)
  clock = t0 + 5000
  tr.end({ output_tokens: 1 })
  tr.fail(new Error('timeout'))
  tr.firstToken()
  t.equal(c.stats().queued, 1, 'one event, once')
  await c.flush()
  t.same(events(), [{ model: 'track/m', gateway: 'gw-track', success: true, ttft_ms: 120, total_time_ms: 900, output_tokens: 78, input_tokens: 10 }])
  t.same(c.stats(), stats({ queued: 0, sent: 1, dropped: 0, failed: 0, retries: 0 }))

  rec.sent.length = 0
  clock = 1000
  const failing = c.trackCompletion({ model: 'track/f', provider: 'prov-x' })
  clock = 1040
  failing.firstToken()
  clock = 1250
  failing.fail(new Error('429 Too Many Requests'))
  failing.fail(new Error('ECONNREFUSED'))
  failing.end({ output_tokens: 5 })
  await c.flush()
  t.same(events(), [{ model: 'track/f', provider: 'prov-x', success: false, error_type: 'rate_limit', total_time_ms: 250, ttft_ms: 40 }])

  rec.sent.length = 0
  clock = 2000
  const late = c.trackCompletion({ model: 'track/late' })
  clock = 2300
  late.end()
  clock = 2400
  late.firstToken() // after end: ignored
  late.end()
  await c.flush()
  t.same(events(), [{ model: 'track/late', success: true, total_time_ms: 300 }], 'no ttft_ms, one event')

  rec.sent.length = 0
  clock = 3000
  const noFirst = c.trackCompletion({ model: 'track/nofirst' })
  clock = 3075
  noFirst.fail(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))
  noFirst.firstToken()
  await c.flush()
  t.same(events(), [{ model: 'track/nofirst', success: false, error_type: 'network', total_time_ms: 75 }])
  t.equal(c.stats().sent, 4)

  await landAll(app)
  const rt = await realtime(app, 'model', 'track/m')
  t.equal(rt.requests, 1)
  t.ok(Math.abs(rt.ttft_ms.p50 - 120) <= 120 * 0.02, `ttft p50 ≈ 120 (${rt.ttft_ms.p50})`)
  t.ok(Math.abs(rt.total_time_ms.p50 - 900) <= 900 * 0.02, `total p50 ≈ 900 (${rt.total_time_ms.p50})`)
  t.equal((await realtime(app, 'model', 'track/f')).errors.rate_limit, 1)
  t.equal((await realtime(app, 'provider', 'prov-x')).failures, 1)
})

t.test('options that are not usable numbers (NaN from an unset variable, Infinity) do not break sending', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sdk-opts-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const script = join(dir, 'child.mts')
  // Runs in a child process: with a broken option the SDK may loop forever, which must not hang the test.
  writeFileSync(script, [
    `import { createMetricsClient } from ${JSON.stringify(pathToFileURL(CLIENT_MODULE).href)}`,
    'const opts = JSON.parse(process.argv[2], (_k, v) => v === "NaN" ? NaN : v === "Infinity" ? Infinity : v)',
    'let calls = 0',
    'const fake = async (_url, init) => {',
    '  calls++',
    '  await new Promise((resolve) => setImmediate(resolve))',
    '  const body = JSON.parse(String(init.body))',
    '  return new Response(null, { status: Array.isArray(body) && body.length > 0 ? 202 : 400 })',
    '}',
    'setTimeout(() => { process.stdout.write(JSON.stringify({ stuck: true, calls })); process.exit(0) }, 3000)',
    "const c = createMetricsClient({ baseUrl: 'http://127.0.0.1:9', fetch: fake, ...opts })",
    "c.recordChat({ model: 'opts/m', success: true })",
    'await new Promise((resolve) => setTimeout(resolve, 300))',
    'const auto = calls',
    "for (let i = 0; i < 19; i++) c.recordChat({ model: 'opts/m', success: true })",
    'await c.flush()',
    'process.stdout.write(JSON.stringify({ auto, calls, stats: c.stats() }))',
    'process.exit(0)'
  ].join('\n'))
  const cases: Array<Record<string, string>> = [
    { maxBatch: 'NaN' }, { maxQueue: 'NaN' }, { flushIntervalMs: 'NaN' }, { flushIntervalMs: 'Infinity' },
    // Six children at most: more, compiling at once, can outlast the guard on a busy machine.
    { timeoutMs: 'NaN', maxRetryMs: 'NaN', retryBaseMs: 'NaN' }, { timeoutMs: 'Infinity', retryMaxMs: 'Infinity', closeTimeoutMs: 'NaN' }
  ]
  const results = await Promise.all(cases.map(async (opts) => await runChild(script, [JSON.stringify(opts)], 60_000)))
  cases.forEach((opts, i) => {
    const r = results[i] as Child
    const name = JSON.stringify(opts).replace(/"/g, '')
    let out: { stuck?: boolean, auto?: number, calls?: number, stats?: Record<string, number> } = {}
    try { out = JSON.parse(r.out.slice(r.out.indexOf('{'))) } catch {}
    // A child that printed its stats finished its flush, even if a loaded machine then made it late to exit.
    if (out.stuck === true || out.stats === undefined) {
      t.fail(`${name}: flush() did not finish within 3 s: ${r.out.slice(0, 200)}`)
      return
    }
    t.equal(out.auto, 0, `${name}: no request before the flush interval (a 1 ms timer would have sent one)`)
    t.equal(out.stats?.sent, 20, `${name}: all 20 events sent`)
    t.equal(out.stats?.failed, 0, `${name}: none failed`)
  })
})
