/**
 * The read side (docs/api.md "Reading": leaderboard, provider summary, trends) against one store. Run on
 * the embedded store (memory.test.ts) and on a real Redis (redis.test.ts).
 *
 * Every expectation is computed from the raw fixture events (fixture.ts), never from an answer: an
 * answer contributes only the window it reports (`window.from`, the points' `t`s), which decides
 * which events count.
 */
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import {
  counts, DIST_METRICS, FIXTURE_FACTS, floorTo, HOUR, inWindow, makeFixture, matches, MINUTE, postEvents,
  RATE_METRICS, refLeaderboard, refProviders, refTrendPoints, STAT_NAMES, healthScore, tokenSums,
  type DistMetric, type EntityType, type FixtureEvent, type RateMetric, type RefEntry, type RefProvider,
  type RefStats, type StatName, type SumMetric
} from './fixture.js'
import { DEFAULTS, stateNow } from '../helpers/health-ref.js'

/** Builds a fresh app on a fresh, empty store of the kind under test; closes both in teardown. */
export type MakeApp = (t: Test) => Promise<FastifyInstance>

// ---------------------------------------------------------------------------------------------
// Answer shapes
// ---------------------------------------------------------------------------------------------

interface WindowInfo { from: string, to: string, seconds: number }
interface StatsBody { count: number, avg: number | null, min: number | null, max: number | null, p50: number | null, p90: number | null, p95: number | null, p99: number | null }
interface EntryBody { rank: number, model: string, provider: string | null, health_score: number | null, success_rate: number | null, requests: number, input_tokens: number, output_tokens: number, ttft_p50_ms: number | null, total_time_p50_ms: number | null, uptime: number | null, status: string }
interface LeaderboardBody { window: WindowInfo, order: string, min_requests: number, entries: EntryBody[] }
interface ProviderBody {
  provider: string
  models: number
  requests: number
  successes: number
  failures: number
  success_rate: number | null
  errors: { timeout: number, rate_limit: number, network: number, other: number }
  ttft_ms: StatsBody
  total_time_ms: StatsBody
  input_tokens: number
  output_tokens: number
  health_score: number | null
}
interface ProviderSummaryBody { window: WindowInfo, providers: ProviderBody[] }
interface PointBody { t: string, count: number, value: number | null, input_tokens?: number, output_tokens?: number }
interface RealtimeBody { type: string, id: string, window: WindowInfo, requests: number, input_tokens: number, output_tokens: number }
interface TrendsBody { type: string, id: string, metric: string, stat: string | null, resolution: string, points: PointBody[] }
interface ErrorBody { statusCode: number, code?: string, error: string, message: string }

const LEADERBOARD = '/api/metrics/health/leaderboard'
const PROVIDERS = '/api/metrics/provider/summary'
const TRENDS = '/api/metrics/trends'
const REALTIME = '/api/metrics/realtime'

const WINDOWS = {
  '5m': { res: MINUTE, buckets: 5, seconds: 300 },
  '15m': { res: MINUTE, buckets: 15, seconds: 900 },
  '1h': { res: MINUTE, buckets: 60, seconds: 3600 },
  '6h': { res: HOUR, buckets: 6, seconds: 21_600 },
  '24h': { res: HOUR, buckets: 24, seconds: 86_400 }
} as const
type WindowName = keyof typeof WINDOWS
const WINDOW_NAMES = Object.keys(WINDOWS) as WindowName[]

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async function get (app: FastifyInstance, url: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url })
}

/** A 200 JSON answer carrying `cache-control: max-age=N`; also the clock around the request. */
async function getOk<T> (t: Test, app: FastifyInstance, url: string): Promise<{ body: T, before: number, after: number }> {
  const before = Date.now()
  const res = await get(app, url)
  const after = Date.now()
  t.equal(res.statusCode, 200, `${url}: 200`)
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body}`)
  t.match(String(res.headers['cache-control']), /^max-age=\d+$/, `${url}: cache-control max-age=N`)
  return { body: res.json<T>(), before, after }
}

/** A 400 in Fastify's error shape whose message names `field`. */
async function assertBadRequest (t: Test, app: FastifyInstance, url: string, field: string): Promise<void> {
  const res = await get(app, url)
  t.equal(res.statusCode, 400, `${url}: 400`)
  let body: ErrorBody
  try {
    body = res.json<ErrorBody>()
  } catch {
    t.fail(`${url}: JSON error body`, { body: res.body })
    return
  }
  t.equal(body.statusCode, 400, `${url}: statusCode 400`)
  t.equal(body.error, 'Bad Request', `${url}: error Bad Request`)
  t.match(body.message, new RegExp(`querystring\\.${field}\\b`), `${url}: message names querystring.${field}`)
}

/** The answer has (at least: answers may gain fields) these fields. */
function hasFields (t: Test, obj: object, fields: string[], label: string): void {
  t.same(fields.filter((f) => !Object.hasOwn(obj, f)), [], `${label}: has ${fields.join(', ')}`)
}

/** |actual − expected| within 2 % of expected, plus the 0.001 the answer rounds to. */
function within2pct (actual: number | null, expected: number | null): boolean {
  if (expected === null || actual === null) return actual === expected
  return Math.abs(actual - expected) <= 0.02 * Math.abs(expected) + 0.0011
}

function checkNear (t: Test, actual: number | null | undefined, expected: number | null, label: string): void {
  t.ok(actual !== undefined && within2pct(actual, expected), `${label}: ${String(actual)} within 2 % of ${String(expected)}`)
}

/** Full Stats check: count exact, avg exact (3 decimals), min/max/percentiles within 2 %. */
function checkStats (t: Test, actual: StatsBody | undefined, expected: RefStats, label: string, avgTolerance = 0): void {
  if (actual === undefined) {
    t.fail(`${label}: Stats present`)
    return
  }
  t.equal(actual.count, expected.count, `${label}: count`)
  if (expected.avg === null) t.equal(actual.avg, null, `${label}: avg null`)
  else t.ok(actual.avg !== null && Math.abs(actual.avg - expected.avg) <= avgTolerance + 1e-9, `${label}: avg ${String(actual.avg)} = ${expected.avg}`)
  for (const k of ['min', 'max', 'p50', 'p90', 'p95', 'p99'] as const) checkNear(t, actual[k], expected[k], `${label}: ${k}`)
}

/** The window the answer reports: from = start of the oldest of N buckets ending with the one holding `to`. */
function checkWindow (t: Test, w: WindowInfo, name: WindowName, before: number, after: number, label: string): number {
  const spec = WINDOWS[name]
  const to = Date.parse(w.to)
  const from = Date.parse(w.from)
  t.ok(to >= before && to <= after, `${label}: window.to is the time of the answer`)
  t.equal(w.seconds, spec.seconds, `${label}: window.seconds`)
  t.equal(from, floorTo(to, spec.res) - (spec.buckets - 1) * spec.res, `${label}: window.from is the start of the oldest of ${spec.buckets} buckets`)
  return from
}

/** `statusOf(model)`: the health state the docs give for the model at the answer's time. */
function checkEntries (t: Test, actual: EntryBody[], statusOf: (model: string) => string, expected: RefEntry[], label: string): void {
  t.same(actual.map((e) => e.model), expected.map((e) => e.model), `${label}: models in order`)
  t.equal(actual.length, expected.length, `${label}: ${expected.length} entries`)
  expected.forEach((x, i) => {
    const a = actual[i]
    if (a === undefined) return
    const { ttft_p50_ms: aTtft, total_time_p50_ms: aTotal, status, ...aExact } = a
    t.equal(status, statusOf(x.model), `${label}: ${x.model} status`)
    const { ttft_p50_ms: xTtft, total_time_p50_ms: xTotal, ...xExact } = x
    t.strictSame(aExact, xExact, `${label}: entry ${i + 1} (${x.model})`)
    hasFields(t, a, ['rank', 'model', 'provider', 'health_score', 'success_rate', 'requests', 'input_tokens', 'output_tokens', 'ttft_p50_ms', 'total_time_p50_ms', 'uptime', 'status'], `${label}: entry ${i + 1}`)
    checkNear(t, aTtft, xTtft, `${label}: ${x.model} ttft_p50_ms`)
    checkNear(t, aTotal, xTotal, `${label}: ${x.model} total_time_p50_ms`)
  })
}

function checkProviderRow (t: Test, a: ProviderBody | undefined, x: RefProvider, label: string): void {
  if (a === undefined) {
    t.fail(`${label}: ${x.provider} present`)
    return
  }
  t.strictSame(
    { provider: a.provider, models: a.models, requests: a.requests, successes: a.successes, failures: a.failures, success_rate: a.success_rate, errors: a.errors, health_score: a.health_score, input_tokens: a.input_tokens, output_tokens: a.output_tokens },
    { provider: x.provider, models: x.models, requests: x.requests, successes: x.successes, failures: x.failures, success_rate: x.success_rate, errors: x.errors, health_score: x.health_score, input_tokens: x.input_tokens, output_tokens: x.output_tokens },
    `${label}: ${x.provider} counts`)
  checkStats(t, a.ttft_ms, x.ttft_ms, `${label}: ${x.provider} ttft_ms`)
  checkStats(t, a.total_time_ms, x.total_time_ms, `${label}: ${x.provider} total_time_ms`)
}

const qs = (params: Record<string, string | number | undefined>): string =>
  Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`).join('&')

/** Point `t`s are whole UTC hours/minutes, consecutive, oldest first, the last the bucket holding the answer's time. */
function checkPointTimes (t: Test, points: PointBody[], n: number, size: number, before: number, after: number, label: string): number[] {
  t.equal(points.length, n, `${label}: ${n} points`)
  const ts = points.map((p) => Date.parse(p.t))
  const unit = size === HOUR ? 'hour' : 'minute'
  t.ok(points.every((p) => (size === HOUR ? /T\d\d:00:00\.000Z$/ : /T\d\d:\d\d:00\.000Z$/).test(p.t)), `${label}: every t is a whole UTC ${unit} (ISO, Z)`)
  t.ok(ts.every((x) => x % size === 0), `${label}: every t is a multiple of one ${unit} since the epoch`)
  t.ok(ts.every((x, i) => i === 0 || x - (ts[i - 1] ?? 0) === size), `${label}: consecutive points one ${unit} apart, oldest first`)
  const last = ts[ts.length - 1]
  t.ok(last === floorTo(before, size) || last === floorTo(after, size), `${label}: the last point is the current ${unit}`)
  return ts
}

function checkPoints (t: Test, points: PointBody[], starts: number[], events: readonly FixtureEvent[], size: number, metric: DistMetric | RateMetric | SumMetric, stat: StatName | null, label: string): void {
  const expected = refTrendPoints(events, starts, size, metric, stat)
  t.strictSame(points.map((p) => p.count), expected.map((p) => p.count), `${label}: count per point`)
  t.ok(points.every((p) => (p.count === 0) === (p.value === null)), `${label}: value null exactly when count is 0`)
  if (metric === 'tokens') {
    const sums = (p: { input_tokens?: number, output_tokens?: number }): [number | undefined, number | undefined] => [p.input_tokens, p.output_tokens]
    t.strictSame(points.map(sums), expected.map(sums), `${label}: input_tokens and output_tokens per point, exact`)
  } else {
    t.ok(points.every((p) => !Object.hasOwn(p, 'input_tokens') && !Object.hasOwn(p, 'output_tokens')), `${label}: no token sums on a ${metric} point`)
  }
  const exact = metric === 'tokens' || (RATE_METRICS as readonly string[]).includes(metric)
  const bad: string[] = []
  expected.forEach((x, i) => {
    const a = points[i]?.value ?? null
    let ok: boolean
    if (exact) ok = a === x.value
    else if (stat === 'avg') ok = x.value === null ? a === null : a !== null && Math.abs(a - x.value) <= (metric === 'output_tokens_per_second' ? 0.0011 : 1e-9)
    else ok = within2pct(a, x.value)
    if (!ok) bad.push(`${new Date(x.t).toISOString()}: ${String(a)} vs ${String(x.value)}`)
  })
  t.same(bad, [], `${label}: every point's value (${exact ? 'exact' : stat === 'avg' ? 'exact avg' : 'within 2 %'})`)
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

export async function readSuite (t: Test, makeApp: MakeApp): Promise<void> {
  const now = Date.now()
  const events = makeFixture(now)
  const app = await makeApp(t)
  await postEvents(app, events)
  const { sameScoreDifferentRequests: [large, medium], sameCountsTieById: [haiku, opus], fewRequests: tiny } = FIXTURE_FACTS
  const statusAt = (to: string) => (model: string): string => stateNow(events.filter((e) => e.model === model), Date.parse(to), DEFAULTS)

  t.test('the fixture has the properties the assertions rely on', async (t) => {
    const recent = inWindow(events, now - 55 * MINUTE)
    const of = (m: string): ReturnType<typeof counts> => counts(recent.filter((e) => e.model === m))
    t.equal(of(large).health_score, of(medium).health_score, `${large} and ${medium}: same health score`)
    t.not(of(large).requests, of(medium).requests, `${large} and ${medium}: different request totals`)
    t.same([of(haiku).requests, of(haiku).successes], [of(opus).requests, of(opus).successes], `${haiku} and ${opus}: identical counts`)
    t.ok(of(tiny).requests > 0 && of(tiny).requests < 3, `${tiny}: few requests`)
    t.equal(healthScore(21, 26), 62.12, 'the tie score, by hand: 21/26')
    t.equal(healthScore(13, 15), 62.12, 'the tie score, by hand: 13/15')
    t.ok(events.filter((e) => e.provider === undefined).length > 0 && events.filter((e) => e.provider !== undefined).length > 0, 'providers both explicit and defaulted')
    const legacy = events.filter((e) => matches(e, 'provider', FIXTURE_FACTS.oldOnlyProvider))
    t.ok(legacy.length > 0 && legacy.every((e) => e.timestamp <= now - 25 * HOUR), 'the legacy provider has traffic only > 24 h ago')
    const llama = recent.filter((e) => e.model === FIXTURE_FACTS.multiProviderModel)
    t.same(new Set(llama.map((e) => e.provider)), new Set(['mistral', 'openai']), 'one model recorded under two providers')
    t.same(makeFixture(now), events, 'the fixture is deterministic for a given now')
  })

  t.test('GET /api/metrics/health/leaderboard', async (t) => {
    const leaderboard = async (t: Test, params: Record<string, string | number | undefined>): Promise<{ body: LeaderboardBody, from: number }> => {
      const { body, before, after } = await getOk<LeaderboardBody>(t, app, `${LEADERBOARD}${Object.keys(params).length > 0 ? '?' + qs(params) : ''}`)
      const from = checkWindow(t, body.window, (params.window ?? '1h') as WindowName, before, after, `leaderboard ${qs(params)}`)
      t.equal(body.order, params.order ?? 'desc', 'order echoed')
      hasFields(t, body, ['window', 'order', 'min_requests', 'entries'], 'leaderboard answer')
      return { body, from }
    }

    t.test('defaults: desc, limit 10, 1h, min_requests 1', async (t) => {
      const { body, from } = await leaderboard(t, {})
      const expected = refLeaderboard(inWindow(events, from), { order: 'desc', limit: 10, minRequests: 1 })
      t.ok(expected.length >= 8, 'the 1h window holds most of the fixture\'s models')
      checkEntries(t, body.entries, statusAt(body.window.to), expected, 'default')
    })

    for (const window of WINDOW_NAMES) {
      for (const order of ['desc', 'asc'] as const) {
        t.test(`window ${window}, order ${order}, limit 100`, async (t) => {
          const { body, from } = await leaderboard(t, { window, order, limit: 100 })
          const expected = refLeaderboard(inWindow(events, from), { order, limit: 100, minRequests: 1 })
          t.ok(expected.length > 0, 'the window has traffic')
          checkEntries(t, body.entries, statusAt(body.window.to), expected, `${window} ${order}`)
        })
      }
    }

    t.test('window 24h and 6h with the default limit', async (t) => {
      for (const window of ['24h', '6h'] as const) {
        const { body, from } = await leaderboard(t, { window })
        checkEntries(t, body.entries, statusAt(body.window.to), refLeaderboard(inWindow(events, from), { order: 'desc', limit: 10, minRequests: 1 }), window)
        t.notOk(body.entries.some((e) => e.model === 'legacy/old-model'), `${window}: a model with traffic only > 24 h ago is absent`)
      }
    })

    t.test('ties: by requests (more first), then model id, whatever the order', async (t) => {
      for (const order of ['desc', 'asc'] as const) {
        const { body } = await leaderboard(t, { window: '1h', order, limit: 100 })
        const at = (m: string): number => body.entries.findIndex((e) => e.model === m)
        const entry = (m: string): EntryBody | undefined => body.entries.find((e) => e.model === m)
        t.equal(entry(large)?.health_score, entry(medium)?.health_score, `${order}: ${large} and ${medium} share a score`)
        t.equal(at(medium), at(large) + 1, `${order}: ${large} (26 requests) right before ${medium} (15)`)
        t.same([entry(haiku)?.health_score, entry(haiku)?.requests], [entry(opus)?.health_score, entry(opus)?.requests], `${order}: ${haiku} and ${opus} tie on score and requests`)
        t.equal(at(opus), at(haiku) + 1, `${order}: ${haiku} right before ${opus} (model id ascending)`)
      }
    })

    t.test('limit 1, 3 and 100', async (t) => {
      for (const limit of [1, 3, 100]) {
        for (const order of ['desc', 'asc'] as const) {
          const { body, from } = await leaderboard(t, { limit, order })
          const expected = refLeaderboard(inWindow(events, from), { order, limit, minRequests: 1 })
          t.equal(body.entries.length, Math.min(limit, refLeaderboard(inWindow(events, from), { order, limit: 1000, minRequests: 1 }).length), `limit ${limit} ${order}: length`)
          checkEntries(t, body.entries, statusAt(body.window.to), expected, `limit ${limit} ${order}`)
        }
      }
    })

    t.test('min_requests, rounded up to 1, 2 or 5 × a power of ten', async (t) => {
      for (const [window, minRequests, applied] of [['1h', 2, 2], ['1h', 3, 5], ['1h', 16, 20], ['1h', 27, 50], ['24h', 100, 100], ['24h', 1_000_000_000, 1_000_000_000]] as const) {
        const { body, from } = await leaderboard(t, { window, min_requests: minRequests, limit: 100 })
        const inWin = inWindow(events, from)
        t.equal(body.min_requests, applied, `${window} min_requests ${minRequests}: ${applied} applied, and said`)
        checkEntries(t, body.entries, statusAt(body.window.to), refLeaderboard(inWin, { order: 'desc', limit: 100, minRequests: applied }), `${window} min_requests ${minRequests}`)
        t.ok(body.entries.every((e) => e.requests >= minRequests), `${window} min_requests ${minRequests}: every entry has enough requests`)
        if (window === '1h') {
          const tinyN = counts(inWin.filter((e) => e.model === tiny)).requests
          t.equal(body.entries.some((e) => e.model === tiny), tinyN >= applied, `${tiny} (${tinyN} requests) listed iff ≥ ${applied}`)
        }
      }
      const { body } = await leaderboard(t, { window: '1h', min_requests: 1, limit: 100 })
      const e = body.entries.find((x) => x.model === tiny)
      t.same([e?.ttft_p50_ms, e?.total_time_p50_ms], [null, null], `${tiny}: no timings, null p50s`)
    })

    t.test('the provider is the latest event\'s', async (t) => {
      const { body, from } = await leaderboard(t, { window: '24h', limit: 100 })
      const llama = inWindow(events, from).filter((e) => e.model === FIXTURE_FACTS.multiProviderModel).sort((a, b) => a.timestamp - b.timestamp)
      const last = llama[llama.length - 1]
      t.equal(body.entries.find((e) => e.model === FIXTURE_FACTS.multiProviderModel)?.provider, last?.provider, `${FIXTURE_FACTS.multiProviderModel}: provider of its latest event`)
    })

    t.test('an empty store: no entries', async (t) => {
      const fresh = await makeApp(t)
      for (const window of WINDOW_NAMES) {
        const { body } = await getOk<LeaderboardBody>(t, fresh, `${LEADERBOARD}?window=${window}`)
        t.same(body.entries, [], `${window}: entries []`)
        t.equal(body.window.seconds, WINDOWS[window].seconds, `${window}: window.seconds`)
      }
    })

    t.test('400 on bad parameters', async (t) => {
      await assertBadRequest(t, app, `${LEADERBOARD}?limit=0`, 'limit')
      await assertBadRequest(t, app, `${LEADERBOARD}?limit=101`, 'limit')
      await assertBadRequest(t, app, `${LEADERBOARD}?limit=2.5`, 'limit')
      await assertBadRequest(t, app, `${LEADERBOARD}?order=up`, 'order')
      await assertBadRequest(t, app, `${LEADERBOARD}?window=2h`, 'window')
      await assertBadRequest(t, app, `${LEADERBOARD}?window=`, 'window')
      await assertBadRequest(t, app, `${LEADERBOARD}?min_requests=0`, 'min_requests')
      await assertBadRequest(t, app, `${LEADERBOARD}?min_requests=1000000001`, 'min_requests')
    })
  })

  t.test('GET /api/metrics/provider/summary', async (t) => {
    const summary = async (t: Test, params: Record<string, string | undefined>): Promise<{ body: ProviderSummaryBody, from: number }> => {
      const { body, before, after } = await getOk<ProviderSummaryBody>(t, app, `${PROVIDERS}${Object.keys(params).length > 0 ? '?' + qs(params) : ''}`)
      const from = checkWindow(t, body.window, (params.window ?? '1h') as WindowName, before, after, `summary ${qs(params)}`)
      hasFields(t, body, ['window', 'providers'], 'provider summary answer')
      return { body, from }
    }

    const checkAll = (t: Test, body: ProviderSummaryBody, expected: RefProvider[], label: string): void => {
      t.same(body.providers.map((p) => p.provider), expected.map((p) => p.provider), `${label}: providers by requests, then name`)
      expected.forEach((x, i) => checkProviderRow(t, body.providers[i], x, label))
    }

    t.test('default window (1h): every provider with traffic', async (t) => {
      const { body, from } = await summary(t, {})
      const expected = refProviders(inWindow(events, from))
      t.same(expected.map((p) => p.provider).sort(), [...FIXTURE_FACTS.activeProviders], 'expected: the three active providers')
      checkAll(t, body, expected, '1h')
    })

    for (const window of WINDOW_NAMES) {
      t.test(`window ${window}`, async (t) => {
        const { body, from } = await summary(t, { window })
        const expected = refProviders(inWindow(events, from))
        t.ok(expected.length > 0, 'the window has traffic')
        checkAll(t, body, expected, window)
        t.notOk(body.providers.some((p) => p.provider === FIXTURE_FACTS.oldOnlyProvider), `${window}: no provider whose traffic is older than the window`)
      })
    }

    t.test('provider=P: just P', async (t) => {
      for (const window of ['1h', '24h'] as const) {
        for (const provider of FIXTURE_FACTS.activeProviders) {
          const { body, from } = await summary(t, { window, provider })
          const expected = refProviders(inWindow(events, from)).filter((p) => p.provider === provider)
          t.equal(expected.length, 1, `${provider} had traffic in ${window}`)
          checkAll(t, body, expected, `${window} provider=${provider}`)
        }
      }
    })

    t.test('models: the distinct models of the provider in the window', async (t) => {
      const { body, from } = await summary(t, { window: '24h' })
      const inWin = inWindow(events, from)
      for (const p of FIXTURE_FACTS.activeProviders) {
        const models = new Set(inWin.filter((e) => matches(e, 'provider', p)).map((e) => e.model))
        t.equal(body.providers.find((x) => x.provider === p)?.models, models.size, `${p}: ${[...models].sort().join(', ')}`)
      }
      t.ok(new Set(inWin.filter((e) => matches(e, 'provider', 'openai')).map((e) => e.model)).has(FIXTURE_FACTS.multiProviderModel), `${FIXTURE_FACTS.multiProviderModel} counts for openai`)
      t.ok(new Set(inWin.filter((e) => matches(e, 'provider', 'mistral')).map((e) => e.model)).has(FIXTURE_FACTS.multiProviderModel), `${FIXTURE_FACTS.multiProviderModel} counts for mistral`)
    })

    t.test('a provider with no traffic in the window, or unknown: []', async (t) => {
      for (const window of WINDOW_NAMES) {
        const { body } = await summary(t, { window, provider: FIXTURE_FACTS.oldOnlyProvider })
        t.same(body.providers, [], `${window}: ${FIXTURE_FACTS.oldOnlyProvider} (traffic only > 24 h ago) gives []`)
      }
      const { body } = await summary(t, { window: '24h', provider: 'no-such-provider' })
      t.same(body.providers, [], 'an unknown provider gives []')
    })

    t.test('an empty store: no providers', async (t) => {
      const fresh = await makeApp(t)
      const { body } = await getOk<ProviderSummaryBody>(t, fresh, `${PROVIDERS}?window=24h`)
      t.same(body.providers, [], 'providers []')
    })

    t.test('400 on bad parameters', async (t) => {
      await assertBadRequest(t, app, `${PROVIDERS}?window=7d`, 'window')
      await assertBadRequest(t, app, `${PROVIDERS}?provider=`, 'provider')
      await assertBadRequest(t, app, `${PROVIDERS}?provider=${'p'.repeat(65)}`, 'provider')
    })
  })

  t.test('GET /api/metrics/trends', async (t) => {
    const trends = async (t: Test, params: Record<string, string | number | undefined>): Promise<{ body: TrendsBody, before: number, after: number }> => {
      const r = await getOk<TrendsBody>(t, app, `${TRENDS}?${qs(params)}`)
      hasFields(t, r.body, ['type', 'id', 'metric', 'stat', 'resolution', 'points'], `trends ${qs(params)} answer`)
      return r
    }
    const gpt = 'openai/gpt-4o'

    t.test('defaults: ttft, p50, 6 hourly points', async (t) => {
      const { body, before, after } = await trends(t, { model: gpt })
      t.same({ type: body.type, id: body.id, metric: body.metric, stat: body.stat, resolution: body.resolution }, { type: 'model', id: gpt, metric: 'ttft', stat: 'p50', resolution: 'hour' }, 'echoes the defaults')
      const starts = checkPointTimes(t, body.points, 6, HOUR, before, after, 'default')
      checkPoints(t, body.points, starts, events.filter((e) => matches(e, 'model', gpt)), HOUR, 'ttft', 'p50', 'default')
      t.ok(body.points.some((p) => p.count > 0), 'the fixture has samples in the last 6 hours')
    })

    t.test('empty buckets: count 0, value null', async (t) => {
      const { body, before, after } = await trends(t, { model: 'no/such-model', metric: 'requests', hours: 12 })
      checkPointTimes(t, body.points, 12, HOUR, before, after, 'unknown model')
      t.ok(body.points.every((p) => p.count === 0 && p.value === null), 'every point empty')
      const tiny = await trends(t, { model: FIXTURE_FACTS.fewRequests, hours: 3 })
      t.ok(tiny.body.points.every((p) => p.count === 0 && p.value === null), `${FIXTURE_FACTS.fewRequests} has requests but no ttft samples: empty ttft points`)
    })

    t.test('rate metrics: requests, errors, success_rate (stat null)', async (t) => {
      for (const metric of RATE_METRICS) {
        for (const [type, id] of [['model', gpt], ['model', 'llama-3-70b'], ['provider', 'mistral'], ['gateway', 'gw-west']] as Array<[EntityType, string]>) {
          const { body, before, after } = await trends(t, { type, id, metric, hours: 24 })
          t.equal(body.stat, null, `${metric}: stat null`)
          t.same([body.type, body.id, body.metric], [type, id, metric], `${metric} ${type}=${id}: echoed`)
          const starts = checkPointTimes(t, body.points, 24, HOUR, before, after, `${metric} ${type}=${id}`)
          checkPoints(t, body.points, starts, events.filter((e) => matches(e, type, id)), HOUR, metric, null, `${metric} ${type}=${id}`)
        }
      }
    })

    t.test('distribution metrics, every stat', async (t) => {
      for (const metric of DIST_METRICS) {
        for (const stat of STAT_NAMES) {
          const { body, before, after } = await trends(t, { model: gpt, metric, stat, hours: 24 })
          t.same([body.metric, body.stat], [metric, stat], `${metric} ${stat}: echoed`)
          const starts = checkPointTimes(t, body.points, 24, HOUR, before, after, `${metric} ${stat}`)
          checkPoints(t, body.points, starts, events.filter((e) => matches(e, 'model', gpt)), HOUR, metric, stat, `${metric} ${stat}`)
        }
      }
    })

    t.test('metric=tokens: input and output token sums per bucket (stat null)', async (t) => {
      const ids: Array<[EntityType, string]> = [['model', gpt], ['model', 'llama-3-70b'], ['model', FIXTURE_FACTS.fewRequests], ['provider', 'mistral'], ['provider', FIXTURE_FACTS.oldOnlyProvider], ['gateway', 'gw-west'], ['gateway', 'default']]
      for (const [type, id] of ids) {
        const { body, before, after } = await trends(t, { type, id, metric: 'tokens', hours: 48 })
        t.same([body.type, body.id, body.metric, body.stat], [type, id, 'tokens', null], `tokens ${type}=${id}: echoed, stat null`)
        const starts = checkPointTimes(t, body.points, 48, HOUR, before, after, `tokens ${type}=${id}`)
        checkPoints(t, body.points, starts, events.filter((e) => matches(e, type, id)), HOUR, 'tokens', null, `tokens ${type}=${id}`)
      }
      const tiny = await trends(t, { model: FIXTURE_FACTS.fewRequests, metric: 'tokens', hours: 1, resolution: 'minute' })
      const withRequests = tiny.body.points.filter((p) => p.count > 0)
      t.ok(withRequests.length > 0 && withRequests.every((p) => p.value === 0 && p.input_tokens === 0 && p.output_tokens === 0), `${FIXTURE_FACTS.fewRequests}: requests without token counts give 0, not null`)
      for (const hours of [1, 2]) {
        const { body, before, after } = await trends(t, { type: 'provider', id: 'openai', metric: 'tokens', hours, resolution: 'minute' })
        const starts = checkPointTimes(t, body.points, 60 * hours, MINUTE, before, after, `tokens by minute ${hours}h`)
        checkPoints(t, body.points, starts, events.filter((e) => matches(e, 'provider', 'openai')), MINUTE, 'tokens', null, `tokens by minute ${hours}h`)
      }
    })

    t.test('type=provider and type=gateway', async (t) => {
      for (const [type, id] of [['provider', 'openai'], ['provider', 'anthropic'], ['gateway', 'default'], ['gateway', 'gw-east']] as Array<[EntityType, string]>) {
        for (const [metric, stat] of [['ttft', 'p90'], ['total_time', 'avg'], ['output_tokens_per_second', 'p50']] as Array<[DistMetric, StatName]>) {
          const { body, before, after } = await trends(t, { type, id, metric, stat, hours: 8 })
          t.same([body.type, body.id], [type, id], `${type}=${id}: echoed`)
          const starts = checkPointTimes(t, body.points, 8, HOUR, before, after, `${type}=${id} ${metric} ${stat}`)
          checkPoints(t, body.points, starts, events.filter((e) => matches(e, type, id)), HOUR, metric, stat, `${type}=${id} ${metric} ${stat}`)
        }
      }
    })

    t.test('48 hours cross UTC day boundaries; old traffic in the right points', async (t) => {
      const { body, before, after } = await trends(t, { type: 'provider', id: FIXTURE_FACTS.oldOnlyProvider, metric: 'requests', hours: 48 })
      const starts = checkPointTimes(t, body.points, 48, HOUR, before, after, 'legacy 48h')
      t.ok(body.points.some((p) => p.t.endsWith('T00:00:00.000Z')), 'a midnight UTC among the points')
      checkPoints(t, body.points, starts, events.filter((e) => matches(e, 'provider', FIXTURE_FACTS.oldOnlyProvider)), HOUR, 'requests', null, 'legacy 48h')
      t.ok(body.points.some((p) => p.count > 0), 'the old traffic shows')
      const all = await trends(t, { type: 'gateway', id: 'gw-east', metric: 'ttft', stat: 'max', hours: 48 })
      const s2 = checkPointTimes(t, all.body.points, 48, HOUR, all.before, all.after, 'gw-east 48h')
      checkPoints(t, all.body.points, s2, events.filter((e) => matches(e, 'gateway', 'gw-east')), HOUR, 'ttft', 'max', 'gw-east 48h')
      const max = await trends(t, { model: gpt, metric: 'requests', hours: 168 })
      checkPointTimes(t, max.body.points, 168, HOUR, max.before, max.after, '168 hours')
    })

    t.test('resolution minute: 60 and 120 points', async (t) => {
      for (const hours of [1, 2]) {
        for (const [metric, stat] of [['requests', undefined], ['ttft', 'p50'], ['total_time', 'avg']] as Array<[DistMetric | RateMetric, StatName | undefined]>) {
          const { body, before, after } = await trends(t, { type: 'gateway', id: 'default', metric, stat, hours, resolution: 'minute' })
          t.equal(body.resolution, 'minute', 'resolution echoed')
          const starts = checkPointTimes(t, body.points, 60 * hours, MINUTE, before, after, `minute ${hours}h ${metric}`)
          checkPoints(t, body.points, starts, events.filter((e) => matches(e, 'gateway', 'default')), MINUTE, metric, stat ?? null, `minute ${hours}h ${metric}`)
        }
      }
    })

    t.test('model=ID is type=model&id=ID', async (t) => {
      for (const params of [{ metric: 'ttft', stat: 'p95', hours: 24 }, { metric: 'success_rate', hours: 6 }, { metric: 'requests', hours: 2, resolution: 'minute' }]) {
        for (let attempt = 0; attempt < 3; attempt++) {
          const short = await trends(t, { model: gpt, ...params })
          const long = await trends(t, { type: 'model', id: gpt, ...params })
          const lastShort = short.body.points[short.body.points.length - 1]?.t
          const lastLong = long.body.points[long.body.points.length - 1]?.t
          if (lastShort !== lastLong && attempt < 2) continue // a bucket boundary passed between the two reads
          t.strictSame(short.body, long.body, `${qs(params)}: same answer`)
          break
        }
      }
      const idOnly = await trends(t, { id: gpt, metric: 'requests' })
      t.equal(idOnly.body.type, 'model', 'type defaults to model')
    })

    t.test('400 on bad parameters', async (t) => {
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&type=model`, 'model')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&type=provider`, 'model')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&id=${gpt}`, 'model')
      await assertBadRequest(t, app, `${TRENDS}?metric=requests`, 'id')
      await assertBadRequest(t, app, `${TRENDS}?type=provider`, 'id')
      for (const metric of [...RATE_METRICS, 'tokens']) await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&metric=${metric}&stat=p50`, 'stat')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&resolution=minute&hours=3`, 'resolution')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&resolution=minute`, 'resolution')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&hours=0`, 'hours')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&hours=169`, 'hours')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&metric=latency`, 'metric')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&stat=p75`, 'stat')
      await assertBadRequest(t, app, `${TRENDS}?model=${gpt}&resolution=day`, 'resolution')
      await assertBadRequest(t, app, `${TRENDS}?type=team&id=x`, 'type')
    })
  })

  t.test('GET /api/metrics/health/leaderboard: model ids that look like merge-rule field names', async (t) => {
    // The activity index stores requests/successes in hash fields named by the model id; any valid id
    // must be summed over the window's buckets, whatever it ends or starts with.
    const fresh = await makeApp(t)
    const base = Date.now()
    const odd = ['acme/turbo:max', 'acme/lite:min', 'last:model', 'acme/plain']
    const oddEvents: FixtureEvent[] = []
    odd.forEach((model, m) => {
      for (let i = 0; i < 6; i++) oddEvents.push({ model, success: i % 3 !== 0, timestamp: base - (3 + i * 7) * MINUTE - m * 1000 })
    })
    await postEvents(fresh, oddEvents)
    const { body } = await getOk<LeaderboardBody>(t, fresh, `${LEADERBOARD}?window=1h&limit=100`)
    const from = Date.parse(body.window.from)
    const expected = refLeaderboard(inWindow(oddEvents, from), { order: 'desc', limit: 100, minRequests: 1 })
    for (const model of odd) {
      const x = expected.find((e) => e.model === model)
      const a = body.entries.find((e) => e.model === model)
      t.strictSame([a?.requests, a?.success_rate, a?.health_score], [x?.requests, x?.success_rate, x?.health_score], `${model}: requests, success_rate, health_score summed over the buckets`)
    }
  })

  t.test('ids named like members of a JavaScript object (__proto__, toString, constructor) are ids like any other', async (t) => {
    // Merged hashes are keyed by model, provider and gateway ids; an id such as __proto__ or toString
    // must be counted, not taken for (or dropped into) an object's built-in members.
    const fresh = await makeApp(t)
    const base = Date.now()
    const names = ['__proto__', 'toString', 'constructor', 'hasOwnProperty']
    const events: FixtureEvent[] = []
    names.forEach((name, m) => {
      for (let i = 0; i < 4 + m; i++) {
        events.push({ model: name, success: i % 3 !== 0, ttft_ms: 100 + 10 * i, total_time_ms: 900 + 10 * i, timestamp: base - (3 + i * 5) * MINUTE - m * 1000 })
        events.push({ model: `acme/${name}`, provider: name, gateway: name, success: i % 2 === 0, ttft_ms: 200 + i, total_time_ms: 1000 + i, timestamp: base - (4 + i * 5) * MINUTE - m * 1000 })
      }
    })
    await postEvents(fresh, events)
    const lb = (await getOk<LeaderboardBody>(t, fresh, `${LEADERBOARD}?window=1h&limit=100`)).body
    const expected = refLeaderboard(inWindow(events, Date.parse(lb.window.from)), { order: 'desc', limit: 100, minRequests: 1 })
    t.strictSame(lb.entries.map((e) => [e.model, e.provider, e.requests, e.success_rate]), expected.map((e) => [e.model, e.provider, e.requests, e.success_rate]), 'the leaderboard ranks every model, with its provider and figures')
    const ps = (await getOk<ProviderSummaryBody>(t, fresh, `${PROVIDERS}?window=1h`)).body
    const refP = refProviders(inWindow(events, Date.parse(ps.window.from)))
    t.strictSame(ps.providers.map((p) => [p.provider, p.models, p.requests, p.successes]), refP.map((p) => [p.provider, p.models, p.requests, p.successes]), 'the provider summary lists every provider with its figures')
    for (const name of names) {
      const rt = await getOk<{ requests: number }>(t, fresh, `/api/metrics/realtime?type=gateway&id=${encodeURIComponent(name)}&window=1h`)
      t.equal(rt.body.requests, events.filter((e) => e.gateway === name).length, `gateway ${name}: its requests`)
    }
  })

  t.test('GET /api/metrics/realtime: token totals of models, providers and gateways', async (t) => {
    const ids: Array<[EntityType, string]> = [
      ['model', 'openai/gpt-4o'], ['model', FIXTURE_FACTS.multiProviderModel], ['model', FIXTURE_FACTS.fewRequests],
      ['provider', 'openai'], ['provider', 'mistral'], ['provider', FIXTURE_FACTS.oldOnlyProvider],
      ...FIXTURE_FACTS.gateways.map((g): [EntityType, string] => ['gateway', g])
    ]
    for (const window of WINDOW_NAMES) {
      for (const [type, id] of ids) {
        const label = `realtime ${type}=${id} ${window}`
        const { body, before, after } = await getOk<RealtimeBody>(t, app, `${REALTIME}?${qs({ type, id, window })}`)
        const from = checkWindow(t, body.window, window, before, after, label)
        const counted = inWindow(events, from).filter((e) => matches(e, type, id))
        const x = tokenSums(counted)
        t.strictSame([body.requests, body.input_tokens, body.output_tokens], [counted.length, x.input_tokens, x.output_tokens], `${label}: requests, input_tokens, output_tokens`)
      }
    }
    const some = inWindow(events, Date.now() - 23 * HOUR)
    t.ok(some.some((e) => e.input_tokens === undefined) && some.some((e) => e.output_tokens === undefined) && some.some((e) => e.input_tokens !== undefined), 'the fixture mixes events with and without token counts')
  })

  t.test('token totals at the bounds: 10^7 tokens an event, events without them, failures', async (t) => {
    // Every figure is summed here from the events sent; the answers must match to the token.
    const fresh = await makeApp(t)
    const base = Date.now()
    const MAX = 10_000_000
    const sent: FixtureEvent[] = []
    const at = (i: number, spread: number): number => base - 1000 - (i % spread) * MINUTE - (i % 7) * 1000
    // a thousand maximal completions in the last hour, and a few in the hours before
    for (let i = 0; i < 1000; i++) sent.push({ model: 'tok/max', provider: 'tokp', gateway: 'tok-gw', success: true, input_tokens: MAX, output_tokens: MAX, timestamp: at(i, 50) })
    for (let i = 0; i < 30; i++) sent.push({ model: 'tok/max', provider: 'tokp', gateway: 'tok-gw', success: true, input_tokens: MAX, output_tokens: MAX - 1, timestamp: base - (2 + i % 20) * HOUR })
    // one side only, zero, none, and failures that still carry counts
    for (let i = 0; i < 40; i++) {
      const e: FixtureEvent = { model: i % 2 === 0 ? 'tok/max' : 'tok/mixed', provider: 'tokp', gateway: 'tok-gw', success: i % 5 !== 0, timestamp: at(i, 55) }
      if (!e.success) e.error_type = 'rate_limit'
      if (i % 4 === 0) e.input_tokens = MAX - 1
      if (i % 4 === 1) e.output_tokens = MAX - 1
      if (i % 4 === 2) { e.input_tokens = 0; e.output_tokens = 0 }
      sent.push(e)
    }
    for (let i = 0; i < 25; i++) sent.push({ model: 'tok/none', provider: 'tokp', success: i % 3 !== 0, ttft_ms: 100, total_time_ms: 900, timestamp: at(i, 45) })
    await postEvents(fresh, sent)
    const sums = (list: readonly FixtureEvent[]): [number, number, number] => {
      const x = tokenSums(list)
      return [list.length, x.input_tokens, x.output_tokens]
    }
    // a model or provider without requests in the window is not listed
    const listed = (list: readonly FixtureEvent[]): [number, number, number] | undefined => list.length === 0 ? undefined : sums(list)
    t.ok(tokenSums(sent).input_tokens > 2 ** 32, 'the sums pass 2^32')

    for (const window of WINDOW_NAMES) {
      for (const [type, id] of [['model', 'tok/max'], ['model', 'tok/mixed'], ['model', 'tok/none'], ['provider', 'tokp'], ['gateway', 'tok-gw'], ['gateway', 'default']] as Array<[EntityType, string]>) {
        const label = `realtime ${type}=${id} ${window}`
        const { body, before, after } = await getOk<RealtimeBody>(t, fresh, `${REALTIME}?${qs({ type, id, window })}`)
        const from = checkWindow(t, body.window, window, before, after, label)
        t.strictSame([body.requests, body.input_tokens, body.output_tokens], sums(inWindow(sent, from).filter((e) => matches(e, type, id))), `${label}: requests and token sums`)
      }
      const lb = await getOk<LeaderboardBody>(t, fresh, `${LEADERBOARD}?window=${window}&limit=100`)
      const inLb = inWindow(sent, Date.parse(lb.body.window.from))
      for (const model of ['tok/max', 'tok/mixed', 'tok/none']) {
        const e = lb.body.entries.find((x) => x.model === model)
        t.strictSame(e === undefined ? undefined : [e.requests, e.input_tokens, e.output_tokens], listed(inLb.filter((x) => x.model === model)), `leaderboard ${window} ${model}: requests and token sums`)
      }
      const ps = await getOk<ProviderSummaryBody>(t, fresh, `${PROVIDERS}?window=${window}`)
      const p = ps.body.providers.find((x) => x.provider === 'tokp')
      t.strictSame(p === undefined ? undefined : [p.requests, p.input_tokens, p.output_tokens], listed(inWindow(sent, Date.parse(ps.body.window.from))), `provider summary ${window}: requests and token sums`)
    }

    for (const [type, id] of [['model', 'tok/max'], ['model', 'tok/none'], ['provider', 'tokp'], ['gateway', 'tok-gw']] as Array<[EntityType, string]>) {
      for (const [hours, resolution, size] of [[24, 'hour', HOUR], [2, 'minute', MINUTE]] as const) {
        const label = `trends tokens ${type}=${id} ${hours}h by ${resolution}`
        const r = await getOk<TrendsBody>(t, fresh, `${TRENDS}?${qs({ type, id, metric: 'tokens', hours, resolution })}`)
        const starts = checkPointTimes(t, r.body.points, resolution === 'hour' ? hours : 60 * hours, size, r.before, r.after, label)
        checkPoints(t, r.body.points, starts, sent.filter((e) => matches(e, type, id)), size, 'tokens', null, label)
      }
    }
  })
}

export type { StatsBody, ProviderSummaryBody, LeaderboardBody, TrendsBody, ErrorBody }
