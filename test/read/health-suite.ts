/**
 * Health states, their history, baselines and anomalies, the gateway comparison, routing hints and
 * catalog changes (docs/health.md) against one store kind: run on the embedded store
 * (health-memory.test.ts) and on a real Redis (health-redis.test.ts).
 *
 * Events are posted through the API with past timestamps, minute by minute, relative to a `now`
 * taken when the suite starts; the read functions are then asked at that same `now`, so a minute
 * boundary passing during the test changes nothing. Every expectation comes from the raw events
 * through test/helpers/health-ref.ts, which does not import from src/.
 */
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { readCatalog } from '../../src/read/catalog.js'
import { readCompare, readRoute } from '../../src/read/compare.js'
import { readStatusHistory } from '../../src/read/history.js'
import { readRealtime } from '../../src/read/realtime.js'
import type { MetricsStore } from '../../src/store/types.js'
import { build } from '../helpers/app.js'
import {
  between, DAY, DEFAULTS, figures, HOUR, MINUTE, pct2, rankValue, refPairs, refRoute, stateNow,
  transitions, type RawEvent, type State
} from '../helpers/health-ref.js'
import { mulberry32 } from '../helpers/random.js'

export type MakeStore = (t: Test) => Promise<MetricsStore>

const RETENTION_HOURS = 192

async function post (app: FastifyInstance, url: string, body: unknown[]): Promise<void> {
  for (let i = 0; i < body.length; i += 1000) {
    const res = await app.inject({ method: 'POST', url, payload: body.slice(i, i + 1000) })
    if (res.statusCode !== 202) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  }
}

async function land (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) if (await app.flusher.flush()) return
  throw new Error('the ingest buffer did not flush')
}

const within2pct = (a: number | null, x: number | null): boolean =>
  a === null || x === null ? a === x : Math.abs(a - x) <= 0.02 * Math.abs(x) + 0.0011

export async function healthSuite (t: Test, makeStore: MakeStore): Promise<void> {
  const store = await makeStore(t)
  const { app } = await build(t, { store, config: { retentionHours: RETENTION_HOURS } })
  // The suite sweeps at times of its own (back-dated): the recorder's timer, sweeping at the wall
  // clock's minute, would move the shared marker past them and make them skip their writes.
  await app.statusRecorder.stop()
  const now = Date.now()
  /** Start of the minute k minutes before the last complete one. */
  const L = Math.floor(now / MINUTE) * MINUTE - MINUTE
  const minute = (k: number): number => L - k * MINUTE
  const r = mulberry32(0xBE70ED)
  const events: RawEvent[] = []
  /** `n` events in the minute k minutes back, made by `make(i)`. */
  const inMinute = (k: number, n: number, make: (i: number) => Omit<RawEvent, 'timestamp'>): void => {
    for (let i = 0; i < n; i++) events.push({ ...make(i), timestamp: minute(k) + 500 + i * 97 + Math.floor(r() * 50) })
  }
  const ok = (model: string, extra: Partial<RawEvent> = {}) => (): Omit<RawEvent, 'timestamp'> => ({ model, success: true, ttft_ms: 300 + Math.round(r() * 200), total_time_ms: 2500, output_tokens: 200, ...extra })
  const fail = (model: string, extra: Partial<RawEvent> = {}) => (): Omit<RawEvent, 'timestamp'> => ({ model, success: false, error_type: 'timeout', total_time_ms: 10_000, ...extra })

  // steady: 10 a minute, all fine
  for (let k = 40; k >= 0; k--) inMinute(k, 10, ok('steady/model'))
  // one failure at 4 a minute: 19 of 20 in the window is 95 %
  for (let k = 40; k >= 0; k--) inMinute(k, 4, (i) => k === 2 && i === 0 ? fail('one/failure')() : ok('one/failure')())
  // outage: fine, then the last 6 minutes all failing
  for (let k = 40; k >= 0; k--) inMinute(k, 10, k <= 5 ? fail('outage/model') : ok('outage/model'))
  // bursts of 22 every 6 minutes: quiet minutes in between never reach 3 in a row of `unknown`
  for (let k = 36; k >= 0; k -= 6) inMinute(k, 22, ok('bursty/model'))
  // too few to judge, all failing
  for (let k = 40; k >= 0; k--) inMinute(k, 3, fail('few/samples'))
  // 60 % rate limited, the rest fine
  for (let k = 40; k >= 0; k--) inMinute(k, 10, (i) => i < 6 ? fail('rate/limited', { error_type: 'rate_limit' })() : ok('rate/limited')())
  // down from 24 to 17 minutes back, then fine again
  for (let k = 45; k >= 0; k--) inMinute(k, 10, k >= 17 && k <= 24 ? fail('recovered/model') : ok('recovered/model'))
  // noisy: random volume each minute, a random failure rate every few minutes
  let failRate = 0
  for (let k = 70; k >= 0; k--) {
    if (r() < 0.2) failRate = [0, 0.02, 0.3, 0.8][Math.floor(r() * 4)]!
    inMinute(k, Math.floor(r() * 14), () => r() < failRate ? fail('noisy/model')() : ok('noisy/model')())
  }
  // slow: a week of TTFT around 400 ms in this hour of day (and the previous one), now 1200 ms
  for (let d = 1; d <= 7; d++) {
    for (const h of [0, 1]) {
      for (let i = 0; i < 16; i++) events.push({ model: 'slow/model', success: true, ttft_ms: 380 + i * 3, timestamp: Math.floor(L / HOUR) * HOUR - h * HOUR - d * DAY + 60_000 + i * 1000 })
    }
  }
  for (let k = 12; k >= 0; k--) inMinute(k, 10, (i) => ok('slow/model', { ttft_ms: 1200 + i })())
  // routing: one model through three gateways and two providers
  const routed = 'routed/model'
  for (let k = 40; k >= 0; k--) {
    inMinute(k, 8, (i) => (i === 0 && k % 7 === 0 ? fail : ok)(routed, { gateway: 'g-a', provider: 'p1', ttft_ms: 500 + i })())
    inMinute(k, 8, (i) => ok(routed, { gateway: 'g-b', provider: i % 2 === 0 ? 'p1' : 'p2', ttft_ms: 250 + i })())
    inMinute(k, 6, (i) => (k <= 6 ? fail : ok)(routed, { gateway: 'g-c', provider: 'p2', ttft_ms: 200 + i })())
    inMinute(k, 2, (i) => (i === 0 ? fail(routed, { gateway: 'g-d', provider: 'p2', error_type: 'rate_limit' }) : ok(routed, { gateway: 'g-d', provider: 'p2', ttft_ms: 900 }))())
  }
  await post(app, '/api/metrics/chat', events)
  await land(app)
  const th = DEFAULTS
  const of = (model: string): RawEvent[] => events.filter((e) => e.model === model)

  t.test('health states against the documented rule', async (t) => {
    const expected: Record<string, State> = {
      'steady/model': 'healthy',
      'one/failure': 'healthy',
      'outage/model': 'down',
      'bursty/model': 'healthy',
      'few/samples': 'unknown',
      'rate/limited': 'healthy',
      'recovered/model': 'healthy',
      'slow/model': 'degraded'
    }
    for (const [model, state] of Object.entries(expected)) {
      t.equal(stateNow(of(model), now, th), state, `${model}: the scenario is ${state} by the rule`)
      const answer = await readRealtime(store, 'model', model, '5m', now, th)
      t.equal(answer.status, state, `${model}: realtime status ${state}`)
    }
    const noisy = await readRealtime(store, 'model', 'noisy/model', '5m', now, th)
    t.equal(noisy.status, stateNow(of('noisy/model'), now, th), 'noisy traffic: the same state as the rule')
    const slow = await readRealtime(store, 'model', 'slow/model', '5m', now, th)
    t.match(slow.status_reason, /^TTFT p90 \d+(\.\d+)? ms > 2 × baseline \d+(\.\d+)? ms$/, 'slow: degraded by TTFT against its own baseline')
    const outage = await readRealtime(store, 'model', 'outage/model', '5m', now, th)
    t.equal(outage.status_reason, 'uptime 0 % < 50 %')
    const few = await readRealtime(store, 'model', 'few/samples', '5m', now, th)
    t.equal(few.status_reason, '15 requests (rate limits apart) in 5 minutes, fewer than 20', 'every request failed, and still not down: too few')
    t.equal((await readRealtime(store, 'model', 'unseen/model', '5m', now, th)).status, 'unknown', 'a model without traffic')
    t.equal((await readRealtime(store, 'model', 'steady/model', '5m', now)).status, 'healthy', 'the default thresholds when none are given')
  })

  t.test('uptime leaves rate limits apart; success_rate does not', async (t) => {
    const a = await readRealtime(store, 'model', 'rate/limited', '15m', now, th)
    const f = figures(between(of('rate/limited'), Date.parse(a.window.from), now + 1))
    t.equal(a.success_rate, pct2(f.successes, f.requests))
    t.equal(a.uptime, pct2(f.successes, f.requests - f.rateLimited))
    t.equal(a.uptime, 100)
    t.equal(a.success_rate, 40)
  })

  t.test('state changes over time, kept by the recorder without duplicates', async (t) => {
    // The recorder as it would have run every 5 minutes, then again and from a second instance.
    for (const back of [30, 25, 20, 15, 10, 5, 0]) {
      const res = await app.statusRecorder.sweep(now - back * MINUTE)
      t.equal(res.failedGroups, 0, `sweep ${back} minutes back: every change stored`)
    }
    await app.statusRecorder.sweep(now)
    const { app: other } = await build(t, { store, config: { retentionHours: RETENTION_HOURS } })
    await other.statusRecorder.stop()
    await other.statusRecorder.sweep(now)
    for (const model of ['recovered/model', 'outage/model', 'noisy/model', 'steady/model']) {
      const h = await readStatusHistory(store, 'model', model, 2, now, th)
      // The first sweep looked back 10 minutes from 30 minutes ago.
      const newestFirst = transitions(of(model), minute(39), L, th).reverse()
      t.same(h.transitions.map((x) => [Date.parse(x.at), x.from, x.to]), newestFirst.map((x) => [x.at, x.from, x.to]), `${model}: every change, newest first, once`)
      t.equal(h.status, stateNow(of(model), now, th), `${model}: the state now`)
      if (model === 'noisy/model') t.ok(newestFirst.length >= 2, `noisy traffic changed state ${newestFirst.length} times in 40 minutes`)
      const latest = newestFirst[0]
      t.equal(h.since, latest !== undefined && latest.to === h.status ? new Date(latest.at).toISOString() : null, `${model}: since`)
    }
    const recovered = await readStatusHistory(store, 'model', 'recovered/model', 2, now, th)
    t.same(recovered.transitions.map((x) => `${x.from}→${x.to}`), ['down→healthy', 'healthy→down'], 'down, then healthy again')
    t.match(recovered.transitions[1]?.reason, /^uptime 0 % < 50 %$/, 'why it went down')
    t.match(recovered.transitions[0]?.reason, /^uptime 100 % ≥ 95 %/, 'why it came back')
    t.equal(recovered.window.seconds, 7200)
    const steady = await readStatusHistory(store, 'model', 'steady/model', 24, now, th)
    t.same(steady.transitions.map((x) => `${x.from}→${x.to}`), ['unknown→healthy'], 'traffic began 40 minutes ago: unknown, then healthy')
    const outside = await readStatusHistory(store, 'model', 'recovered/model', 1, now + HOUR, th)
    t.notOk(outside.transitions.some((x) => Date.parse(x.at) < Date.parse(outside.window.from)), 'changes before the window are left out')
  })

  t.test('GET /api/metrics/compare and /route, computed independently', async (t) => {
    for (const window of ['15m', '1h'] as const) {
      const c = await readCompare(store, routed, window, now, th)
      const windowed = between(events, Date.parse(c.window.from), now + 1)
      for (const by of ['gateway', 'provider'] as const) {
        const ref = refPairs(events, windowed, routed, by, now, th)
        const rows = (by === 'gateway' ? c.gateways : c.providers) as unknown as Array<Record<string, unknown>>
        t.same(rows.map((x) => x[by]), ref.map((x) => x.id), `${window} by ${by}: the same candidates, by requests`)
        ref.forEach((x, i) => {
          const a = rows[i]!
          t.strictSame([a.requests, a.successes, a.rate_limited, a.uptime, a.uptime_lower_bound, a.status], [x.requests, x.successes, x.rate_limited, x.uptime, x.uptime_lower_bound, x.status], `${window} ${x.id}: counts, uptime, bound, state`)
          t.ok(within2pct(a.ttft_p50_ms as number, x.ttft_p50_ms) && within2pct(a.ttft_p90_ms as number, x.ttft_p90_ms), `${window} ${x.id}: TTFT p50 ${String(a.ttft_p50_ms)} and p90 ${String(a.ttft_p90_ms)} within 2 %`)
        })
        const route = await readRoute(store, routed, by, window, now, th)
        t.same(route.candidates.map((x) => x.id), refRoute(ref), `${window} by ${by}: ranked by the rule`)
        t.equal(route.recommended, refRoute(ref)[0], 'the first is recommended')
      }
    }
    const route = await readRoute(store, routed, 'gateway', '15m', now, th)
    t.same(route.candidates.map((x) => [x.id, x.status]), [['g-b', 'healthy'], ['g-a', 'healthy'], ['g-d', 'unknown'], ['g-c', 'down']], 'g-d: one request a minute apart from rate limits is too few to judge')
    t.match(route.candidates[3]?.reason, 'down, after every candidate that is not')
    t.match(route.candidates[1]?.reason, /^uptime lower bound [\d.]+ %, below rank 1/)
    const cmp = await readCompare(store, routed, '15m', now, th)
    const gb = cmp.gateways.find((g) => g.gateway === 'g-b')!
    const gbEvents = between(events, Date.parse(cmp.window.from), now + 1).filter((e) => e.model === routed && e.gateway === 'g-b')
    const tpsRef = rankValue(gbEvents.map((e) => e.output_tokens! / ((e.total_time_ms! - e.ttft_ms!) / 1000)), 50)
    t.ok(within2pct(gb.output_tokens_per_second_p50, tpsRef), `output tokens per second p50 ${String(gb.output_tokens_per_second_p50)} within 2 % of ${String(tpsRef)}`)
    t.ok(within2pct(gb.total_time_p50_ms, 2500), 'total time p50')
    const none = await readRoute(store, 'nobody/model', 'gateway', '15m', now, th)
    t.same([none.candidates, none.recommended], [[], null], 'a model without traffic: no candidates')
    const allDown = await readRoute(store, 'outage/model', 'gateway', '5m', now, th)
    t.same([allDown.candidates.map((x) => x.status), allDown.recommended], [['down'], null], 'every candidate down: nothing recommended')
  })

  t.test('baselines and anomalies on synthetic weeks', async (t) => {
    // Two models with the same week of traffic in the last two hours of day; now one is slow and failing.
    const week: RawEvent[] = []
    const hourNow = Math.floor(now / HOUR) * HOUR
    for (const model of ['weekly/normal', 'weekly/anomaly']) {
      for (let d = 1; d <= 7; d++) {
        for (const h of [0, 1]) {
          for (let i = 0; i < 60; i++) week.push({ model, success: i % 50 !== 0, ...(i % 50 !== 0 ? {} : { error_type: 'network' }), ttft_ms: 350 + (i % 20) * 10, timestamp: hourNow - h * HOUR - d * DAY + 30_000 + i * 45_000 })
        }
      }
      const bad = model === 'weekly/anomaly'
      for (let k = 14; k >= 0; k--) {
        for (let i = 0; i < 8; i++) week.push({ model, success: !(bad && i % 4 === 0), ...(bad && i % 4 === 0 ? { error_type: 'other' } : {}), ttft_ms: (bad ? 900 : 350) + (i % 8) * 25, timestamp: minute(k) + 1000 + i * 500 })
      }
    }
    await post(app, '/api/metrics/chat', week)
    await land(app)
    const normal = await readRealtime(store, 'model', 'weekly/normal', '15m', now, th)
    const bad = await readRealtime(store, 'model', 'weekly/anomaly', '15m', now, th)
    t.equal(normal.baselines.anomaly, false, 'the normal week: no anomaly')
    t.equal(normal.baselines.anomaly_reason, null)
    t.equal(bad.baselines.anomaly, true, 'the known anomaly is found')
    t.match(bad.baselines.anomaly_reason, /TTFT p50 .* × the 7-day baseline/)
    t.match(bad.baselines.anomaly_reason, /TTFT p90 .* × the 7-day baseline/)
    t.match(bad.baselines.anomaly_reason, /error rate 25 % \(at least [\d.]+ % at 95 % confidence\) vs 3\.33 % in the 7-day baseline/, 'baseline: 2 failures in every 60')

    // The baseline: the window's hours of day on the 7 days before, from the raw events.
    const from = Date.parse(bad.window.from)
    const hours = new Set([Math.floor(from / HOUR) * HOUR, Math.floor(now / HOUR) * HOUR])
    const base = week.filter((e) => e.model === 'weekly/anomaly' && [...hours].some((h) => [1, 2, 3, 4, 5, 6, 7].some((d) => e.timestamp >= h - d * DAY && e.timestamp < h - d * DAY + HOUR)))
    const bf = figures(base)
    t.ok(within2pct(bad.baselines.ttft_p50_ms.baseline, rankValue(bf.ttft, 50)), `baseline p50 ${String(bad.baselines.ttft_p50_ms.baseline)} within 2 % of ${String(rankValue(bf.ttft, 50))}`)
    t.ok(within2pct(bad.baselines.ttft_p90_ms.baseline, rankValue(bf.ttft, 90)), 'baseline p90 within 2 %')
    t.equal(bad.baselines.error_rate_pct.baseline, Math.round(10_000 * (bf.requests - bf.successes) / bf.requests) / 100, 'baseline error rate')
    const cur = figures(between(week.filter((e) => e.model === 'weekly/anomaly'), from, now + 1))
    t.equal(bad.baselines.error_rate_pct.current, 25)
    t.ok(within2pct(bad.baselines.ttft_p90_ms.current, rankValue(cur.ttft, 90)), 'current p90 within 2 %')
    // The previous period: the 15 minutes before the window.
    t.equal(bad.baselines.previous.to, bad.window.from)
    t.equal(Date.parse(bad.baselines.previous.from), from - 15 * MINUTE)
    const prev = figures(between(week.filter((e) => e.model === 'weekly/anomaly'), from - 15 * MINUTE, from))
    t.ok(prev.ttft.length > 0, 'the previous period has traffic (the oldest of the 15 minutes)')
    t.ok(within2pct(bad.baselines.ttft_p50_ms.previous, rankValue(prev.ttft, 50)), 'previous p50 within 2 %')
    const hourly = await readRealtime(store, 'model', 'weekly/anomaly', '24h', now, th)
    t.ok(hourly.baselines.ttft_p50_ms.baseline !== null, '24h: the baseline is the 7 days before, every hour of day')
    t.equal(Date.parse(hourly.baselines.previous.from), Date.parse(hourly.window.from) - DAY, '24h: the previous period is the day before')
  })

  t.test('catalog changes', async (t) => {
    const gw = 'catalog-gw'
    const fetches = [
      { gateway: gw, status: 'success', models: ['a/1', 'b/2'], timestamp: now - 50 * MINUTE },
      { gateway: gw, status: 'success', models: ['b/2', 'a/1', 'a/1'], timestamp: now - 40 * MINUTE },
      { gateway: gw, status: 'error', error_type: 'timeout', timestamp: now - 35 * MINUTE },
      { gateway: gw, status: 'success', models: ['a/1', 'c/3'], timestamp: now - 30 * MINUTE },
      { gateway: gw, status: 'success', models: [], timestamp: now - 20 * MINUTE },
      { gateway: gw, status: 'success', models: ['c/3', 'd/4', 'e/5'], timestamp: now - 10 * MINUTE },
      { gateway: gw, status: 'success', model_count: 7, timestamp: now - 5 * MINUTE }
    ]
    await post(app, '/api/metrics/gateway/fetch', fetches)
    await land(app)
    const c = await readCatalog(store, gw, 24, 20, now)
    t.equal(c.fetches, 5, 'fetches that carried a list')
    t.equal(c.last_fetch_at, new Date(now - 10 * MINUTE).toISOString())
    t.same(c.models, ['c/3', 'd/4', 'e/5'])
    t.equal(c.model_count, 3)
    t.same(c.changes, [
      { at: new Date(now - 10 * MINUTE).toISOString(), previous_fetch_at: new Date(now - 20 * MINUTE).toISOString(), appeared: ['c/3', 'd/4', 'e/5'], disappeared: [] },
      { at: new Date(now - 20 * MINUTE).toISOString(), previous_fetch_at: new Date(now - 30 * MINUTE).toISOString(), appeared: [], disappeared: ['a/1', 'c/3'] },
      { at: new Date(now - 30 * MINUTE).toISOString(), previous_fetch_at: new Date(now - 40 * MINUTE).toISOString(), appeared: ['c/3'], disappeared: ['b/2'] }
    ], 'between consecutive fetches that differ, newest first; the same list in another order is no change')
    t.same((await readCatalog(store, gw, 24, 1, now)).changes.map((x) => x.at), [new Date(now - 10 * MINUTE).toISOString()], 'limit: the latest changes')
    const rt = await readRealtime(store, 'gateway', gw, '1h', now, th)
    t.equal(rt.gateway_fetches?.last_model_count, 7, 'model_count of the latest fetch; a list without model_count counts its models')
    const none = await readCatalog(store, 'no-such-gw', 24, 20, now)
    t.same([none.fetches, none.last_fetch_at, none.model_count, none.models, none.changes], [0, null, null, [], []])
  })
}
