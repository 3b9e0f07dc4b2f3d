import t, { type Test } from 'tap'
import {
  ALPHA,
  binOf,
  binValue,
  Dist,
  emptyStats,
  GAMMA,
  percentile,
  percentileInOrder,
  PERCENTILES,
  sortBins,
  statOf,
  statsOf,
  UNIT_SCALE,
  ZERO_BIN,
  type Stats
} from '../../src/metrics/histogram.js'
import { mulberry32 } from '../helpers/random.js'

// ---------------------------------------------------------------------------------------------
// Reproducible samples: mulberry32 + Box–Muller, written here so the runs do not depend on the
// implementation or on Math.random.

function normal (rnd: () => number): () => number {
  return () => {
    const u1 = 1 - rnd() // (0, 1]
    const u2 = rnd()
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
  }
}

const N = 100_000

function lognormalSamples (seed: number): number[] {
  const z = normal(mulberry32(seed))
  const out: number[] = []
  for (let i = 0; i < N; i++) out.push(Math.exp(Math.log(400) + 0.8 * z()))
  return out
}

function bimodalSamples (seed: number): number[] {
  const rnd = mulberry32(seed)
  const z = normal(mulberry32(seed + 1))
  const out: number[] = []
  for (let i = 0; i < N; i++) {
    out.push(rnd() < 0.7 ? Math.exp(Math.log(200) + 0.25 * z()) : Math.exp(Math.log(5000) + 0.3 * z()))
  }
  return out
}

/** Exact nearest-rank percentile: the sample of rank ceil(p/100 × n), 1-based, in ascending order. */
function nearestRank (sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  const v = sorted[rank - 1]
  if (v === undefined) throw new Error('rank out of range')
  return v
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000

/** The stats a user expects, computed from the raw samples only. */
function exact (samples: number[]): { sorted: number[], min: number, max: number, avg: number } {
  const sorted = [...samples].sort((a, b) => a - b)
  // values are recorded at microsecond precision: the mean of the values rounded to the microsecond
  let sumUs = 0
  for (const v of samples) sumUs += Math.round(v * 1000)
  return {
    sorted,
    min: round3(sorted[0] ?? NaN),
    max: round3(sorted[sorted.length - 1] ?? NaN),
    avg: Math.round(sumUs / samples.length) / 1000
  }
}

function distOf (values: number[]): Dist {
  const d = new Dist()
  for (const v of values) d.add(v)
  return d
}

function assertAccurate (t: Test, stats: Stats, samples: number[], label: string): void {
  const e = exact(samples)
  t.equal(stats.count, samples.length, `${label}: count`)
  t.equal(stats.min, e.min, `${label}: min is the exact min`)
  t.equal(stats.max, e.max, `${label}: max is the exact max`)
  t.equal(stats.avg, e.avg, `${label}: avg is the exact mean`)
  for (const p of [50, 90, 95, 99] as const) {
    const want = nearestRank(e.sorted, p)
    const got = stats[`p${p}`]
    const rel = got === null ? Infinity : Math.abs(got - want) / want
    t.ok(rel <= 0.02, `${label}: p${p} = ${got}, exact ${want.toFixed(3)}, off by ${(rel * 100).toFixed(3)} %`)
  }
}

function sortedBins (d: Dist): Array<[string, number]> {
  return [...d.bins].map(([k, v]): [string, number] => [String(k), v]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
}

// ---------------------------------------------------------------------------------------------

t.test('statsOf accuracy on 100 000 samples', async (t) => {
  const cases: Array<[string, number[]]> = [
    ['lognormal (median 400 ms, sigma 0.8)', lognormalSamples(42)],
    ['bimodal (70 % ~200 ms, 30 % ~5 000 ms)', bimodalSamples(1234)]
  ]
  for (const [label, samples] of cases) {
    const d = distOf(samples)
    assertAccurate(t, statsOf(d, d.bins), samples, label)
  }
  // the bimodal mix puts p50 in the low mode and p90+ in the high one: a check the samples are what we meant
  const s = exact(bimodalSamples(1234)).sorted
  t.ok(nearestRank(s, 50) < 400 && nearestRank(s, 90) > 2500, 'bimodal sample sanity')
})

t.test('Dist.merge', async (t) => {
  const cases: Array<[string, number[]]> = [
    ['lognormal', lognormalSamples(7)],
    ['bimodal', bimodalSamples(99)]
  ]
  for (const [label, samples] of cases) {
    await t.test(label, async (t) => {
      const single = distOf(samples)
      // uneven parts, and an empty Dist among them
      const cuts = [0, 1, 17, 5_000, 33_333, 33_333, 80_000, N]
      const parts: Dist[] = []
      for (let i = 0; i + 1 < cuts.length; i++) parts.push(distOf(samples.slice(cuts[i], cuts[i + 1])))
      t.ok(parts.some((p) => p.n === 0), 'one part is empty')
      const merged = new Dist()
      for (const p of parts) merged.merge(p)

      t.equal(merged.n, single.n, 'n')
      t.equal(merged.sum, single.sum, 'sum')
      t.equal(merged.min, single.min, 'min')
      t.equal(merged.max, single.max, 'max')
      t.strictSame(sortedBins(merged), sortedBins(single), 'identical bins to a single Dist')
      const stats = statsOf(merged, merged.bins)
      t.strictSame(stats, statsOf(single, single.bins), 'identical stats to a single Dist')
      assertAccurate(t, stats, samples, `merged ${label}`)

      // merging in another order, into a non-empty Dist, gives the same
      const reversed = distOf([])
      for (const p of [...parts].reverse()) reversed.merge(p)
      t.strictSame(sortedBins(reversed), sortedBins(single), 'order does not matter')
      t.equal(reversed.min, single.min)
      t.equal(reversed.max, single.max)
    })
  }

  t.test('merging an empty Dist changes nothing; merging into an empty one copies', async (t) => {
    const a = distOf([1, 2, 3])
    a.merge(new Dist())
    t.equal(a.n, 3)
    t.equal(a.sum, 6000)
    t.equal(a.min, 1000)
    t.equal(a.max, 3000)
    const b = new Dist()
    b.merge(a)
    t.strictSame(statsOf(b, b.bins), statsOf(a, a.bins))
    t.strictSame(sortedBins(b), sortedBins(a))
  })
})

t.test('Dist.add', async (t) => {
  const d = distOf([1.2345678, 0.0004, 2])
  t.equal(d.n, 3)
  t.equal(d.sum, 1235 + 0 + 2000, 'values are recorded in integer microseconds')
  t.equal(d.min, 0)
  t.equal(d.max, 2000)
  t.equal(UNIT_SCALE, 1000)
})

t.test('statsOf with zero values', async (t) => {
  t.test('only zeros', async (t) => {
    const d = distOf([0, 0, 0, 0])
    t.strictSame(statsOf(d, d.bins), { count: 4, avg: 0, min: 0, max: 0, p50: 0, p90: 0, p95: 0, p99: 0 })
    t.strictSame([...d.bins], [[ZERO_BIN, 4]], 'zeros share the zero bin')
  })
  t.test('zeros mixed with larger values', async (t) => {
    const values = [...Array<number>(60).fill(0), ...Array<number>(40).fill(100)]
    const d = distOf(values)
    const s = statsOf(d, d.bins)
    t.equal(s.count, 100)
    t.equal(s.min, 0)
    t.equal(s.max, 100)
    t.equal(s.avg, 40)
    t.equal(s.p50, 0, 'rank 50 is a zero')
    for (const p of [s.p90, s.p95, s.p99]) t.ok(p !== null && p <= 100 && p >= 98, `${p}: rank ≥ 90 is 100 (within 2 %, at most the max)`)
  })
  t.test('one zero among many', async (t) => {
    const d = distOf([0, 5, 6, 7, 8])
    const s = statsOf(d, d.bins)
    t.equal(s.min, 0)
    t.ok(s.p50 !== null && Math.abs(s.p50 - 6) / 6 <= 0.02, `p50 ${s.p50} ≈ 6`)
  })
})

t.test('statsOf with a single sample', async (t) => {
  for (const v of [0, 0.001, 1, 123.456, 3_600_000]) {
    const d = distOf([v])
    t.strictSame(statsOf(d, d.bins), { count: 1, avg: v, min: v, max: v, p50: v, p90: v, p95: v, p99: v }, `every stat is ${v}`)
  }
})

t.test('emptyStats', async (t) => {
  t.strictSame(emptyStats(), { count: 0, avg: null, min: null, max: null, p50: null, p90: null, p95: null, p99: null })
  const d = new Dist()
  t.strictSame(statsOf(d, d.bins), emptyStats(), 'an empty Dist')
  t.strictSame(statsOf({ n: 0, sum: 0, min: 0, max: 0 }, new Map()), emptyStats(), 'a summary with count 0')
  t.not(emptyStats(), emptyStats(), 'a fresh object each time')
})

t.test('statOf', async (t) => {
  const samples = lognormalSamples(3).slice(0, 2000)
  const d = distOf(samples)
  const all = statsOf(d, d.bins)
  const e = exact(samples)
  for (const name of ['avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99'] as const) {
    t.equal(statOf(d, d.bins, name), all[name], `${name} is the same as in statsOf`)
    t.equal(statOf(new Dist(), new Map(), name), null, `${name} of nothing is null`)
  }
  t.equal(statOf(d, d.bins, 'min'), e.min)
  t.equal(statOf(d, d.bins, 'max'), e.max)
  t.equal(statOf(d, d.bins, 'avg'), e.avg)
  for (const p of PERCENTILES) {
    const got = statOf(d, d.bins, `p${p}`)
    const want = nearestRank(e.sorted, p)
    t.ok(got !== null && Math.abs(got - want) / want <= 0.02, `p${p} ${got} within 2 % of ${want.toFixed(3)}`)
  }
})

t.test('percentile', async (t) => {
  t.test('is clamped to [min, max]', async (t) => {
    // every sample the same: whatever the bin's representative value, the answer is the sample
    for (const v of [1, 7.777, 99.999, 1000.5, 12345.678]) {
      const d = distOf(Array<number>(10).fill(v))
      const s = statsOf(d, d.bins)
      t.strictSame([s.p50, s.p90, s.p95, s.p99], [v, v, v, v], `10 × ${v}`)
    }
    // two close values sharing a bin: every percentile stays inside [min, max]
    const d = distOf([...Array<number>(50).fill(1000.001), ...Array<number>(50).fill(1000.009)])
    t.equal(binOf(d.min), binOf(d.max), 'both values are in one bin')
    const s = statsOf(d, d.bins)
    for (const p of [s.p50, s.p90, s.p95, s.p99]) {
      t.ok(p !== null && p >= 1000.001 && p <= 1000.009, `${p} within [min, max]`)
    }
  })

  t.test('rank 1 is the exact min, rank n the exact max', async (t) => {
    const d = distOf([10.123, 20, 30, 40.456])
    const sorted = sortBins(d.bins)
    t.equal(percentile(sorted, d, 1), 10.123, 'p1 of 4 samples is rank 1')
    t.equal(percentile(sorted, d, 25), 10.123, 'p25 of 4 samples is rank 1')
    t.equal(percentile(sorted, d, 100), 40.456, 'p100 is the max')
    t.equal(percentile(sorted, d, 76), 40.456, 'p76 of 4 samples is rank 4')
    const p50 = percentile(sorted, d, 50)
    t.ok(Math.abs(p50 - 20) / 20 <= 0.02, `p50 ${p50} is rank 2 (20)`)
    const p75 = percentile(sorted, d, 75)
    t.ok(Math.abs(p75 - 30) / 30 <= 0.02, `p75 ${p75} is rank 3 (30)`)

    // A min just above a bin's lower edge and a max at a bin's upper edge: the bins' representative
    // values are off by nearly α there, yet rank 1 and rank n must be exact.
    const lowEdge = (Math.floor(GAMMA ** 250) + 1) / 1000 // just above γ^250 units
    const highEdge = Math.floor(GAMMA ** 450) / 1000 // at most γ^450 units (~27 s), the top of its bin
    const e = distOf([lowEdge, 5000, 6000, highEdge])
    const es = sortBins(e.bins)
    t.equal(percentile(es, e, 25), lowEdge, `rank 1 is the exact min ${lowEdge}`)
    t.equal(percentile(es, e, 100), highEdge, `rank n is the exact max ${highEdge}`)
    const one = distOf([lowEdge, highEdge])
    const ones = statsOf(one, one.bins)
    t.equal(ones.p50, lowEdge, 'p50 of 2 samples is rank 1')
    t.equal(ones.p90, highEdge, 'p90 of 2 samples is rank 2')
  })
})

t.test('sortBins', async (t) => {
  const bins = new Map<number | typeof ZERO_BIN, number>([[300, 1], [5, 2], [ZERO_BIN, 3], [0, 4], [120, 5]])
  t.strictSame(sortBins(bins).map(([k]) => k), [ZERO_BIN, 0, 5, 120, 300], 'the zero bin first, then by index')
})

t.test('binOf and binValue', async (t) => {
  t.equal(GAMMA, (1 + ALPHA) / (1 - ALPHA))
  t.ok(ALPHA < 0.02, 'α is below the 2 % promised by the API')
  t.equal(binOf(0), ZERO_BIN, 'zero is in the zero bin')
  t.equal(binOf(0.4), ZERO_BIN, 'below one unit is in the zero bin')
  t.equal(binValue(ZERO_BIN), 0)

  // 0.001 ms .. 3 600 000 ms are 1 .. 3.6e9 units. Every integer up to 100 000, then a geometric sweep.
  let worst = 0
  let worstAt = 0
  let prevBin = -Infinity
  let monotone = true
  const check = (units: number): void => {
    const bin = binOf(units)
    if (bin === ZERO_BIN) {
      worst = Infinity
      worstAt = units
      return
    }
    if (bin < prevBin) monotone = false
    prevBin = bin
    const err = Math.abs(binValue(bin) - units) / units
    if (err > worst) {
      worst = err
      worstAt = units
    }
  }
  for (let u = 1; u <= 100_000; u++) check(u)
  for (let u = 100_000; u <= 3_600_000_000; u *= 1.0007) check(Math.round(u))
  check(3_600_000_000)
  t.ok(worst <= ALPHA + 1e-12, `relative error ≤ α over 1..3.6e9 units (worst ${worst} at ${worstAt})`)
  t.ok(worst > ALPHA * 0.9, 'the bound is nearly reached, so the check is meaningful')
  t.ok(monotone, 'bin indices never decrease as values grow')

  // every value in a bin gets the same representative value, and bins are contiguous ranges
  const a = binOf(1000)
  t.ok(typeof a === 'number' && binOf(Math.floor(GAMMA ** a)) === a && binOf(Math.ceil(GAMMA ** a) + 1) === a + 1,
    'bin k holds values up to γ^k, the next ones are in bin k+1')
})

t.test('percentile of values below 0.3 (under 300 recorded units: tokens/s of slow generations)', async (t) => {
  // Slow generations give tokens/s far below 1 (1 token in 30 s = 0.033 tok/s), recorded in thousandths.
  const samples = [0.001, 0.033, 0.033, 0.033, 1]
  const d = distOf(samples)
  const s = statsOf(d, d.bins)
  const want = nearestRank([...samples].sort((a, b) => a - b), 50)
  t.ok(s.p50 !== null && Math.abs(s.p50 - want) / want <= 0.02, `p50 ${s.p50} within 2 % of ${want}`)
})

t.test('percentile when the bins hold fewer samples than the count (a bucket expired between reads)', async (t) => {
  const bins = new Map<number | 'z', number>([[binOf(100_000) as number, 1]])
  const s = statsOf({ n: 4, sum: 400_000, min: 100_000, max: 250_000 }, bins)
  t.equal(s.p90, 250, 'falls back to the exact max')
})

t.test('percentileInOrder: the same as percentile over bins kept in order, best effort when bins hold fewer samples than counted', async (t) => {
  const d = new Dist()
  for (const v of [0, 10.123, 20.2, 30.3, 40.456, 400]) d.add(v)
  const sorted = sortBins(d.bins)
  const order = sorted.map(([bin]) => bin === 'z' ? -Infinity : bin)
  for (const p of [1, 25, 50, 90, 99]) t.equal(percentileInOrder(order, d.bins, d, p), percentile(sorted, d, p), `p${p}`)
  const short = { ...d, n: d.n + 10 }
  t.equal(percentileInOrder(order, d.bins, short, 90), percentile(sorted, short, 90), 'fewer samples in the bins than the count: the max')
})
