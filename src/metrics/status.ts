/**
 * Health states with hysteresis (docs/health.md), computed from minute buckets only, so every
 * instance reading the same buckets at the same minute answers the same state without talking to
 * the others.
 *
 * Each complete minute m gets a *condition* from the 5 minute buckets ending with m; the *state* is
 * the condition of the latest run of N consecutive minutes with one condition, among the last 20
 * complete minutes. That is exactly "a state changes only after the new condition held N consecutive
 * minutes": once a run of N completes, the state is its condition until another run of N completes.
 * When no run of N is found in 20 minutes (conditions kept changing), the state is `degraded` if any
 * of those minutes was degraded or down, else `unknown`.
 */
import { successRate, healthScore } from './score.js'
import { percentile, percentileInOrder, sortBins, ZERO_BIN, type DistSummary } from './histogram.js'

export const STATUSES = ['healthy', 'degraded', 'down', 'unknown'] as const
export type Status = typeof STATUSES[number]

/** Minutes each condition looks at (API: "from the last 5 minutes"). */
export const WINDOW_MINUTES = 5
/** Complete minutes the state is replayed over; at most 2 h − WINDOW_MINUTES (minute retention). */
export const REPLAY_MINUTES = 20
/** Days of the same hour of day that make a baseline. */
export const BASELINE_DAYS = 7

export interface HealthThresholds {
  /** Requests (rate limits apart) a 5-minute window needs for a condition other than `unknown`. */
  minSamples: number
  /** N: minutes a new condition must hold, consecutively, before the state follows it. */
  consecutiveMinutes: number
  /** Uptime (%) below which a window is degraded. */
  degradedUptime: number
  /** Uptime (%) below which a window is down. */
  downUptime: number
  /** A window whose TTFT p90 exceeds this many times the baseline p90 is degraded. */
  ttftFactor: number
  /** TTFT samples (or requests) a baseline needs to be used. */
  baselineMinSamples: number
  /** A window whose TTFT p50 or p90 exceeds this many times the reference is an anomaly. */
  anomalyTtftFactor: number
  /** A window whose error rate is, at 95 % confidence, at least this many points above the reference is an anomaly. */
  anomalyErrorRatePp: number
}

/** The defaults (docs/health.md says why); METRICS_STATUS_* and friends override them. */
export const DEFAULT_THRESHOLDS: HealthThresholds = {
  minSamples: 20,
  consecutiveMinutes: 3,
  degradedUptime: 95,
  downUptime: 50,
  ttftFactor: 2,
  baselineMinSamples: 100,
  anomalyTtftFactor: 1.5,
  anomalyErrorRatePp: 5
}

type Bin = number | typeof ZERO_BIN

/** The figures of one bucket, or of several added together, that states and baselines use. */
export interface Tally {
  requests: number
  successes: number
  rateLimited: number
  ttft: DistSummary
  ttftBins: Map<Bin, number>
}

export function emptyTally (): Tally {
  return { requests: 0, successes: 0, rateLimited: 0, ttft: { n: 0, sum: 0, min: 0, max: 0 }, ttftBins: new Map() }
}

/** Requests that count towards uptime: rate limits are a capacity signal, not an outage. */
export function eligible (t: Tally): number {
  return t.requests - t.rateLimited
}

/** 100 × successes / (requests − rate limits), 2 decimals; null when nothing is left. */
export function uptimeOf (t: Tally): number | null {
  return successRate(t.successes, eligible(t))
}

/** 100 × the Wilson lower bound (z = 1.96) of the uptime; null when nothing is left. */
export function uptimeLowerBound (t: Tally): number | null {
  return healthScore(t.successes, eligible(t))
}

/** TTFT percentile p (ms) of the tally; null without samples. */
export function ttftPercentile (t: Tally, p: number): number | null {
  return t.ttft.n > 0 ? percentile(sortBins(t.ttftBins), t.ttft, p) : null
}

/** The baseline TTFT p90 of a tally of past hours, when it has enough samples. */
export function baselineP90 (t: Tally, th: HealthThresholds): number | null {
  return t.ttft.n >= th.baselineMinSamples ? ttftPercentile(t, 90) : null
}

export interface Condition { status: Status, reason: string }

const pct = (v: number): string => `${v} %`

/**
 * The condition of one 5-minute window: `unknown` below the minimum sample count, `down` or
 * `degraded` by uptime, `degraded` when the TTFT p90 is over `ttftFactor` × the baseline p90 (when
 * both have enough samples), else `healthy`.
 */
export function condition (w: Tally, baselineP90: number | null, th: HealthThresholds, p90Of = (t: Tally): number | null => ttftPercentile(t, 90)): Condition {
  const n = eligible(w)
  if (n < th.minSamples) {
    return { status: 'unknown', reason: `${n} requests (rate limits apart) in ${WINDOW_MINUTES} minutes, fewer than ${th.minSamples}` }
  }
  const up = uptimeOf(w)!
  if (up < th.downUptime) return { status: 'down', reason: `uptime ${pct(up)} < ${pct(th.downUptime)}` }
  if (up < th.degradedUptime) return { status: 'degraded', reason: `uptime ${pct(up)} < ${pct(th.degradedUptime)}` }
  const p90 = w.ttft.n >= th.minSamples ? p90Of(w) : null
  if (p90 !== null && baselineP90 !== null && p90 > th.ttftFactor * baselineP90) {
    return { status: 'degraded', reason: `TTFT p90 ${p90} ms > ${th.ttftFactor} × baseline ${baselineP90} ms` }
  }
  return { status: 'healthy', reason: `uptime ${pct(up)} ≥ ${pct(th.degradedUptime)}${p90 !== null ? `, TTFT p90 ${p90} ms` : ''}` }
}

/**
 * Conditions of consecutive minutes from per-minute tallies (oldest first): the condition of
 * minute i looks at tallies i − 4 … i, so the first WINDOW_MINUTES − 1 tallies only feed later
 * windows. `baselineP90[i]` is the baseline for minute i's hour of day (null: none).
 */
export function conditions (minutes: readonly Tally[], baselineP90: ReadonlyArray<number | null>, th: HealthThresholds): Condition[] {
  const out: Condition[] = []
  // One window tally, slid a minute at a time: what enters is added, what leaves subtracted (counts
  // and bins are integers, so exactly); the TTFT extremes are taken again over the window's minutes.
  const w = emptyTally()
  // The window's bins in ascending order (the zero bin as -Infinity), kept as bins come and go, so
  // that its TTFT p90 needs no sort.
  const order: number[] = []
  // Asked only of a window with TTFT samples (condition checks the count first).
  const p90Of = (t: Tally): number => percentileInOrder(order, t.ttftBins, t.ttft, 90)
  for (let i = 0; i < minutes.length; i++) {
    slide(w, minutes[i]!, 1, order)
    if (i >= WINDOW_MINUTES) slide(w, minutes[i - WINDOW_MINUTES]!, -1, order)
    if (i < WINDOW_MINUTES - 1) continue
    let min = Infinity
    let max = -Infinity
    for (let j = i - WINDOW_MINUTES + 1; j <= i; j++) {
      const t = minutes[j]!.ttft
      if (t.n > 0) {
        min = Math.min(min, t.min)
        max = Math.max(max, t.max)
      }
    }
    w.ttft.min = w.ttft.n > 0 ? min : 0
    w.ttft.max = w.ttft.n > 0 ? max : 0
    out.push(condition(w, baselineP90[i] ?? null, th, p90Of))
  }
  return out
}

/**
 * Adds (`sign` 1) or takes back (−1) a minute's tally in a window's: counts and bins, and the TTFT
 * count and sum of a minute that has TTFT samples (its extremes are the caller's). `order` keeps the
 * window's bins in ascending order.
 */
function slide (w: Tally, t: Tally, sign: 1 | -1, order: number[]): void {
  w.requests += sign * t.requests
  w.successes += sign * t.successes
  w.rateLimited += sign * t.rateLimited
  if (t.ttft.n === 0) return
  w.ttft.n += sign * t.ttft.n
  w.ttft.sum += sign * t.ttft.sum
  for (const [bin, c] of t.ttftBins) {
    const had = w.ttftBins.get(bin) ?? 0
    const v = had + sign * c
    if (v === had) continue
    if (v === 0) w.ttftBins.delete(bin)
    else w.ttftBins.set(bin, v)
    const k = bin === ZERO_BIN ? -Infinity : bin
    if (had === 0) order.splice(lowerBound(order, k), 0, k)
    else if (v === 0) order.splice(lowerBound(order, k), 1)
  }
}

/** The first index of `xs` (ascending) whose value is not below `x`. */
function lowerBound (xs: readonly number[], x: number): number {
  let lo = 0
  let hi = xs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (xs[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

export interface StateResult { status: Status, reason: string }

/** The state after the last of `conds` (oldest first), from the last `replay` of them. */
export function stateOf (conds: readonly Condition[], th: HealthThresholds, replay = REPLAY_MINUTES): StateResult {
  const n = th.consecutiveMinutes
  const from = Math.max(0, conds.length - replay)
  const latest = conds[conds.length - 1]
  for (let end = conds.length - 1; end - n + 1 >= from; end--) {
    const status = conds[end]!.status
    let run = true
    for (let j = end - n + 1; j < end; j++) if (conds[j]!.status !== status) run = false
    if (!run) continue
    if (latest!.status === status) return { status, reason: latest!.reason }
    let held = 0
    for (let j = conds.length - 1; j > end && conds[j]!.status === latest!.status; j--) held++
    return { status, reason: `${status} held: ${latest!.status} for ${held} of the ${n} consecutive minutes needed (${latest!.reason})` }
  }
  const recent = conds.slice(from)
  const troubled = recent.some((c) => c.status === 'degraded' || c.status === 'down')
  return { status: troubled ? 'degraded' : 'unknown', reason: `unstable: no condition held ${n} consecutive minutes in the last ${recent.length}` }
}

/**
 * The state after each of the last `count` conditions (oldest first), each from the `replay`
 * conditions ending with it: `conds` must hold `replay + count − 1` of them for every state to see a
 * full replay.
 */
export function stateSeries (conds: readonly Condition[], th: HealthThresholds, count: number, replay = REPLAY_MINUTES): StateResult[] {
  const out: StateResult[] = []
  for (let i = Math.max(0, conds.length - count); i < conds.length; i++) out.push(stateOf(conds.slice(0, i + 1), th, replay))
  return out
}

export interface Transition { at: number, from: Status, to: Status, reason: string }

/**
 * Changes between consecutive states. `states[i]` is the state after the minute starting at
 * `firstMinute + i` minutes; a change is dated at the end of that minute, when it became known.
 */
export function transitionsOf (states: readonly StateResult[], firstMinute: number): Transition[] {
  const out: Transition[] = []
  for (let i = 1; i < states.length; i++) {
    const prev = states[i - 1]!
    const cur = states[i]!
    if (cur.status !== prev.status) out.push({ at: firstMinute + (i + 1) * 60_000, from: prev.status, to: cur.status, reason: cur.reason })
  }
  return out
}
