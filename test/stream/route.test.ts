import t, { type Test } from 'tap'
import type { Config } from '../../src/config.js'
import { GATEWAYS_SHOWN } from '../../src/stream/topics.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Fields, MergeRead } from '../../src/store/types.js'
import { listenApp, type LiveApp } from '../helpers/live.js'
import { openSse, until, type SseClient } from '../helpers/sse.js'

const READ = 'read-token-for-stream-tests'
const INTERVAL = 100

/** Counts reads, and fails them on demand. */
class CountingStore extends MemoryStore {
  reads = 0
  failing = false
  override async read (reads: MergeRead[]): Promise<Fields[][]> {
    this.reads++
    if (this.failing) throw new Error('store down')
    return await super.read(reads)
  }
}

type Live = LiveApp<CountingStore>

async function live (t: Test, config: Partial<Config> = {}): Promise<Live> {
  return await listenApp(t, { store: new CountingStore(), config: { stream: { intervalMs: INTERVAL, heartbeatMs: 15_000, maxSubscribers: 100 }, ...config } })
}

async function get (l: Live, url: string): Promise<any> {
  const res = await fetch(l.base + url)
  return await res.json()
}

const json = (e: { data: string }): any => JSON.parse(e.data)
const withoutTimes = (v: any): any => JSON.parse(JSON.stringify(v, (k, x) => k === 'to' || k === 'generated_at' ? undefined : x))

function closeLater (t: Test, clients: SseClient[]): void {
  t.teardown(() => { for (const c of clients) c.close() })
}

t.test('GET /api/metrics/stream: validation names the field', async (t) => {
  const l = await live(t)
  for (const [url, message] of [
    ['?topic=nope', /querystring\.topic\[0\] must be one of leaderboard, sparklines, providers, gateways, realtime/],
    ['?topic=realtime', /querystring\.id is required with topic realtime/],
    ['?topic=leaderboard&topic=providers&topic=leaderboard', /querystring\.topic must NOT have duplicate items/],
    ['?window=2h', /querystring\.window must be one of 5m, 15m, 1h, 6h, 24h/],
    ['?limit=0', /querystring\.limit must be >= 1/],
    ['?topic=realtime&id=x&type=user', /querystring\.type must be one of model, provider, gateway/]
  ] as Array<[string, RegExp]>) {
    const res = await fetch(`${l.base}/api/metrics/stream${url}`)
    t.equal(res.status, 400, url)
    t.match(await res.json(), { statusCode: 400, message }, url)
  }
  t.equal(l.app.metricsStream.subscribers, 0, 'no stream opened')
})

t.test('the read token guards the stream, in the Authorization header only', async (t) => {
  const l = await live(t, { readTokens: [READ] })
  const none = await fetch(`${l.base}/api/metrics/stream`)
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer')
  t.match(await none.json(), { code: 'METRICS_UNAUTHORIZED', message: /METRICS_READ_TOKEN/ })
  const s = await openSse(`${l.base}/api/metrics/stream`, { authorization: `Bearer ${READ}` })
  closeLater(t, [s])
  t.equal(s.status, 200)
  t.match(s.headers.get('content-type'), /^text\/event-stream/)
  t.equal(s.headers.get('cache-control'), 'no-cache, no-transform')
  const board = json(await s.next((e) => e.event === 'leaderboard'))
  t.same(board.entries, [], 'no traffic yet: an empty leaderboard')
})

t.test('the gateways topic lists no reserved id (the operator probe\'s gateway), as no listing does', async (t) => {
  const l = await live(t)
  const now = Date.now()
  await l.post('/api/metrics/chat', [
    { model: 'acme/fast', gateway: 'eu-1', success: true, ttft_ms: 100, timestamp: now },
    { model: 'acme/fast', gateway: '__check__', success: true, ttft_ms: 100, timestamp: now },
    { model: 'acme/fast', gateway: '__check__', success: true, ttft_ms: 100, timestamp: now }
  ])
  t.equal((await get(l, '/api/metrics/realtime?type=gateway&id=__check__&window=5m')).requests, 2, 'readable by id')
  const s = await openSse(`${l.base}/api/metrics/stream?topic=gateways&window=5m`)
  closeLater(t, [s])
  const gateways = json(await s.next((e) => e.event === 'gateways'))
  t.same(gateways.gateways.map((g: any) => g.id), ['eu-1'])
})

t.test('every topic carries what the matching GET route answers, and follows new events', async (t) => {
  const l = await live(t)
  const now = Date.now()
  const events = [
    ...Array.from({ length: 6 }, (_, i) => ({ model: 'acme/fast', gateway: 'eu-1', success: true, ttft_ms: 100 + i, total_time_ms: 900, output_tokens: 80, timestamp: now })),
    ...Array.from({ length: 4 }, (_, i) => ({ model: 'beta/slow', gateway: 'us-1', success: i < 2, ...(i < 2 ? {} : { error_type: 'timeout' }), ttft_ms: 700, timestamp: now })),
    ...Array.from({ length: 4 }, () => ({ model: 'beta/slow', gateway: 'ap-1', success: true, ttft_ms: 650, timestamp: now }))
  ]
  await l.post('/api/metrics/chat', events)
  await l.post('/api/metrics/gateway/fetch', [
    { gateway: 'eu-1', status: 'success', model_count: 42, response_time_ms: 120, timestamp: now },
    { gateway: 'eu-1', status: 'error', error_type: 'timeout', response_time_ms: 5000, timestamp: now }
  ])
  const s = await openSse(`${l.base}/api/metrics/stream?topic=leaderboard&topic=sparklines&topic=providers&topic=gateways&topic=realtime&window=5m&id=acme/fast`)
  closeLater(t, [s])
  t.equal(s.status, 200)

  const board = json(await s.next((e) => e.event === 'leaderboard'))
  t.same(withoutTimes(board), withoutTimes(await get(l, '/api/metrics/health/leaderboard?window=5m')), 'leaderboard = GET leaderboard')
  t.same(board.entries.map((e: any) => e.model), ['acme/fast', 'beta/slow'])

  const providers = json(await s.next((e) => e.event === 'providers'))
  t.same(withoutTimes(providers), withoutTimes(await get(l, '/api/metrics/provider/summary?window=5m')), 'providers = GET provider summary')

  const realtime = json(await s.next((e) => e.event === 'realtime'))
  t.same(withoutTimes(realtime), withoutTimes(await get(l, '/api/metrics/realtime?type=model&id=acme/fast&window=5m')), 'realtime = GET realtime')

  const gateways = json(await s.next((e) => e.event === 'gateways'))
  t.same(gateways.gateways.map((g: any) => g.id), ['eu-1', 'ap-1', 'us-1'], 'gateways with traffic, busiest first, then by name')
  t.match(gateways.gateways[0], { type: 'gateway', requests: 6, gateway_fetches: { fetches: 2, errors: 1, timeouts: 1, last_model_count: 42 } })
  t.same(withoutTimes(gateways.gateways[2]), withoutTimes(await get(l, '/api/metrics/realtime?type=gateway&id=us-1&window=5m')))
  t.ok(GATEWAYS_SHOWN >= 2)

  const spark = json(await s.next((e) => e.event === 'sparklines'))
  t.match(spark, { metric: 'ttft', stat: 'p50', resolution: 'minute', step_seconds: 60 })
  t.same(Object.keys(spark.series).sort(), ['acme/fast', 'beta/slow'])
  const fast = spark.series['acme/fast'] as Array<number | null>
  t.equal(fast.length, 60, 'the last hour by minute')
  t.equal(fast.at(-1), board.entries[0].ttft_p50_ms, 'the current minute: the TTFT p50 of the leaderboard')
  t.equal(fast.filter((v) => v !== null).length, 1, 'the other minutes had no traffic')
  t.equal(Date.parse(spark.from) % 60_000, 0, 'from: a minute start')

  // A new event shows up in the next snapshot.
  const seen = s.events.length
  await l.post('/api/metrics/chat', { model: 'acme/fast', gateway: 'eu-1', success: true, ttft_ms: 100 })
  const after = json(await s.next((e) => e.event === 'realtime' && json(e).requests === 7, { from: seen }))
  t.equal(after.requests, 7, 'the new event is in the realtime snapshot')
  t.equal(l.app.metricsStream.topics, 5, 'five snapshots')
})

t.test('the 24h window: sparklines by hour', async (t) => {
  const l = await live(t)
  const s = await openSse(`${l.base}/api/metrics/stream?topic=sparklines&window=24h`)
  closeLater(t, [s])
  t.match(json(await s.next((e) => e.event === 'sparklines')), { resolution: 'hour', step_seconds: 3600, series: {} })
})

t.test('one computation per interval however many streams listen; none once they leave', async (t) => {
  const l = await live(t)
  await l.post('/api/metrics/chat', { model: 'acme/a', success: true, ttft_ms: 10 })
  const url = `${l.base}/api/metrics/stream?topic=leaderboard&window=1h`
  const clients = await Promise.all(Array.from({ length: 20 }, async () => await openSse(url)))
  closeLater(t, clients)
  t.equal(l.app.metricsStream.subscribers, 20)
  t.equal(l.app.metricsStream.topics, 1, 'one shared snapshot')
  await clients[0]!.next((e) => e.event === 'leaderboard')
  // Read the count between two frames, so that no computation is half-way.
  const startFrames = clients[0]!.events.length
  const startReads = l.store.reads
  await clients[0]!.next(() => true, { from: startFrames + 4 })
  const frames = clients[0]!.events.length - startFrames
  const reads = l.store.reads - startReads
  // A leaderboard is two store reads (the activity index, then the ranked models' details).
  t.ok(reads <= 2 * (frames + 1), `${reads} store reads for ${frames} frames sent to each of 20 streams`)
  for (const c of clients) await c.next((e) => e.event === 'leaderboard', { from: startFrames + 4 })

  for (const c of clients) c.close()
  await until(() => l.app.metricsStream.subscribers === 0, 'every stream closed on the server')
  t.equal(l.app.metricsStream.topics, 0, 'the snapshot is no longer computed')
  const idle = l.store.reads
  await new Promise((resolve) => setTimeout(resolve, INTERVAL * 4))
  t.equal(l.store.reads, idle, 'no store read after the last stream left')
})

t.test('streams are capped: beyond the cap 503 with Retry-After', async (t) => {
  const l = await live(t, { stream: { intervalMs: INTERVAL, heartbeatMs: 15_000, maxSubscribers: 2 } })
  const url = `${l.base}/api/metrics/stream`
  const a = await openSse(url)
  const b = await openSse(url)
  closeLater(t, [a, b])
  const refused = await fetch(url)
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '10')
  t.match(await refused.json(), { code: 'METRICS_STREAM_FULL', message: /2 subscribers, its limit/ })
  a.close()
  await until(() => l.app.metricsStream.subscribers === 1, 'the first stream gone')
  const c = await openSse(url)
  closeLater(t, [c])
  t.equal(c.status, 200, 'room again once one left')
})

t.test('heartbeat comments keep an idle stream alive', async (t) => {
  const l = await live(t, { stream: { intervalMs: 60_000, heartbeatMs: 100, maxSubscribers: 10 } })
  const s = await openSse(`${l.base}/api/metrics/stream`)
  closeLater(t, [s])
  await until(() => s.comments.filter((c) => c === 'ping').length >= 2, 'two heartbeats')
  t.same(s.events.map((e) => e.event), ['leaderboard'], 'one snapshot, then only heartbeats while nothing changes')
})

t.test('a store failure is an error event; the stream stays open and recovers', async (t) => {
  const l = await live(t)
  const s = await openSse(`${l.base}/api/metrics/stream?topic=providers`)
  closeLater(t, [s])
  await s.next((e) => e.event === 'providers')
  l.store.failing = true
  const err = json(await s.next((e) => e.event === 'error'))
  t.same(err, { topic: 'providers', statusCode: 503, code: 'METRICS_STORE_UNAVAILABLE', message: 'the metrics store is unreachable; try again shortly' })
  const at = s.events.length
  l.store.failing = false
  await s.next((e) => e.event === 'providers', { from: at })
  t.pass('providers again once the store answers')
})

t.test('closing the app ends open streams at once', async (t) => {
  const l = await live(t)
  const s = await openSse(`${l.base}/api/metrics/stream?topic=leaderboard&topic=providers`)
  closeLater(t, [s])
  await s.next((e) => e.event === 'leaderboard')
  await l.app.close()
  await s.ended
  t.equal(l.app.metricsStream.subscribers, 0)
  t.equal(l.app.metricsStream.topics, 0, 'no timer left')
})
