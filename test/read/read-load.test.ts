/**
 * Reads cannot starve writes (a real redis-server): 60 long-lived streams with distinct parameters
 * and 20 clients sending cold reads with ever new parameters, the read cache off, while events are
 * recorded and /readyz is polled. The recorded events land during the load, /readyz answers 200
 * throughout, every read is answered 200 or 503 METRICS_READ_BUSY with Retry-After, and the store
 * reads in flight never exceed METRICS_READ_CONCURRENCY.
 */
import t from 'tap'
import { DEFAULT_THRESHOLDS } from '../../src/metrics/status.js'
import { leaderboardComputation } from '../../src/read/leaderboard.js'
import { readRealtime } from '../../src/read/realtime.js'
import { RedisStore } from '../../src/store/redis-store.js'
import { listenApp } from '../helpers/live.js'
import { startRedis } from '../helpers/redis.js'
import { openSse, type SseClient } from '../helpers/sse.js'

const MODELS = 300
const HOUR = 3_600_000
const CONCURRENCY = 2

t.test('a hostile read load leaves flushes and readiness alone', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const l = await listenApp(t, {
    config: {
      redis: { url: redis.url },
      cacheTtlMs: 0,
      flushIntervalMs: 50,
      stream: { intervalMs: 100, heartbeatMs: 15_000, maxSubscribers: 200 },
      readBudget: { concurrency: CONCURRENCY, queue: 64, msPerSecond: 500 }
    }
  })
  const direct = new RedisStore({ url: redis.url })
  await direct.connect(2000)
  t.teardown(async () => { await direct.close() })

  // 24 hours of traffic for 300 models with spread timings (many histogram bins), so that a 24h
  // leaderboard of 100 is a large cold read: enough, without the budget, to hold /readyz past 2 s.
  const now = Date.now()
  const events = []
  for (let h = 0; h < 24; h++) {
    for (let m = 0; m < MODELS; m++) {
      for (let i = 0; i < 6; i++) {
        events.push({ model: `vendor-${m % 10}/model-${m}`, gateway: `gw-${m % 3}`, success: (m + i) % 9 !== 0, ttft_ms: 50 + ((m * 7 + i * 131 + h * 17) % 3000), total_time_ms: 500 + ((m * 13 + i * 977 + h * 31) % 20000), output_tokens: 10 + ((i * 37 + h) % 900), timestamp: now - h * HOUR - i * 1000 })
      }
    }
  }
  for (let i = 0; i < events.length; i += 1000) await l.post('/api/metrics/chat', events.slice(i, i + 1000))

  // 60 streams, each a distinct question before normalisation.
  const streams: SseClient[] = []
  t.teardown(() => { for (const s of streams) s.close() })
  const boards = new Set<string>()
  for (let i = 0; i < 60; i++) {
    const q = { window: '24h', order: 'desc', limit: 100 - i, minRequests: 1 + i } as const
    boards.add(JSON.stringify(leaderboardComputation(q)))
    streams.push(await openSse(`${l.base}/api/metrics/stream?topic=leaderboard&topic=sparklines&topic=gateways&window=24h&limit=${q.limit}&min_requests=${q.minRequests}`))
  }
  t.ok(streams.every((s) => s.status === 200), '60 streams open')

  // 20 clients, each read with parameters never asked before: nothing any cache could share.
  let loading = true
  const statuses = new Map<number, number>()
  let busyWithoutRetryAfter = 0
  let n = 0
  const urls = [
    (k: number) => `/api/metrics/realtime?type=model&id=vendor-${k % 10}/model-${k % MODELS}&window=${k % 3 === 0 ? '24h' : '1h'}`,
    (k: number) => `/api/metrics/health/leaderboard?window=${['1h', '6h', '24h'][k % 3]!}&order=${k % 2 === 0 ? 'asc' : 'desc'}&limit=100&min_requests=${1 + (k % 1000)}`,
    (k: number) => `/api/metrics/trends?model=vendor-${k % 10}/model-${k % MODELS}&hours=168&stat=${['p50', 'p90', 'p99', 'avg'][k % 4]!}`,
    (k: number) => `/api/metrics/compare?model=vendor-${k % 10}/model-${k % MODELS}&window=${['15m', '1h', '24h'][k % 3]!}`,
    (k: number) => `/api/metrics/provider/summary?window=24h&provider=vendor-${k % 10}`
  ]
  const readers = Array.from({ length: 20 }, async () => {
    while (loading) {
      const k = n++
      const res = await fetch(l.base + urls[k % urls.length]!(k))
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      const body = await res.json() as { code?: string }
      if (res.status === 503 && (body.code !== 'METRICS_READ_BUSY' || res.headers.get('retry-after') !== '1')) busyWithoutRetryAfter++
    }
  })

  // Meanwhile: one event a round for a probe model, and a readiness poll.
  let posted = 0
  const readiness: number[] = []
  for (let round = 0; round < 40; round++) {
    const res = await fetch(`${l.base}/api/metrics/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'probe/model', success: true, ttft_ms: 50 }) })
    if (res.status === 202) posted++
    readiness.push((await fetch(`${l.base}/readyz`)).status)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(posted, 40, 'every probe event accepted')
  t.same(readiness.filter((s) => s !== 200), [], `/readyz answered 200 to all ${readiness.length} polls under the load`)
  const landed = async (): Promise<number> => (await readRealtime(direct, 'model', 'probe/model', '1h', Date.now(), DEFAULT_THRESHOLDS)).requests
  let seen = 0
  for (let i = 0; i < 200 && (seen = await landed()) < posted; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(seen, posted, 'the events recorded during the load were flushed during the load, and read back')

  loading = false
  await Promise.all(readers)
  const answered = [...statuses.values()].reduce((a, b) => a + b, 0)
  t.ok(answered >= 20, `${answered} hostile reads answered: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.same([...statuses.keys()].filter((s) => s !== 200 && s !== 503), [], 'every read answered 200 or 503')
  t.equal(busyWithoutRetryAfter, 0, 'every 503 is METRICS_READ_BUSY with Retry-After: 1')
  const budget = l.app.readBudget
  t.ok(budget.maxActive <= CONCURRENCY, `store reads in flight at most ${budget.maxActive}, never above ${CONCURRENCY}`)
  t.ok(budget.admitted > 0, `${budget.admitted} reads admitted, ${budget.refused} refused`)
  t.equal(l.app.metricsStream.topics, 2 * boards.size + 1, `${l.app.metricsStream.topics} stream computations for 60 streams: ${boards.size} leaderboards with their sparklines, one gateways topic`)
  t.equal(l.app.metricsStream.subscribers, 60, 'no stream dropped')
  t.equal(l.app.flusher.pendingEvents, 0, 'nothing left unwritten')
})
