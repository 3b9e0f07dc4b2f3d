/**
 * The SDK's route(): the service's ranked candidates for a model, kept a short while in the process,
 * never rejecting; against a live service on 127.0.0.1 and against fetches that misbehave.
 */
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createMetricsClient, type MetricsClient, type MetricsClientOptions, type RouteHint } from '../../packages/client/src/index.js'
import { build } from '../helpers/app.js'

const READ_TOKEN = 'sdk-read-token-0123456789'
const NEVER = 1_000_000_000
const MINUTE = 60_000

async function liveApp (t: Test, config: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, baseUrl: string }> {
  const { app } = await build(t, { config: { rateLimitMax: 0, ...config } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, baseUrl: `http://127.0.0.1:${port}` }
}

function client (t: Test, opts: MetricsClientOptions): MetricsClient {
  const c = createMetricsClient({ flushIntervalMs: NEVER, ...opts })
  t.teardown(async () => { await c.close() })
  return c
}

/** Counts the requests a fetch makes, then makes them (or answers with `answer`). */
function countingFetch (answer?: (url: string) => Promise<Response>): { fetch: typeof fetch, urls: string[], headers: Headers[] } {
  const urls: string[] = []
  const headers: Headers[] = []
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    urls.push(String(input))
    headers.push(new Headers(init?.headers))
    return answer !== undefined ? await answer(String(input)) : await fetch(input, init)
  }
  return { fetch: f as typeof fetch, urls, headers }
}

/** Traffic of one model through two gateways, the last 12 minutes: eu-1 fine, us-1 failing. */
async function seed (app: FastifyInstance, model: string): Promise<void> {
  const now = Date.now()
  const events = []
  for (let k = 12; k >= 1; k--) {
    for (let i = 0; i < 10; i++) {
      events.push({ model, gateway: 'eu-1', success: true, ttft_ms: 300, timestamp: now - k * MINUTE + i })
      events.push({ model, gateway: 'us-1', success: false, error_type: 'timeout', timestamp: now - k * MINUTE + i })
    }
  }
  const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: events })
  t.equal(res.statusCode, 202)
  for (let i = 0; i < 50 && !(await app.flusher.flush()); i++);
}

t.test('route(): the ranked candidates, then the same answer from the local cache', async (t) => {
  const { app, baseUrl } = await liveApp(t)
  await seed(app, 'route/m')
  let clock = 0
  const rec = countingFetch()
  const c = client(t, { baseUrl, fetch: rec.fetch, now: () => clock, routeCacheMs: 2000 })
  const hint = await c.route('route/m')
  t.ok(hint !== null)
  t.equal(hint?.recommended, 'eu-1')
  t.same(hint?.candidates.map((x) => [x.id, x.status]), [['eu-1', 'healthy'], ['us-1', 'down']])
  t.same(rec.urls, [`${baseUrl}/api/metrics/route?model=route%2Fm`])
  clock = 1999
  t.equal(await c.route('route/m'), hint, 'within routeCacheMs: the same answer, no request')
  t.equal(rec.urls.length, 1)
  clock = 2000
  const again = await c.route('route/m')
  t.equal(rec.urls.length, 2, 'after routeCacheMs: asked again')
  t.equal(again?.recommended, 'eu-1')
  const byProvider = await c.route('route/m', { by: 'provider', window: '1h' })
  t.equal(rec.urls[2], `${baseUrl}/api/metrics/route?model=route%2Fm&by=provider&window=1h`, 'options become query parameters')
  t.same(byProvider?.candidates.map((x) => x.id), ['route'], 'one provider')
  t.equal(byProvider?.window.seconds, 3600)
})

t.test('route() sends the read token when the service guards its reads', async (t) => {
  const { app, baseUrl } = await liveApp(t, { readTokens: [READ_TOKEN] })
  await seed(app, 'guarded/m')
  const rec = countingFetch()
  const withToken = client(t, { baseUrl, fetch: rec.fetch, readToken: READ_TOKEN, token: 'an-ingest-token-0123456789' })
  t.equal((await withToken.route('guarded/m'))?.recommended, 'eu-1')
  t.equal(rec.headers[0]?.get('authorization'), `Bearer ${READ_TOKEN}`, 'the read token, not the ingest one')
  const ingestOnly = client(t, { baseUrl, token: READ_TOKEN })
  t.equal((await ingestOnly.route('guarded/m'))?.recommended, 'eu-1', 'without readToken, token is sent')
  const none = client(t, { baseUrl })
  t.equal(await none.route('guarded/m'), null, 'no token: 401, answered as null')
})

t.test('route() never rejects: null, or the last answer however old', async (t) => {
  const hint = { model: 'x/y', by: 'gateway', recommended: 'a', candidates: [], window: { from: '', to: '', seconds: 900 }, generated_at: '' } as unknown as RouteHint
  let mode: 'ok' | 'error' | 'network' | 'json' | 'empty' = 'ok'
  let clock = 0
  const rec = countingFetch(async () => {
    switch (mode) {
      case 'ok': return new Response(JSON.stringify(hint), { status: 200 })
      case 'error': return new Response('{"statusCode":503}', { status: 503 })
      case 'empty': return new Response(null, { status: 500 })
      case 'json': return new Response('not json', { status: 200 })
      default: throw new TypeError('fetch failed')
    }
  })
  const c = client(t, { baseUrl: 'http://127.0.0.1:9', fetch: rec.fetch, now: () => clock })
  mode = 'error'
  t.equal(await c.route('x/y'), null, 'a 503 with nothing cached: null')
  mode = 'network'
  t.equal(await c.route('x/y'), null, 'a network error: null')
  mode = 'json'
  t.equal(await c.route('x/y'), null, 'an answer that is not JSON: null')
  mode = 'ok'
  t.same(await c.route('x/y'), hint)
  for (const m of ['error', 'empty', 'network', 'json'] as const) {
    mode = m
    clock += 10_000
    t.same(await c.route('x/y'), hint, `${m} after the answer expired: the last answer`)
  }
  t.equal(await c.route(null as unknown as string, null as unknown as undefined), null, 'odd arguments: no throw')
  t.match(rec.urls[rec.urls.length - 1], /\?model=null$/)
})

t.test('concurrent route() calls share one request; the cache is bounded', async (t) => {
  const hint = (model: string): RouteHint => ({ model, by: 'gateway', recommended: null, candidates: [], window: { from: '', to: '', seconds: 900 }, generated_at: '' }) as unknown as RouteHint
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const rec = countingFetch(async (url) => {
    await gate
    return new Response(JSON.stringify(hint(new URL(url).searchParams.get('model')!)), { status: 200 })
  })
  const c = client(t, { baseUrl: 'http://127.0.0.1:9', fetch: rec.fetch, routeCacheMs: NEVER })
  const answers = Promise.all([c.route('p/q'), c.route('p/q'), c.route('p/q')])
  release()
  t.same((await answers).map((a) => a?.model), ['p/q', 'p/q', 'p/q'])
  t.equal(rec.urls.length, 1, 'one request for three calls')
  for (let i = 0; i < 1000; i++) await c.route(`m/${i}`)
  t.equal(rec.urls.length, 1001)
  await c.route('m/999')
  t.equal(rec.urls.length, 1001, 'a recent answer is kept')
  await c.route('p/q')
  t.equal(rec.urls.length, 1002, 'beyond 1000 answers, the oldest was dropped and is asked again')
})
