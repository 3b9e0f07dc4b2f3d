import t from 'tap'
import { changePct, compareWindows, errorRateOf } from '../../src/metrics/baseline.js'
import { Dist } from '../../src/metrics/histogram.js'
import { DEFAULT_THRESHOLDS, emptyTally, type Tally } from '../../src/metrics/status.js'
import { mulberry32 } from '../helpers/random.js'

const th = DEFAULT_THRESHOLDS

function tally (requests: number, successes: number, rateLimited = 0, ttft: number[] = []): Tally {
  const d = new Dist()
  for (const v of ttft) d.add(v)
  return { requests, successes, rateLimited, ttft: { n: d.n, sum: d.sum, min: d.n > 0 ? d.min : 0, max: d.n > 0 ? d.max : 0 }, ttftBins: d.bins }
}

/** n TTFTs around `median` ms (lognormal, seeded). */
function ttfts (n: number, median: number, seed: number): number[] {
  const r = mulberry32(seed)
  return Array.from({ length: n }, () => Math.round(median * Math.exp(0.3 * Math.sqrt(-2 * Math.log(r() || 1e-9)) * Math.cos(2 * Math.PI * r())) * 1000) / 1000)
}

t.test('changes in percent', async (t) => {
  t.equal(changePct(150, 100), 50)
  t.equal(changePct(50, 200), -75)
  t.equal(changePct(1, 3), -66.67, '2 decimals')
  t.equal(changePct(null, 100), null)
  t.equal(changePct(100, null), null)
  t.equal(changePct(100, 0), null, 'no change in percent from 0')
})

t.test('the error rate leaves rate limits apart', async (t) => {
  t.equal(errorRateOf(tally(100, 90, 5)), 5.26, '5 failures among 95 (5 rate limits apart)')
  t.equal(errorRateOf(tally(5, 0, 5)), null)
})

t.test('a window like its baseline is no anomaly', async (t) => {
  const base = tally(7000, 6950, 20, ttfts(7000, 400, 1))
  const prev = tally(1000, 993, 0, ttfts(1000, 400, 2))
  const cur = tally(1000, 994, 0, ttfts(1000, 410, 3))
  const b = compareWindows(cur, prev, base, th)
  t.equal(b.anomaly, false)
  t.equal(b.anomaly_reason, null)
  t.ok(Math.abs(b.ttft_p50_ms.change_vs_baseline_pct!) < 10, 'p50 within 10 % of the baseline')
  t.equal(b.error_rate_pct.current, 0.6)
  t.equal(b.error_rate_pct.previous, 0.7)
  t.equal(b.error_rate_pct.change_vs_previous_pct, -14.29)
})

t.test('slow TTFT against the 7-day baseline', async (t) => {
  const base = tally(7000, 7000, 0, ttfts(7000, 400, 4))
  const cur = tally(200, 200, 0, ttfts(200, 900, 5))
  const b = compareWindows(cur, emptyTally(), base, th)
  t.equal(b.anomaly, true)
  t.match(b.anomaly_reason, /^TTFT p50 \d+(\.\d+)? ms is 2\.\d+ × the 7-day baseline \(\d+(\.\d+)? ms\); TTFT p90 .* × the 7-day baseline/)
  t.equal(b.ttft_p50_ms.previous, null, 'no previous period')
  t.equal(b.ttft_p50_ms.change_vs_previous_pct, null)
  t.ok(b.ttft_p50_ms.change_vs_baseline_pct! > 100)
  t.equal(compareWindows(tally(19, 19, 0, ttfts(19, 900, 6)), emptyTally(), base, th).anomaly, false, 'fewer than 20 current samples: no judgement')
  t.equal(compareWindows(cur, emptyTally(), base, { ...th, anomalyTtftFactor: 3 }).anomaly, false, 'under a larger factor')
})

t.test('without a baseline, the previous period is the reference', async (t) => {
  const base = tally(50, 50, 0, ttfts(50, 400, 7))
  const prev = tally(300, 300, 0, ttfts(300, 400, 8))
  const cur = tally(300, 300, 0, ttfts(300, 800, 9))
  const b = compareWindows(cur, prev, base, th)
  t.equal(b.anomaly, true)
  t.match(b.anomaly_reason, /the previous period/)
  t.notMatch(b.anomaly_reason, /baseline/)
  t.equal(compareWindows(cur, tally(19, 19, 0, ttfts(19, 400, 10)), base, th).anomaly, false, 'neither reference has enough samples')
  const zero = tally(300, 300, 0, Array.from({ length: 300 }, () => 0))
  t.equal(compareWindows(cur, zero, emptyTally(), th).anomaly, false, 'a reference of 0 ms cannot be multiplied')
})

t.test('error rate: significantly more than the reference', async (t) => {
  const base = tally(7000, 6930) // 1 %
  t.equal(compareWindows(tally(20, 18), emptyTally(), base, th).anomaly, false, '2 failures in 20: 10 %, but at 95 % confidence only ≥ 2.8 %')
  const many = compareWindows(tally(20, 14), emptyTally(), base, th)
  t.equal(many.anomaly, true, '6 failures in 20: at least 14.5 % at 95 % confidence')
  t.match(many.anomaly_reason, /^error rate 30 % \(at least \d+(\.\d+)? % at 95 % confidence\) vs 1 % in the 7-day baseline$/)
  t.equal(compareWindows(tally(1000, 920), emptyTally(), base, th).anomaly, true, '8 % over 1000 requests')
  t.equal(compareWindows(tally(1000, 950), emptyTally(), base, th).anomaly, false, '5 % over 1000: the lower bound is under 1 + 5')
  t.equal(compareWindows(tally(100, 20, 80), emptyTally(), base, th).anomaly, false, 'rate limits are not errors: 20 of 20 succeeded')
  t.equal(compareWindows(tally(19, 0), emptyTally(), base, th).anomaly, false, 'fewer than 20 requests: no judgement')
  t.equal(compareWindows(tally(1000, 920), tally(19, 0), emptyTally(), th).anomaly, false, 'no reference with enough requests')
})
