/**
 * The health routes over HTTP: what they answer, the 4xx naming the field, auth, the read cache,
 * and `models` on a gateway fetch. The figures themselves are checked on both stores by
 * test/read/health-suite.ts.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helpers/app.js'
import { DEFAULTS, stateNow, type RawEvent } from '../helpers/health-ref.js'

const MINUTE = 60_000
const READ_TOKEN = 'health-read-token-0123456789'

async function post (app: FastifyInstance, url: string, payload: unknown): Promise<{ statusCode: number, json: () => any }> {
  return await app.inject({ method: 'POST', url, payload: payload as object })
}

async function land (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) if (await app.flusher.flush()) return
}

/** A 400 whose message names `field`. */
async function bad (t: Test, app: FastifyInstance, url: string, field: string): Promise<void> {
  const res = await app.inject({ url })
  t.equal(res.statusCode, 400, `${url}: 400`)
  t.match(res.json().message, new RegExp(field.replace(/[.[\]]/g, (c) => '\\' + c)), `${url}: names ${field}`)
}

t.test('GET routes answer with cache-control and the documented fields', async (t) => {
  const { app } = await build(t)
  const now = Date.now()
  const events: RawEvent[] = []
  for (let k = 10; k >= 1; k--) for (let i = 0; i < 6; i++) events.push({ model: 'h/m', gateway: i < 3 ? 'g1' : 'g2', success: i !== 5, ...(i === 5 ? { error_type: 'rate_limit' } : {}), ttft_ms: 200 + i, timestamp: now - k * MINUTE + i })
  t.equal((await post(app, '/api/metrics/chat', events)).statusCode, 202)
  await land(app)

  const rt = await app.inject({ url: '/api/metrics/realtime?id=h/m&window=15m' })
  t.equal(rt.statusCode, 200)
  const body = rt.json()
  t.equal(body.uptime, 100, 'rate limits apart, every request succeeded')
  t.equal(body.success_rate, 83.33)
  t.equal(body.status, stateNow(events, Date.parse(body.generated_at), DEFAULTS))
  t.type(body.status_reason, 'string')
  t.match(body.baselines, { previous: { from: String, to: body.window.from }, ttft_p50_ms: { current: Number }, anomaly: false, anomaly_reason: null })

  const board = (await app.inject({ url: '/api/metrics/health/leaderboard?window=15m' })).json()
  t.match(board.entries, [{ model: 'h/m', uptime: 100, status: body.status }])

  for (const [url, fields] of [
    ['/api/metrics/compare?model=h/m&window=15m', ['model', 'window', 'gateways', 'providers', 'generated_at']],
    ['/api/metrics/route?model=h/m', ['model', 'by', 'window', 'recommended', 'candidates', 'generated_at']],
    ['/api/metrics/status/history?id=h/m', ['type', 'id', 'window', 'status', 'status_reason', 'since', 'transitions', 'generated_at']],
    ['/api/metrics/gateway/catalog?gateway=g1', ['gateway', 'window', 'fetches', 'last_fetch_at', 'model_count', 'models', 'changes', 'generated_at']]
  ] as const) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, `${url}: 200`)
    t.match(String(res.headers['cache-control']), /^max-age=\d+$/, `${url}: cache-control`)
    t.same(Object.keys(res.json()).sort(), [...fields].sort(), `${url}: fields`)
  }
  const compare = (await app.inject({ url: '/api/metrics/compare?model=h/m&window=15m' })).json()
  t.same(compare.gateways.map((g: { gateway: string, requests: number }) => [g.gateway, g.requests]), [['g1', 30], ['g2', 30]])
  t.same(compare.providers.map((p: { provider: string }) => p.provider), ['h'])
  const route = (await app.inject({ url: '/api/metrics/route?model=h/m' })).json()
  t.equal(route.window.seconds, 900, 'the route window defaults to 15m')
  t.equal(route.by, 'gateway')
  t.same(route.candidates.map((c: { id: string }) => c.id), ['g1', 'g2'], 'g1: 30 of 30; g2: 20 of 20 once its rate limits are set apart, a lower bound less sure')
  const byProvider = (await app.inject({ url: '/api/metrics/route?model=h/m&by=provider&window=1h' })).json()
  t.same([byProvider.by, byProvider.window.seconds, byProvider.candidates.map((c: { id: string }) => c.id)], ['provider', 3600, ['h']])
  const history = (await app.inject({ url: '/api/metrics/status/history?type=model&id=h/m&hours=2' })).json()
  t.equal(history.window.seconds, 7200)
  const capped = (await app.inject({ url: '/api/metrics/status/history?id=h/m&hours=8760' })).json()
  t.equal(capped.window.seconds, 168 * 3600, 'hours beyond the retention read only what is kept')
  const catalogCapped = (await app.inject({ url: '/api/metrics/gateway/catalog?gateway=g1&hours=8760&limit=5' })).json()
  t.equal(catalogCapped.window.seconds, 168 * 3600)
})

t.test('the route hint comes from the read cache', async (t) => {
  const { app } = await build(t, { config: { cacheTtlMs: 60_000 } })
  const now = Date.now()
  const events = Array.from({ length: 30 }, (_, i) => ({ model: 'c/m', gateway: 'g1', success: true, timestamp: now - 2 * MINUTE + i }))
  await post(app, '/api/metrics/chat', events)
  await land(app)
  const first = (await app.inject({ url: '/api/metrics/route?model=c/m' })).json()
  await post(app, '/api/metrics/chat', { model: 'c/m', gateway: 'g2', success: true })
  await land(app)
  const second = await app.inject({ url: '/api/metrics/route?model=c/m' })
  t.same(second.json(), first, 'the cached answer, until it expires')
  t.match(String(second.headers['cache-control']), /^max-age=(59|60)$/)
  const other = (await app.inject({ url: '/api/metrics/route?model=c/m&by=gateway&window=5m' })).json()
  t.same(other.candidates.map((c: { id: string }) => c.id).sort(), ['g1', 'g2'], 'another question is another entry')
})

t.test('bad queries get a 400 naming the field', async (t) => {
  const { app } = await build(t)
  await bad(t, app, '/api/metrics/route', 'querystring.model')
  await bad(t, app, '/api/metrics/route?model=a%20b', 'querystring.model')
  await bad(t, app, '/api/metrics/route?model=a/b&by=region', 'querystring.by')
  await bad(t, app, '/api/metrics/route?model=a/b&window=2h', 'querystring.window')
  await bad(t, app, '/api/metrics/compare', 'querystring.model')
  await bad(t, app, '/api/metrics/compare?model=a/b&window=7d', 'querystring.window')
  await bad(t, app, '/api/metrics/status/history', 'querystring.id')
  await bad(t, app, '/api/metrics/status/history?id=x&type=region', 'querystring.type')
  await bad(t, app, '/api/metrics/status/history?id=x&hours=0', 'querystring.hours')
  await bad(t, app, '/api/metrics/status/history?id=x&hours=8761', 'querystring.hours')
  await bad(t, app, '/api/metrics/gateway/catalog', 'querystring.gateway')
  await bad(t, app, '/api/metrics/gateway/catalog?gateway=g&limit=0', 'querystring.limit')
  await bad(t, app, '/api/metrics/gateway/catalog?gateway=g&limit=101', 'querystring.limit')
})

t.test('the read token guards the new routes', async (t) => {
  const { app } = await build(t, { config: { readTokens: [READ_TOKEN] } })
  for (const url of ['/api/metrics/route?model=a/b', '/api/metrics/compare?model=a/b', '/api/metrics/status/history?id=a/b', '/api/metrics/gateway/catalog?gateway=g']) {
    t.equal((await app.inject({ url })).statusCode, 401, `${url}: 401 without a token`)
    t.equal((await app.inject({ url, headers: { authorization: `Bearer ${READ_TOKEN}` } })).statusCode, 200, `${url}: 200 with it`)
  }
})

t.test('POST /api/metrics/gateway/fetch with models', async (t) => {
  const { app } = await build(t)
  const url = '/api/metrics/gateway/fetch'
  t.equal((await post(app, url, { gateway: 'g', status: 'success', models: ['a/1', 'a/2', 'a/1'] })).statusCode, 202)
  t.equal((await post(app, url, { gateway: 'g', status: 'success', models: [] })).statusCode, 202, 'an empty catalog is a catalog')
  t.equal((await post(app, url, { gateway: 'g', status: 'success', models: Array.from({ length: 5000 }, (_, i) => `m/${i}`) })).statusCode, 202, '5000 ids')
  const tooMany = await post(app, url, { gateway: 'g', status: 'success', models: Array.from({ length: 5001 }, (_, i) => `m/${i}`) })
  t.equal(tooMany.statusCode, 400)
  t.equal(tooMany.json().message, 'body.models must NOT have more than 5000 items')
  const spaced = await post(app, url, [{ gateway: 'g', status: 'success' }, { gateway: 'g', status: 'success', models: ['ok/1', 'not ok'] }])
  t.equal(spaced.statusCode, 400)
  t.equal(spaced.json().message, 'body[1].models[1] must not contain whitespace or control characters')
  const notString = await post(app, url, { gateway: 'g', status: 'success', models: ['a', 7] })
  t.equal(notString.json().message, 'body.models[1] must be string')
  const onError = await post(app, url, { gateway: 'g', status: 'error', models: ['a/1'] })
  t.equal(onError.statusCode, 400)
  t.equal(onError.json().message, 'body.models is only allowed when status is success')
  await land(app)
  const rt = (await app.inject({ url: '/api/metrics/realtime?type=gateway&id=g&window=5m' })).json()
  t.equal(rt.gateway_fetches.last_model_count, 5000, 'model_count defaults to the number of distinct ids')
  const catalog = (await app.inject({ url: '/api/metrics/gateway/catalog?gateway=g' })).json()
  t.equal(catalog.fetches, 3)
})

t.test('the cardinality guard bounds model × gateway pairs', async (t) => {
  const { app, store } = await build(t, { config: { maxPairs: { model_gateway: 2, model_provider: 100 } } })
  t.equal((await post(app, '/api/metrics/chat', [{ model: 'a/1', gateway: 'g1', success: true }, { model: 'a/1', gateway: 'g2', success: true }])).statusCode, 202)
  const refused = await post(app, '/api/metrics/chat', { model: 'a/2', gateway: 'g1', success: true })
  t.equal(refused.statusCode, 429)
  t.match(refused.json(), { code: 'METRICS_TOO_MANY_IDS', message: /^model × gateway pair "a\/2" × "g1" would exceed the limit of 2 distinct pairs this hour \(METRICS_MAX_MODEL_GATEWAYS\)/ })
  await land(app)
  t.notOk((await store.keys()).some((k) => k.includes('a/2')), 'nothing of the refused request is written')
})
