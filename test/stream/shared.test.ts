/**
 * Streams asking the same normalised question share one computation per interval: 60 streams with
 * 60 distinct `min_requests` and `limit` values run a handful of leaderboard computations, and each
 * stream still gets exactly what GET /api/metrics/health/leaderboard answers for its own parameters.
 */
import t from 'tap'
import { leaderboardComputation } from '../../src/read/leaderboard.js'
import { listenApp } from '../helpers/live.js'
import { openSse, until, type SseClient } from '../helpers/sse.js'

const json = (e: { data: string }): any => JSON.parse(e.data)
// The window moves on with the clock between a frame and the GET; the rest must be equal.
const withoutTimes = (v: any): any => JSON.parse(JSON.stringify(v, (k, x) => k === 'window' || k === 'generated_at' ? undefined : x))

t.test('60 streams with distinct parameters share a handful of computations', async (t) => {
  const l = await listenApp(t, { config: { stream: { intervalMs: 500, heartbeatMs: 15_000, maxSubscribers: 100 } } })
  const now = Date.now()
  // 40 models with 1..40 requests each.
  await l.post('/api/metrics/chat', Array.from({ length: 40 }, (_, m) => Array.from({ length: m + 1 }, (_, i) => ({ model: `acme/m-${m}`, success: i % 5 !== 0, ttft_ms: 100 + m, timestamp: now - i * 1000 }))).flat())
  const params = Array.from({ length: 60 }, (_, i) => ({ minRequests: i + 1, limit: 1 + (i * 37) % 100 }))
  const clients: SseClient[] = []
  t.teardown(() => { for (const c of clients) c.close() })
  for (const p of params) clients.push(await openSse(`${l.base}/api/metrics/stream?topic=leaderboard&topic=sparklines&window=1h&min_requests=${p.minRequests}&limit=${p.limit}`))
  const computations = new Set(params.map((p) => JSON.stringify(leaderboardComputation({ window: '1h', order: 'desc', ...p }))))
  t.equal(l.app.metricsStream.subscribers, 60)
  t.ok(computations.size <= 7 * 4, `${computations.size} normalised leaderboards for 60 parameter pairs (7 thresholds × 4 lengths at most)`)
  t.equal(l.app.metricsStream.topics, 2 * computations.size, 'one leaderboard and one sparklines computation each, not 120')

  for (const [i, p] of params.entries()) {
    const c = clients[i]!
    const board = json(await c.next((e) => e.event === 'leaderboard'))
    const res = await fetch(`${l.base}/api/metrics/health/leaderboard?window=1h&min_requests=${p.minRequests}&limit=${p.limit}`)
    t.same(withoutTimes(board), withoutTimes(await res.json()), `min_requests ${p.minRequests}, limit ${p.limit}: the GET answer`)
    t.ok(board.entries.length <= p.limit && board.entries.every((e: any) => e.requests >= p.minRequests), 'within its own limit and threshold')
    const spark = json(await c.next((e) => e.event === 'sparklines'))
    t.same(Object.keys(spark.series).sort(), board.entries.map((e: any) => e.model).sort(), 'sparklines of its own entries')
  }
  for (const c of clients) c.close()
  await until(() => l.app.metricsStream.subscribers === 0, 'every stream closed')
  t.equal(l.app.metricsStream.topics, 0)
})
