import t from 'tap'
import { build } from '../helpers/app.js'

const INGEST = 'ingest-token-aaaaaaaaaaaa'
const INGEST_NEXT = 'ingest-token-bbbbbbbbbbbb'
const READ = 'read-token-cccccccccccccc'
const event = { model: 'acme/m1', success: true, ttft_ms: 100 }

t.test('authentication', async (t) => {
  const { app, store } = await build(t, { config: { ingestTokens: [INGEST, INGEST_NEXT], readTokens: [READ] } })
  const post = async (headers: Record<string, string>) => await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event, headers })

  for (const [name, headers] of [
    ['no header', {}],
    ['a wrong token', { authorization: 'Bearer wrong-token-000000000000' }],
    ['the read token', { authorization: `Bearer ${READ}` }],
    ['another scheme', { authorization: `Basic ${INGEST}` }],
    ['a token prefix', { authorization: `Bearer ${INGEST.slice(0, -1)}` }]
  ] as Array<[string, Record<string, string>]>) {
    const res = await post(headers)
    t.equal(res.statusCode, 401, `POST with ${name}: 401`)
    t.equal(res.headers['www-authenticate'], 'Bearer')
    t.match(res.json(), { statusCode: 401, code: 'METRICS_UNAUTHORIZED', message: /METRICS_INGEST_TOKEN/ })
  }
  await app.flusher.flush()
  t.same(await store.keys(), [], 'refused events leave no key')

  t.equal((await post({ authorization: `Bearer ${INGEST}` })).statusCode, 202, 'the first token works')
  t.equal((await post({ authorization: `bearer ${INGEST_NEXT}` })).statusCode, 202, 'the second token works (rotation)')

  const read = async (url: string, headers: Record<string, string> = {}) => await app.inject({ url, headers })
  for (const url of ['/api/metrics/realtime?id=acme/m1', '/api/metrics/health/leaderboard', '/api/metrics/provider/summary', '/api/metrics/trends?model=acme/m1']) {
    t.equal((await read(url)).statusCode, 401, `GET ${url} without a token: 401`)
    t.equal((await read(url, { authorization: `Bearer ${INGEST}` })).statusCode, 401, `GET ${url} with the ingest token: 401`)
    t.equal((await read(url, { authorization: `Bearer ${READ}` })).statusCode, 200, `GET ${url} with the read token: 200`)
  }
  for (const url of ['/healthz', '/readyz']) t.equal((await read(url)).statusCode, 200, `${url} stays open`)
})

t.test('no read token: reads are open; no ingest token: posts are open', async (t) => {
  const { app } = await build(t)
  t.equal((await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event })).statusCode, 202)
  t.equal((await app.inject({ url: '/api/metrics/realtime?id=acme/m1' })).statusCode, 200)
})

t.test('the Authorization header never reaches the logs', async (t) => {
  const lines: string[] = []
  const { buildApp } = await import('../../src/app.js')
  const { defaultConfig } = await import('../../src/config.js')
  const { MemoryStore } = await import('../../src/store/memory-store.js')
  const store = new MemoryStore()
  const app = await buildApp({
    config: defaultConfig({ ingestTokens: [INGEST], logLevel: 'trace' }),
    store,
    logger: { level: 'trace', stream: { write: (l: string) => { lines.push(l) } } }
  })
  t.teardown(async () => { await app.close(); await store.close() })
  await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event, headers: { authorization: `Bearer ${INGEST}` } })
  await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event, headers: { authorization: 'Bearer not-the-token-xxxxxxxx' } })
  t.ok(lines.length > 0, 'something was logged')
  t.notOk(lines.some((l) => l.includes(INGEST) || l.includes('not-the-token')), 'no token in any log line')
})

t.test('rate limit per token, else per IP, with Retry-After', async (t) => {
  const { app } = await build(t, { config: { ingestTokens: [INGEST, INGEST_NEXT], rateLimitMax: 3, rateLimitWindowMs: 60_000 } })
  const post = async (token: string) => await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event, headers: { authorization: `Bearer ${token}` } })
  for (let i = 0; i < 3; i++) {
    const admitted = await post(INGEST)
    t.equal(admitted.statusCode, 202, `request ${i + 1} of 3 passes`)
    t.notOk('x-ratelimit-remaining' in admitted.headers, 'an admitted request carries no rate-limit headers')
  }
  const limited = await post(INGEST)
  t.equal(limited.statusCode, 429, 'the 4th is limited')
  t.ok(Number(limited.headers['retry-after']) > 0, `Retry-After ${String(limited.headers['retry-after'])}`)
  t.match(limited.json(), { statusCode: 429, code: 'METRICS_RATE_LIMITED', error: 'Too Many Requests' })
  t.equal((await post(INGEST_NEXT)).statusCode, 202, 'another token has its own budget')
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'health is never limited')
  for (let i = 0; i < 3; i++) await app.inject({ url: '/api/metrics/realtime?id=x', remoteAddress: '10.9.9.9' })
  t.equal((await app.inject({ url: '/api/metrics/realtime?id=x', remoteAddress: '10.9.9.9' })).statusCode, 429, 'without a token, per IP')
  t.equal((await app.inject({ url: '/api/metrics/realtime?id=x', remoteAddress: '10.9.9.8' })).statusCode, 200, 'another IP is not limited')
})

t.test('rate limit 0 turns it off', async (t) => {
  const { app } = await build(t, { config: { rateLimitMax: 0 } })
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ url: '/api/metrics/realtime?id=x' })).statusCode, 200)
})

t.test('CORS allow-list', async (t) => {
  const { app } = await build(t, { config: { corsOrigins: ['https://dash.example'] } })
  const ok = await app.inject({ url: '/api/metrics/realtime?id=x', headers: { origin: 'https://dash.example' } })
  t.equal(ok.headers['access-control-allow-origin'], 'https://dash.example')
  const preflight = await app.inject({ method: 'OPTIONS', url: '/api/metrics/chat', headers: { origin: 'https://dash.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } })
  t.equal(preflight.statusCode, 204)
  t.match(String(preflight.headers['access-control-allow-headers']), /authorization/)
  t.match(String(preflight.headers['access-control-allow-headers']), /idempotency-key/, 'a browser may send an Idempotency-Key')
  const other = await app.inject({ url: '/api/metrics/realtime?id=x', headers: { origin: 'https://evil.example' } })
  t.notOk('access-control-allow-origin' in other.headers, 'another origin gets no CORS header')
  const { app: closed } = await build(t)
  const none = await closed.inject({ url: '/api/metrics/realtime?id=x', headers: { origin: 'https://dash.example' } })
  t.notOk('access-control-allow-origin' in none.headers, 'no allow-list: no CORS')
})

t.test('cardinality guard', async (t) => {
  const { app, store } = await build(t, { config: { maxIds: { model: 3, provider: 2, gateway: 2 } } })
  const post = async (payload: unknown) => await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: payload as object })
  t.equal((await post([{ model: 'a/1', success: true }, { model: 'a/2', success: true }, { model: 'b/3', success: true }])).statusCode, 202, '3 models, 2 providers fit')
  const refused = await post([{ model: 'a/1', success: true }, { model: 'a/4', success: true }])
  t.equal(refused.statusCode, 429, 'a 4th model is refused')
  t.match(refused.json(), { code: 'METRICS_TOO_MANY_IDS', message: /model "a\/4".*METRICS_MAX_MODELS/ })
  t.equal((await post({ model: 'c/1', success: true })).statusCode, 429, 'so is a model of a 3rd provider')
  t.equal((await post({ model: 'a/1', success: true, gateway: 'g1' })).statusCode, 202, 'a 2nd gateway fits')
  t.match((await post({ model: 'a/1', success: true, gateway: 'g2' })).json(), { statusCode: 429, message: /gateway "g2"/ })
  t.equal((await post([{ model: 'a/1', success: true }, { model: 'b/3', success: false }])).statusCode, 202, 'known ones keep working')
  t.equal(app.cardinalityGuard.refused.model, 3, 'refused events are counted (the whole batch of 2, then 1)')
  t.equal(app.cardinalityGuard.refused.gateway, 1)
  await app.flusher.flush()
  t.notOk((await store.keys()).some((k) => k.includes('a/4') || k.includes('c/1') || k.includes('g2')), 'refused batches leave no key, not even their known events')
  const rt = (await app.inject({ url: '/api/metrics/realtime?id=a/1' })).json()
  t.equal(rt.requests, 3, 'a/1 counted from the accepted requests only')
})

t.test('bounded buffer: 503 with Retry-After, never a 202 that is dropped', async (t) => {
  const failing = new (await import('../../src/store/memory-store.js')).MemoryStore()
  failing.applyGroups = async (_seq, groups) => groups.map(() => new Error('store down'))
  const { app } = await build(t, { store: failing, config: { maxBufferedKeys: 100, flushIntervalMs: 20 } })
  t.teardown(() => failing.close())
  let accepted = 0
  let refused: { statusCode: number, headers: Record<string, unknown>, json: () => unknown } | undefined
  for (let i = 0; i < 100 && refused === undefined; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model: `p/m${i}`, success: true } })
    if (res.statusCode === 202) accepted++
    else refused = res
  }
  t.ok(refused !== undefined, `refused after ${accepted} accepted`)
  t.equal(refused?.statusCode, 503)
  t.ok(Number(refused?.headers['retry-after']) >= 1, 'with Retry-After')
  t.match(refused?.json(), { code: 'METRICS_BUFFER_FULL' })
  t.ok(app.flusher.bufferedKeys <= 100, `the buffer holds ${app.flusher.bufferedKeys} entity-buckets, within the bound`)
  t.equal(app.flusher.pendingEvents, accepted, 'every accepted event is still held')
  const known = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model: 'p/m0', success: true } })
  t.equal(known.statusCode, 202, 'events for entity-buckets already held still fit')
})
