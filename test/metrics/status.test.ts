import t from 'tap'
import { Dist, ZERO_BIN } from '../../src/metrics/histogram.js'
import { mulberry32 } from '../helpers/random.js'
import {
  baselineP90, condition, conditions, DEFAULT_THRESHOLDS, emptyTally, stateOf, stateSeries,
  transitionsOf, ttftPercentile, uptimeLowerBound, uptimeOf, type Condition, type Status, type Tally
} from '../../src/metrics/status.js'

const th = DEFAULT_THRESHOLDS

/** A tally of `requests` with `successes`, `rateLimited` of the failures rate limits, and these TTFTs. */
function tally (requests: number, successes: number, rateLimited = 0, ttft: number[] = []): Tally {
  const d = new Dist()
  for (const v of ttft) d.add(v)
  return { requests, successes, rateLimited, ttft: { n: d.n, sum: d.sum, min: d.n > 0 ? d.min : 0, max: d.n > 0 ? d.max : 0 }, ttftBins: d.bins }
}

/** Tallies summed afresh, the plain way: what each slid window of `conditions` must equal. */
function sumTallies (tallies: Tally[]): Tally {
  const out = emptyTally()
  for (const b of tallies) {
    out.requests += b.requests
    out.successes += b.successes
    out.rateLimited += b.rateLimited
    if (b.ttft.n === 0) continue
    out.ttft = out.ttft.n === 0
      ? { ...b.ttft }
      : { n: out.ttft.n + b.ttft.n, sum: out.ttft.sum + b.ttft.sum, min: Math.min(out.ttft.min, b.ttft.min), max: Math.max(out.ttft.max, b.ttft.max) }
    for (const [bin, n] of b.ttftBins) out.ttftBins.set(bin, (out.ttftBins.get(bin) ?? 0) + n)
  }
  return out
}

const c = (status: Status): Condition => ({ status, reason: status })
/** A sequence of conditions from a compact string: h healthy, d degraded, x down, u unknown. */
const seq = (s: string): Condition[] => [...s].map((ch) => c(({ h: 'healthy', d: 'degraded', x: 'down', u: 'unknown' } as const)[ch as 'h']))

t.test('the condition of a 5-minute window', async (t) => {
  t.equal(condition(tally(19, 19), null, th).status, 'unknown', '19 requests: fewer than the 20 needed')
  t.match(condition(tally(19, 19), null, th).reason, /19 requests \(rate limits apart\) in 5 minutes, fewer than 20/)
  t.equal(condition(tally(40, 15, 25), null, th).status, 'unknown', 'rate limits do not count towards the minimum: 15 left')
  t.equal(condition(tally(20, 19), null, th).status, 'healthy', 'one failure in 20 is 95 %: not below 95 %')
  for (let n = 20; n <= 400; n++) {
    if (condition(tally(n, n - 1), null, th).status !== 'healthy') t.fail(`one failure among ${n} requests changed the condition`)
  }
  t.pass('one failure among any 20 to 400 requests leaves the condition healthy')
  t.equal(condition(tally(100, 94), null, th).status, 'degraded')
  t.equal(condition(tally(100, 94), null, th).reason, 'uptime 94 % < 95 %')
  t.equal(condition(tally(100, 50), null, th).status, 'degraded', '50 % is not below 50 %')
  t.equal(condition(tally(100, 49), null, th).status, 'down')
  t.equal(condition(tally(100, 49), null, th).reason, 'uptime 49 % < 50 %')
  t.equal(condition(tally(100, 100, 0), null, { ...th, downUptime: 0, degradedUptime: 0 }).status, 'healthy')
  t.equal(condition(tally(120, 100, 20), null, th).status, 'healthy', 'rate limits are not failures for uptime')
  t.equal(condition(tally(100, 100), null, th).reason, 'uptime 100 % ≥ 95 %', 'no TTFT samples: no TTFT in the reason')

  const slow = Array.from({ length: 30 }, (_, i) => 900 + i)
  t.equal(condition(tally(30, 30, 0, slow), 400, th).status, 'degraded', 'TTFT p90 over 2 × the baseline p90')
  t.match(condition(tally(30, 30, 0, slow), 400, th).reason, /^TTFT p90 \d+(\.\d+)? ms > 2 × baseline 400 ms$/)
  t.equal(condition(tally(30, 30, 0, slow), 500, th).status, 'healthy', 'under 2 × the baseline')
  t.match(condition(tally(30, 30, 0, slow), 500, th).reason, /^uptime 100 % ≥ 95 %, TTFT p90 \d+/)
  t.equal(condition(tally(30, 30, 0, slow), null, th).status, 'healthy', 'no baseline: TTFT is not judged')
  t.equal(condition(tally(30, 30, 0, slow.slice(0, 19)), 100, th).status, 'healthy', 'fewer than 20 TTFT samples: TTFT is not judged')
  const twoSlow = [...Array.from({ length: 18 }, () => 300), 5000, 5000]
  t.equal(condition(tally(20, 20, 0, twoSlow), 400, th).status, 'healthy', 'two slow requests in 20 leave the p90 (rank 18) alone')
})

t.test('uptime, TTFT percentiles and baselines of a tally', async (t) => {
  t.ok(Math.abs(ttftPercentile(tally(4, 4, 0, [100, 200, 50, 400]), 50)! - 100) <= 2, 'the p50 of 50, 100, 200, 400 ms is the second, 100 ms, within 2 %')
  t.equal(ttftPercentile(emptyTally(), 90), null)
  t.equal(uptimeOf(tally(10, 9, 1)), 100, '9 of 9 once the rate limit is set apart')
  t.equal(uptimeOf(tally(3, 0, 3)), null, 'only rate limits: no uptime')
  t.equal(uptimeLowerBound(tally(0, 0)), null)
  t.ok(uptimeLowerBound(tally(100, 99))! < 99, 'the lower bound is below the rate')
  t.equal(baselineP90(tally(99, 99, 0, Array.from({ length: 99 }, () => 100)), th), null, '99 samples: no baseline')
  t.equal(baselineP90(tally(100, 100, 0, Array.from({ length: 100 }, () => 100)), th), 100)
})

t.test('conditions slide a 5-minute window over minute tallies', async (t) => {
  // 4 quiet minutes, then 10 minutes of 5 requests each: the window reaches 20 at its 4th minute.
  const minutes = [...Array.from({ length: 4 }, () => tally(0, 0)), ...Array.from({ length: 10 }, () => tally(5, 5))]
  const conds = conditions(minutes, minutes.map(() => null), th)
  t.equal(conds.length, minutes.length - 4, 'one condition per minute with a full window')
  t.same(conds.map((x) => x.status).join(','), 'unknown,unknown,unknown,healthy,healthy,healthy,healthy,healthy,healthy,healthy'.split(',').join(','))
  t.same(conditions(minutes, [], th).length, 10, 'missing baselines count as none')
})

t.test('the slid window gives every condition its 5 minutes summed afresh would', async (t) => {
  const rnd = mulberry32(7)
  let judgedTtft = 0
  let zeroJudged = 0
  for (let run = 0; run < 200; run++) {
    // Minutes of 0–15 requests: some without TTFT samples, some rate-limited, some slow, so windows
    // cross every threshold (minimum samples, uptime, TTFT against the baseline) as they slide.
    const minutes = Array.from({ length: 8 + Math.floor(rnd() * 20) }, () => {
      const requests = Math.floor(rnd() * 16)
      const successes = Math.max(0, requests - Math.floor(rnd() * rnd() * 6))
      const slow = rnd() < 0.3 ? 5 : 1
      // Now and then a first token in under a microsecond: the zero bin, first in the window's order.
      const zeros = rnd() < 0.3 ? 0.5 : 0
      const ttft = rnd() < 0.2 ? [] : Array.from({ length: successes }, () => rnd() < zeros ? 0 : (50 + rnd() * 500) * slow)
      const m = tally(requests, successes, Math.floor(rnd() * (requests - successes + 1)), ttft)
      // A bin stored with a count of 0 changes nothing.
      if (rnd() < 0.1) m.ttftBins.set(999, 0)
      return m
    })
    const baselines = minutes.map(() => (rnd() < 0.3 ? null : 300 + rnd() * 400))
    const slid = conditions(minutes, baselines, th)
    for (let i = 4; i < minutes.length; i++) {
      const window = sumTallies(minutes.slice(i - 4, i + 1))
      const afresh = condition(window, baselines[i] ?? null, th)
      if (afresh.reason.includes('TTFT p90')) {
        judgedTtft++
        if (window.ttftBins.has(ZERO_BIN)) zeroJudged++
      }
      if (slid[i - 4]!.status !== afresh.status || slid[i - 4]!.reason !== afresh.reason) {
        t.fail(`run ${run}, minute ${i}: ${JSON.stringify(slid[i - 4])} ≠ ${JSON.stringify(afresh)}`)
        return
      }
    }
  }
  t.ok(judgedTtft > 100, `windows with a TTFT p90 in their reason: ${judgedTtft}`)
  t.ok(zeroJudged > 50, `windows with a TTFT p90 and samples in the zero bin: ${zeroJudged}`)
})

t.test('the state machine', async (t) => {
  const state = (s: string): Status => stateOf(seq(s), th).status

  t.test('a new condition moves the state only after 3 consecutive minutes', async (t) => {
    t.equal(state('hhhhhhhhhh'), 'healthy')
    t.equal(state('hhhhhhhhhhd'), 'healthy', 'one degraded minute')
    t.equal(state('hhhhhhhhhhdd'), 'healthy', 'two')
    t.equal(state('hhhhhhhhhhddd'), 'degraded', 'three')
    t.equal(state('hhhhhhhhhhxxx'), 'down')
    t.equal(state('hhhhhhhhhhdxd'), 'healthy', 'degraded and down minutes in turn: no run of one condition')
    t.equal(state('xxxxxhh'), 'down', 'recovery waits 3 minutes too')
    t.equal(state('xxxxxhhh'), 'healthy')
    t.equal(state('hhhuu'), 'healthy', 'two quiet minutes keep the state')
    t.equal(state('hhhuuu'), 'unknown', 'three quiet minutes: not enough samples to say')
  })

  t.test('the reason says what holds the state', async (t) => {
    t.equal(stateOf(seq('hhhhdd'), th).reason, 'healthy held: degraded for 2 of the 3 consecutive minutes needed (degraded)')
    t.equal(stateOf(seq('hhhddd'), th).reason, 'degraded', 'the latest condition\'s reason')
    t.equal(stateOf(seq('dddhhd'), th).reason, 'degraded', 'held state equal to the latest condition: that condition\'s reason')
  })

  t.test('flapping traffic does not flip the state', async (t) => {
    let s = 'hhhhh'
    for (let i = 0; i < 16; i++) {
      s += i % 2 === 0 ? 'd' : 'h'
      t.equal(state(s), 'healthy', `after ${i + 1} flapping minutes`)
    }
    s += 'ddd'
    t.equal(state(s), 'degraded', 'a steady condition still gets through')
  })

  t.test('twenty minutes without any run: degraded when trouble was seen, else unknown', async (t) => {
    const flapping = 'hd'.repeat(10)
    t.equal(stateOf(seq('hhh' + flapping), th).status, 'degraded')
    t.equal(stateOf(seq('hhh' + flapping), th).reason, 'unstable: no condition held 3 consecutive minutes in the last 20')
    t.equal(stateOf(seq('hhh' + 'hu'.repeat(10)), th).status, 'unknown', 'healthy and quiet minutes in turn')
    t.equal(stateOf(seq('hx'), th).reason, 'unstable: no condition held 3 consecutive minutes in the last 2', 'a short history says how long it is')
    t.equal(stateOf([], th).status, 'unknown', 'no minutes at all')
  })

  t.test('N is configurable', async (t) => {
    t.equal(stateOf(seq('hhhhhd'), { ...th, consecutiveMinutes: 1 }).status, 'degraded', 'N = 1 follows every minute')
    t.equal(stateOf(seq('hhhhhhddddd'), { ...th, consecutiveMinutes: 6 }).status, 'healthy')
    t.equal(stateOf(seq('hhhhhhdddddd'), { ...th, consecutiveMinutes: 6 }).status, 'degraded')
  })

  t.test('states over time and their changes', async (t) => {
    const conds = seq('h'.repeat(29) + 'hhddd' + 'hhh')
    const series = stateSeries(conds, th, 8)
    // the last 8 conditions: h h d d d h h h
    t.same(series.map((x) => x.status), ['healthy', 'healthy', 'healthy', 'healthy', 'degraded', 'degraded', 'degraded', 'healthy'])
    const first = Date.UTC(2026, 0, 1, 12, 0)
    const changes = transitionsOf(series, first)
    t.same(changes.map((x) => [new Date(x.at).toISOString(), x.from, x.to]), [
      ['2026-01-01T12:05:00.000Z', 'healthy', 'degraded'],
      ['2026-01-01T12:08:00.000Z', 'degraded', 'healthy']
    ], 'a change is dated at the end of the minute that completed it')
    t.equal(stateSeries(seq('hhh'), th, 10).length, 3, 'never more states than conditions')
  })
})
