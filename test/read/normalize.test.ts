/**
 * The normalised read parameters (read/params.ts): a handful of distinct computations serve every
 * value of `limit`, `min_requests` and `hours`, and an answer cut from a computation for more equals
 * the answer computed for exactly what was asked (only min_requests changes an answer: rounded up).
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { bucketExpiry, bucketName, bucketStart, WINDOW_NAMES } from '../../src/metrics/buckets.js'
import { DEFAULT_THRESHOLDS, type Transition } from '../../src/metrics/status.js'
import { narrowCatalog, readCatalog, readCatalogComputation } from '../../src/read/catalog.js'
import { encodeTransition, narrowHistory, readStatusHistory } from '../../src/read/history.js'
import { leaderboardComputation, narrowLeaderboard, readLeaderboard } from '../../src/read/leaderboard.js'
import { CATALOG_LIMIT_TIERS, hoursTier, roundUp125, tierOf } from '../../src/read/params.js'
import { narrowTrends, readTrends, trendsComputation, type TrendQuery } from '../../src/read/trends.js'
import { entityKey, entityTag, markerKey } from '../../src/store/keys.js'
import { latestValue } from '../../src/store/merge.js'
import { build } from '../helpers/app.js'
import { HOUR, makeFixture, MINUTE, postEvents } from './fixture.js'

const RETENTION = 192
const th = DEFAULT_THRESHOLDS

async function get (app: FastifyInstance, url: string): Promise<any> {
  const res = await app.inject({ method: 'GET', url })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  return res.json()
}

t.test('the rules', async (t) => {
  t.same([1, 2, 3, 5, 6, 10, 11, 27, 30, 50, 51, 100, 101, 999, 1_000_000_000].map(roundUp125), [1, 2, 5, 5, 10, 10, 20, 50, 50, 50, 100, 100, 200, 1000, 1_000_000_000])
  t.same([1, 10, 11, 25, 26, 99, 100].map((l) => leaderboardComputation({ window: '1h', order: 'desc', limit: l, minRequests: 1 }).limit), [10, 10, 25, 25, 50, 100, 100])
  t.same([1, 6, 7, 24, 25, 168].map((hours) => trendsComputation({ type: 'model', id: 'x', metric: 'ttft', stat: 'p50', hours, resolution: 'hour' }).hours), [6, 6, 24, 24, 72, 168])
  t.equal(trendsComputation({ type: 'model', id: 'x', metric: 'ttft', stat: 'p50', hours: 1, resolution: 'minute' }).hours, 2)
  t.same([1, 24, 25, 168, 169, 8760].map((h) => hoursTier(h, RETENTION)), [
    { effective: 1, computed: 24 }, { effective: 24, computed: 24 }, { effective: 25, computed: 168 },
    { effective: 168, computed: 168 }, { effective: 169, computed: 192 }, { effective: 192, computed: 192 }
  ])
  t.same([1, 20, 21, 100].map((l) => tierOf(CATALOG_LIMIT_TIERS, l)), [20, 20, 100, 100])
  t.equal(tierOf([10, 20], 21), 21, 'beyond the last tier: itself')
})

t.test('an answer cut from a larger computation equals the answer computed for what was asked', async (t) => {
  const { app, store } = await build(t, { config: { retentionHours: RETENTION } })
  const now = Date.now()
  await postEvents(app, makeFixture(now))

  t.test('leaderboard: the first `limit` entries', async (t) => {
    for (const window of WINDOW_NAMES) {
      for (const order of ['desc', 'asc'] as const) {
        for (const limit of [1, 3, 10, 11, 30, 100]) {
          const q = { window, order, limit, minRequests: 1 }
          const c = leaderboardComputation(q)
          t.same(narrowLeaderboard(await readLeaderboard(store, c, now, th), limit), await readLeaderboard(store, q, now, th), `${window} ${order} limit ${limit} (from ${c.limit})`)
        }
      }
    }
  })

  t.test('trends: the last `hours`', async (t) => {
    for (const [resolution, hours] of [['hour', 1], ['hour', 5], ['hour', 7], ['hour', 23], ['hour', 30], ['hour', 100], ['minute', 1], ['minute', 2]] as const) {
      for (const metric of ['ttft', 'requests'] as const) {
        const q: TrendQuery = { type: 'model', id: 'openai/gpt-4o', metric, stat: metric === 'ttft' ? 'p90' : null, hours, resolution }
        const c = trendsComputation(q)
        const cut = narrowTrends(await readTrends(store, c, now), hours)
        t.same(cut, await readTrends(store, q, now), `${metric} by ${resolution}, ${hours} hours (from ${c.hours})`)
        t.ok(cut.points.some((p) => p.count > 0), 'with traffic')
      }
    }
  })
})

t.test('status history: the changes of the last `hours`', async (t) => {
  const { app, store } = await build(t, { config: { retentionHours: RETENTION } })
  // At minute 3 of an hour, so that hours=1 starts after a change the read recomputes (live).
  const at = Math.floor((Date.now() - 4 * MINUTE) / HOUR) * HOUR + 3 * MINUTE
  // Changes stored over the last days, as the recorder stores them (one `last:` field each, in the hour of the change)...
  const stored: Transition[] = [
    { at: at - 50 * HOUR, from: 'unknown', to: 'healthy', reason: 'r1' },
    { at: at - 26 * HOUR - 30 * MINUTE, from: 'healthy', to: 'down', reason: 'r2' },
    { at: at - 26 * HOUR - 10 * MINUTE, from: 'down', to: 'healthy', reason: 'r3' },
    { at: at - 3 * HOUR - 20 * MINUTE, from: 'healthy', to: 'degraded', reason: 'r4' },
    { at: at - 3 * HOUR, from: 'degraded', to: 'healthy', reason: 'r5' },
    { at: at - 5 * MINUTE, from: 'healthy', to: 'degraded', reason: 'recomputed by every read instead' }
  ]
  const id = 'flap/model'
  await store.applyGroups(1, [{
    marker: markerKey(entityTag('model', id), 'status'),
    keys: stored.map((tr) => ({
      key: entityKey('model', id, 'status', bucketName('hour', tr.at)),
      expireAt: bucketExpiry('hour', bucketStart('hour', tr.at), RETENTION),
      ops: [['l', `last:${latestValue(tr.at, '')}`, latestValue(tr.at, encodeTransition(tr))]]
    }))
  }])
  // ...and traffic that went down 12 minutes ago: a change the read recomputes.
  const events: unknown[] = []
  for (let back = 40; back > 0; back--) {
    const failing = back <= 12 && back > 4
    for (let i = 0; i < 10; i++) events.push({ model: id, success: !failing, ...(failing ? { error_type: 'timeout' } : {}), ttft_ms: 300, timestamp: at - back * MINUTE + i * 1000 })
  }
  await postEvents(app, events as never)
  const full = await readStatusHistory(store, 'model', id, RETENTION, at, th)
  t.same(full.transitions.map((x) => x.reason).filter((r) => r.startsWith('r')), ['r5', 'r4', 'r3', 'r2', 'r1'], 'the stored changes')
  const latest = Date.parse(full.transitions[0]!.at)
  t.ok(latest < at - 3 * MINUTE && latest > at - 12 * MINUTE, 'the latest change came in the minutes before the hour, recomputed by the read')
  for (const hours of [1, 2, 3, 4, 5, 24, 26, 27, 28, 50, 51, 100, 168, 192]) {
    const { computed } = hoursTier(hours, RETENTION)
    const cut = narrowHistory(await readStatusHistory(store, 'model', id, computed, at, th), hours)
    t.same(cut, await readStatusHistory(store, 'model', id, hours, at, th), `${hours} hours (from ${computed})`)
  }
})

t.test('catalog: the fetches and changes of the last `hours`, at most `limit`', async (t) => {
  const { app, store } = await build(t, { config: { retentionHours: RETENTION } })
  const at = Date.now()
  const lists = [['a/1', 'b/2'], ['a/1', 'b/2', 'c/3'], ['c/3'], ['c/3', 'd/4']]
  const fetches = Array.from({ length: 40 }, (_, i) => ({ gateway: 'gw-1', status: 'success', models: lists[Math.floor(i / 2) % lists.length], timestamp: at - (40 - i) * 45 * MINUTE }))
  fetches.push({ gateway: 'gw-1', status: 'success', models: ['e/5'], timestamp: at - MINUTE })
  const res = await app.inject({ method: 'POST', url: '/api/metrics/gateway/fetch', payload: fetches })
  t.equal(res.statusCode, 202)
  await app.flusher.flush()
  for (const hours of [1, 2, 3, 5, 24, 25, 30, 168]) {
    for (const limit of [1, 2, 3, 20, 21]) {
      const { computed } = hoursTier(hours, RETENTION)
      const cut = narrowCatalog(await readCatalogComputation(store, 'gw-1', computed, tierOf(CATALOG_LIMIT_TIERS, limit), at), hours, limit)
      t.same(cut, await readCatalog(store, 'gw-1', hours, limit, at), `${hours} hours, limit ${limit}`)
    }
  }
  const none = narrowCatalog(await readCatalogComputation(store, 'gw-1', 24, 20, at + 2 * HOUR), 1, 20)
  t.same([none.fetches, none.last_fetch_at, none.models, none.changes], [0, null, [], []], 'no fetch in the narrower window')
})

t.test('the routes compute a handful of distinct answers for any number of parameter values', async (t) => {
  const { app } = await build(t, { config: { retentionHours: RETENTION, cacheTtlMs: 60_000 } })
  await postEvents(app, makeFixture(Date.now()))
  const loads = (): number => app.readCache.counts.loads

  let before = loads()
  const computations = new Set<string>()
  for (let m = 1; m <= 60; m++) {
    const limit = 1 + (m * 37) % 100
    const body = await get(app, `/api/metrics/health/leaderboard?window=24h&min_requests=${m}&limit=${limit}`)
    computations.add(`${roundUp125(m)}/${leaderboardComputation({ window: '24h', order: 'desc', limit, minRequests: m }).limit}`)
    t.equal(body.min_requests, roundUp125(m))
    t.ok(body.entries.length <= limit && body.entries.every((e: any) => e.requests >= m), `min_requests ${m}, limit ${limit}`)
  }
  t.ok(computations.size <= 7 * 4, `${computations.size} normalised leaderboards`)
  t.equal(loads() - before, computations.size, `60 distinct leaderboard queries, ${computations.size} computations`)

  before = loads()
  const all = await get(app, '/api/metrics/trends?model=openai%2Fgpt-4o&hours=168')
  for (let hours = 1; hours <= 168; hours++) {
    const body = await get(app, `/api/metrics/trends?model=openai%2Fgpt-4o&hours=${hours}`)
    t.same(body.points, all.points.slice(-hours), `trends ${hours} hours: the last of 168`)
  }
  t.equal(loads() - before, 4, '168 distinct hours, 4 computations')

  before = loads()
  for (const hours of [1, 2, 23, 24, 25, 100, 168, 169, 500, 8760]) await get(app, `/api/metrics/status/history?id=openai%2Fgpt-4o&hours=${hours}`)
  t.equal(loads() - before, 3, 'history: 10 distinct hours, 3 computations (24, 168, the retention)')

  before = loads()
  for (const hours of [1, 5, 24, 30, 168]) {
    for (const limit of [1, 5, 20, 50, 100]) await get(app, `/api/metrics/gateway/catalog?gateway=gw-1&hours=${hours}&limit=${limit}`)
  }
  t.equal(loads() - before, 4, 'catalog: 25 distinct queries, 4 computations')
})
