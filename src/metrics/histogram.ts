/**
 * A mergeable log-bucket histogram (DDSketch-style). A value v > 0 falls in bin
 * k = ceil(log_γ(v)) with γ = (1 + α) / (1 − α), and bin k is reported as 2γ^k / (γ + 1), which is
 * within α of every value in the bin. Bins are plain counters, so histograms built anywhere merge by
 * adding counts: in one process, in Redis (HINCRBY), across buckets and instances.
 *
 * Values are recorded in integer units (microseconds for times, thousandths for rates) so that sums
 * are exact; values under one unit share the zero bin and are reported as 0.
 */
export const ALPHA = 0.019
export const GAMMA = (1 + ALPHA) / (1 - ALPHA)
const LOG_GAMMA = Math.log(GAMMA)
/** Recorded units per reported unit: ms → µs, tokens/s → millitokens/s. */
export const UNIT_SCALE = 1000
/** Field name of the bin holding values below one unit. */
export const ZERO_BIN = 'z'

export function binOf (units: number): number | typeof ZERO_BIN {
  if (units < 1) return ZERO_BIN
  return Math.ceil(Math.log(units) / LOG_GAMMA)
}

export function binValue (bin: number | typeof ZERO_BIN): number {
  if (bin === ZERO_BIN) return 0
  return (2 * GAMMA ** bin) / (GAMMA + 1)
}

/** A distribution being built in process: exact count, sum, min, max (in units) and bin counts. */
export class Dist {
  n = 0
  sum = 0
  min = Infinity
  max = -Infinity
  readonly bins = new Map<number | typeof ZERO_BIN, number>()

  /** Record one value given in reported units (ms, tokens/s). */
  add (value: number): void {
    const units = Math.round(value * UNIT_SCALE)
    this.n++
    this.sum += units
    if (units < this.min) this.min = units
    if (units > this.max) this.max = units
    const bin = binOf(units)
    this.bins.set(bin, (this.bins.get(bin) ?? 0) + 1)
  }

  merge (other: Dist): void {
    if (other.n === 0) return
    this.n += other.n
    this.sum += other.sum
    if (other.min < this.min) this.min = other.min
    if (other.max > this.max) this.max = other.max
    for (const [bin, c] of other.bins) this.bins.set(bin, (this.bins.get(bin) ?? 0) + c)
  }
}

/** The statistics of a Stats object (below), by name (a trend asks for one of them). */
export const STAT_NAMES = ['avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99'] as const
export type StatName = typeof STAT_NAMES[number]

/** The answer's Stats object (docs/api.md): count 0 and nulls with no samples. */
export interface Stats {
  count: number
  avg: number | null
  min: number | null
  max: number | null
  p50: number | null
  p90: number | null
  p95: number | null
  p99: number | null
}

export const PERCENTILES = [50, 90, 95, 99] as const

export interface DistSummary { n: number, sum: number, min: number, max: number }

/** Exact recorded values (min, max, sums) are whole units. */
function toReported (units: number): number {
  return Math.round(units) / UNIT_SCALE
}

/** A bin's value keeps 6 significant digits: rounding it to whole units would add to its α error. */
function binReported (units: number): number {
  return Number((units / UNIT_SCALE).toPrecision(6))
}

/**
 * Nearest-rank percentile p (0 < p ≤ 100) from merged bins: the bin holding the sample of rank
 * ceil(p/100 × n), reported within α, clamped to the exact [min, max]. Rank 1 and rank n are the
 * exact min and max.
 */
export function percentile (sorted: Array<[number | typeof ZERO_BIN, number]>, s: DistSummary, p: number): number {
  const rank = Math.max(1, Math.ceil((p * s.n) / 100))
  if (rank === 1) return toReported(s.min)
  if (rank >= s.n) return toReported(s.max)
  let seen = 0
  for (const [bin, c] of sorted) {
    seen += c
    if (seen >= rank) return reportedAt(bin, s)
  }
  // The bins hold fewer samples than the count says (a bucket expired between reads): best effort.
  return toReported(s.max)
}

/**
 * The same percentile from bins kept in order by their caller (`order`: bin indexes ascending, the
 * zero bin as -Infinity) and their counts: no sort (a state's sliding window keeps its bins so).
 */
export function percentileInOrder (order: readonly number[], counts: ReadonlyMap<number | typeof ZERO_BIN, number>, s: DistSummary, p: number): number {
  const rank = Math.max(1, Math.ceil((p * s.n) / 100))
  if (rank === 1) return toReported(s.min)
  if (rank >= s.n) return toReported(s.max)
  let seen = 0
  for (const k of order) {
    const bin = k === -Infinity ? ZERO_BIN : k
    seen += counts.get(bin)!
    if (seen >= rank) return reportedAt(bin, s)
  }
  return toReported(s.max)
}

function reportedAt (bin: number | typeof ZERO_BIN, s: DistSummary): number {
  const v = binValue(bin)
  if (v <= s.min) return toReported(s.min)
  if (v >= s.max) return toReported(s.max)
  return binReported(v)
}

/** Bins in ascending order (the zero bin first), sorted as numbers in a typed array: no comparator. */
export function sortBins (bins: Map<number | typeof ZERO_BIN, number>): Array<[number | typeof ZERO_BIN, number]> {
  const keys = new Float64Array(bins.size)
  let i = 0
  for (const k of bins.keys()) keys[i++] = k === ZERO_BIN ? -Infinity : k
  keys.sort()
  const out = new Array<[number | typeof ZERO_BIN, number]>(keys.length)
  for (let j = 0; j < keys.length; j++) {
    const bin = keys[j] === -Infinity ? ZERO_BIN : keys[j]!
    out[j] = [bin, bins.get(bin)!]
  }
  return out
}

export function emptyStats (): Stats {
  return { count: 0, avg: null, min: null, max: null, p50: null, p90: null, p95: null, p99: null }
}

export function statsOf (s: DistSummary, bins: Map<number | typeof ZERO_BIN, number>): Stats {
  if (s.n <= 0) return emptyStats()
  const sorted = sortBins(bins)
  return {
    count: s.n,
    avg: Math.round(s.sum / s.n) / UNIT_SCALE,
    min: toReported(s.min),
    max: toReported(s.max),
    p50: percentile(sorted, s, 50),
    p90: percentile(sorted, s, 90),
    p95: percentile(sorted, s, 95),
    p99: percentile(sorted, s, 99)
  }
}

/** One statistic by name, as trends ask for it. */
export function statOf (s: DistSummary, bins: Map<number | typeof ZERO_BIN, number>, stat: StatName): number | null {
  if (s.n <= 0) return null
  switch (stat) {
    case 'avg': return Math.round(s.sum / s.n) / UNIT_SCALE
    case 'min': return toReported(s.min)
    case 'max': return toReported(s.max)
    default: return percentile(sortBins(bins), s, Number(stat.slice(1)))
  }
}

/**
 * A model × gateway (provider) pair keeps its three histograms in one hash. Field names stay
 * integers, which Redis stores compactly: bin k of a distribution is `offset + k`, its zero bin
 * `offset + 9999`. Every bin of a value the API accepts is far below 9999 (a 1-hour time is bin 578,
 * 10^13 tokens/s bin 970).
 */
export const PAIR_DISTS = { ttft: 0, total: 10_000, tps: 20_000 } as const
export type PairDist = keyof typeof PAIR_DISTS
export const PAIR_ZERO = 9_999
const PAIR_SPAN = 10_000

export function pairBinField (name: PairDist, bin: number | typeof ZERO_BIN): string {
  return String(PAIR_DISTS[name] + (bin === ZERO_BIN ? PAIR_ZERO : bin))
}

/** The bins of distribution `name` (as field name → count, like a histogram hash) from a pair's hash. */
export function pairBins (fields: Record<string, string>, name: PairDist): Record<string, string> {
  const offset = PAIR_DISTS[name]
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(fields)) {
    const local = Number(k) - offset
    if (local >= 0 && local < PAIR_SPAN) out[local === PAIR_ZERO ? ZERO_BIN : String(local)] = v
  }
  return out
}
