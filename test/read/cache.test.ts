/**
 * The read cache in front of the leaderboard, the provider summary and trends (docs/api.md "Reading",
 * "Operating"): answers live METRICS_CACHE_TTL_MS, Cache-Control says their remaining life,
 * concurrent identical misses share one load, and a store that cannot answer gives a 503.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Fields, MergeRead } from '../../src/store/types.js'
import { build } from '../helpers/app.js'
import { inWindow, makeFixture, matches, postEvents, refLeaderboard, refProviders, refTrendPoints, HOUR, type FixtureEvent } from './fixture.js'
import type { LeaderboardBody, ProviderSummaryBody, TrendsBody, ErrorBody } from './read-suite.js'

const LEADERBOARD = '/api/metrics/health/leaderboard'
const PROVIDERS = '/api/metrics/provider/summary'
const TRENDS = '/api/metrics/trends'
const TTL_MS = 5000

/**
 * The embedded store with its reads counted, optionally slowed down or failing; everything else is
 * the MemoryStore's own.
 */
class WrappedStore extends MemoryStore {
  reads = 0
  delayMs = 0
  failReads = false

  override async read (reads: MergeRead[]): Promise<Fields[][]> {
    this.reads++
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    if (this.failReads) throw new Error('the store is down (test)')
    return await super.read(reads)
  }
}

async function wrappedApp (t: Test, cacheTtlMs: number): Promise<{ app: FastifyInstance, store: WrappedStore }> {
  const store = new WrappedStore()
  t.teardown(() => store.close())
  const { app } = await build(t, { store, config: { cacheTtlMs } })
  return { app, store }
}

async function get (app: FastifyInstance, url: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url })
}

/** The max-age of a 200 answer; asserts the header's form and that it is within the TTL. */
function maxAge (t: Test, res: LightMyRequestResponse, label: string): number {
  t.equal(res.statusCode, 200, `${label}: 200`)
  const header = String(res.headers['cache-control'])
  const m = /^max-age=(\d+)$/.exec(header)
  t.ok(m !== null, `${label}: cache-control ${header} is max-age=N`)
  const n = Number(m?.[1] ?? NaN)
  t.ok(n >= 0 && n <= TTL_MS / 1000, `${label}: max-age ${n} between 0 and ${TTL_MS / 1000}`)
  return n
}

/** The fixture split in two: posted before and after the first (cached) read. */
function twoBatches (): { first: FixtureEvent[], second: FixtureEvent[], all: FixtureEvent[] } {
  const all = makeFixture(Date.now())
  const cut = Math.floor(all.length / 2)
  return { first: all.slice(0, cut), second: all.slice(cut), all }
}

t.test('GET /api/metrics/health/leaderboard', async (t) => {
  t.test('a second read within the TTL is served from the cache', async (t) => {
    const { app } = await build(t, { config: { cacheTtlMs: TTL_MS } })
    const { first, second, all } = twoBatches()
    await postEvents(app, first)
    const url = `${LEADERBOARD}?window=24h&limit=100`
    const r1 = await get(app, url)
    maxAge(t, r1, 'first read')
    const b1 = r1.json<LeaderboardBody>()
    const from = Date.parse(b1.window.from)
    t.same(b1.entries.map((e) => [e.model, e.requests]), refLeaderboard(inWindow(first, from), { order: 'desc', limit: 100, minRequests: 1 }).map((e) => [e.model, e.requests]), 'the first read shows the first batch')

    await postEvents(app, second)
    const r2 = await get(app, url)
    maxAge(t, r2, 'second read')
    t.strictSame(r2.json(), b1, 'the second read is the cached answer, unchanged (same window.to too)')

    // limit 50 is computed on its own; 99 would be cut from the cached 100 (read/params.ts)
    const fresh = await get(app, `${LEADERBOARD}?window=24h&limit=50`)
    maxAge(t, fresh, 'another key')
    const bf = fresh.json<LeaderboardBody>()
    t.same(bf.entries.map((e) => [e.model, e.requests]), refLeaderboard(inWindow(all, Date.parse(bf.window.from)), { order: 'desc', limit: 50, minRequests: 1 }).map((e) => [e.model, e.requests]), 'another key is read from the store: both batches')
    t.notSame(bf.entries.map((e) => e.requests), b1.entries.map((e) => e.requests), 'so the second batch did land while the cached answer was served')
  })
})

t.test('GET /api/metrics/provider/summary', async (t) => {
  t.test('a second read within the TTL is served from the cache', async (t) => {
    const { app } = await build(t, { config: { cacheTtlMs: TTL_MS } })
    const { first, second, all } = twoBatches()
    await postEvents(app, first)
    const url = `${PROVIDERS}?window=24h`
    const r1 = await get(app, url)
    maxAge(t, r1, 'first read')
    const b1 = r1.json<ProviderSummaryBody>()
    const from = Date.parse(b1.window.from)
    t.same(b1.providers.map((p) => [p.provider, p.requests]), refProviders(inWindow(first, from)).map((p) => [p.provider, p.requests]), 'the first read shows the first batch')

    await postEvents(app, second)
    const r2 = await get(app, url)
    maxAge(t, r2, 'second read')
    t.strictSame(r2.json(), b1, 'the second read is the cached answer, unchanged')

    const fresh = await get(app, `${PROVIDERS}?window=24h&provider=openai`)
    maxAge(t, fresh, 'another key')
    const bf = fresh.json<ProviderSummaryBody>()
    const expected = refProviders(inWindow(all, Date.parse(bf.window.from))).filter((p) => p.provider === 'openai')
    t.same(bf.providers.map((p) => [p.provider, p.requests, p.successes]), expected.map((p) => [p.provider, p.requests, p.successes]), 'another key is read from the store: both batches')
    t.not(bf.providers[0]?.requests, b1.providers.find((p) => p.provider === 'openai')?.requests, 'so the second batch did land while the cached answer was served')
  })
})

t.test('GET /api/metrics/trends', async (t) => {
  t.test('a second read within the TTL is served from the cache', async (t) => {
    const { app } = await build(t, { config: { cacheTtlMs: TTL_MS } })
    const { first, second, all } = twoBatches()
    const model = 'openai/gpt-4o'
    await postEvents(app, first)
    const url = `${TRENDS}?model=${encodeURIComponent(model)}&metric=requests&hours=48`
    const r1 = await get(app, url)
    maxAge(t, r1, 'first read')
    const b1 = r1.json<TrendsBody>()
    const starts = b1.points.map((p) => Date.parse(p.t))
    t.same(b1.points.map((p) => p.count), refTrendPoints(first.filter((e) => matches(e, 'model', model)), starts, HOUR, 'requests', null).map((p) => p.count), 'the first read shows the first batch')

    await postEvents(app, second)
    const r2 = await get(app, url)
    maxAge(t, r2, 'second read')
    t.strictSame(r2.json(), b1, 'the second read is the cached answer, unchanged')

    // 24 hours are computed on their own; 47 would be cut from the cached 72 (read/params.ts)
    const fresh = await get(app, `${TRENDS}?model=${encodeURIComponent(model)}&metric=requests&hours=24`)
    maxAge(t, fresh, 'another key')
    const bf = fresh.json<TrendsBody>()
    const freshStarts = bf.points.map((p) => Date.parse(p.t))
    const gpt = (events: FixtureEvent[]): FixtureEvent[] => events.filter((e) => matches(e, 'model', model))
    t.same(bf.points.map((p) => p.count), refTrendPoints(gpt(all), freshStarts, HOUR, 'requests', null).map((p) => p.count), 'another key is read from the store: both batches')
    t.notSame(bf.points.map((p) => p.count), refTrendPoints(gpt(first), freshStarts, HOUR, 'requests', null).map((p) => p.count), 'so the second batch did land while the cached answer was served')
  })
})

/**
 * A distinct read for each k a test uses (3, 4, 5, 10, 11): distinct after the normalisation of
 * read/params.ts too (limits up to 10 share one leaderboard, hours up to 6 one trend), so by window,
 * order and stat.
 */
const WINDOW_ORDERS = [['5m', 'desc'], ['15m', 'desc'], ['1h', 'desc'], ['6h', 'desc'], ['24h', 'desc'], ['5m', 'asc'], ['15m', 'asc'], ['1h', 'asc'], ['6h', 'asc'], ['24h', 'asc']]
const STATS = ['avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99']
const ROUTES: Array<{ name: string, url: (k: number) => string }> = [
  { name: 'leaderboard', url: (k) => `${LEADERBOARD}?window=${WINDOW_ORDERS[k % 10]![0]!}&order=${WINDOW_ORDERS[k % 10]![1]!}` },
  { name: 'provider summary', url: (k) => `${PROVIDERS}?window=${k % 2 === 0 ? '6h' : '24h'}` },
  { name: 'trends', url: (k) => `${TRENDS}?model=openai%2Fgpt-4o&stat=${STATS[k % 7]!}` }
]

t.test('concurrent identical misses share one store read', async (t) => {
  for (const cacheTtlMs of [TTL_MS, 0]) {
    t.test(`cache TTL ${cacheTtlMs} ms`, async (t) => {
      const { app, store } = await wrappedApp(t, cacheTtlMs)
      await postEvents(app, makeFixture(Date.now()).slice(0, 600))
      for (const route of ROUTES) {
        // what one load of this route costs in store reads (a key nobody asked for yet)
        let before = store.reads
        const single = await get(app, route.url(10))
        t.equal(single.statusCode, 200, `${route.name}: single read 200`)
        const perLoad = store.reads - before
        t.ok(perLoad >= 1, `${route.name}: one load reads the store (${perLoad} round trips)`)
        if (route.name === 'trends') t.equal(perLoad, 1, 'trends: one round trip per load')

        // slow store reads while 8 identical requests arrive together, so they overlap one load
        store.delayMs = 100
        before = store.reads
        const loads = app.readCache.counts.loads
        const answers = await Promise.all(Array.from({ length: 8 }, async () => await get(app, route.url(11))))
        t.same(answers.map((r) => r.statusCode), Array(8).fill(200), `${route.name}: 8 concurrent identical reads answer 200`)
        store.delayMs = 0
        t.equal(app.readCache.counts.loads - loads, 1, `${route.name}: 8 concurrent identical misses cost one load`)
        // A load's round trips depend on how many keys it reads (read/budget.ts): this key's, from here on.
        const perKeyLoad = store.reads - before
        t.ok(perKeyLoad >= 1, `${route.name}: that load read the store (${perKeyLoad} round trips)`)
        const bodies = answers.map((r) => r.body)
        t.ok(bodies.every((b) => b === bodies[0]), `${route.name}: all 8 get the same answer`)

        before = store.reads
        const again = await get(app, route.url(11))
        t.equal(again.statusCode, 200, `${route.name}: a later read answers 200`)
        if (cacheTtlMs > 0) {
          t.equal(store.reads - before, 0, `${route.name}: a later read within the TTL costs no store read`)
          maxAge(t, again, `${route.name}: a later read`)
        } else {
          t.equal(store.reads - before, perKeyLoad, `${route.name}: with the cache off, a later read loads again`)
          t.equal(again.headers['cache-control'], 'max-age=0', `${route.name}: with the cache off, max-age=0`)
        }
      }
    })
  }
})

async function assertUnavailable (t: Test, app: FastifyInstance, url: string, label: string): Promise<void> {
  const res = await get(app, url)
  t.equal(res.statusCode, 503, `${label}: 503`)
  const body = res.json<ErrorBody>()
  t.equal(body.statusCode, 503, `${label}: statusCode 503`)
  t.equal(body.code, 'METRICS_STORE_UNAVAILABLE', `${label}: code METRICS_STORE_UNAVAILABLE`)
  t.match(body.message, /unreachable/, `${label}: the message says the store is unreachable`)
}

t.test('a store whose read rejects gives 503 METRICS_STORE_UNAVAILABLE', async (t) => {
  for (const cacheTtlMs of [TTL_MS, 0]) {
    t.test(`cache TTL ${cacheTtlMs} ms`, async (t) => {
      const { app, store } = await wrappedApp(t, cacheTtlMs)
      store.failReads = true
      for (const route of ROUTES) {
        await assertUnavailable(t, app, route.url(3), route.name)
        await assertUnavailable(t, app, route.url(3), `${route.name} (again: a failure is not cached)`)
      }
    })
  }

  t.test('while the store is down, a still-valid cache entry answers', async (t) => {
    const { app, store } = await wrappedApp(t, TTL_MS)
    await postEvents(app, makeFixture(Date.now()).slice(0, 300))
    for (const route of ROUTES) {
      const ok = await get(app, route.url(4))
      maxAge(t, ok, `${route.name}: read while up`)
      store.failReads = true
      const cached = await get(app, route.url(4))
      maxAge(t, cached, `${route.name}: same read while down`)
      t.equal(cached.body, ok.body, `${route.name}: the cached answer`)
      await assertUnavailable(t, app, route.url(5), `${route.name}: an uncached read while down`)
      store.failReads = false
    }
  })
})
