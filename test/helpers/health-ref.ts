/**
 * Reference computations for health states, baselines, comparisons and routing hints, written from
 * docs/health.md over raw events only. Nothing here imports from src/, so an expectation built here
 * is independent of the code it checks.
 */

export const MINUTE = 60_000
export const HOUR = 3_600_000
export const DAY = 24 * HOUR

export interface RawEvent {
  model: string
  gateway?: string
  provider?: string
  success: boolean
  error_type?: 'timeout' | 'rate_limit' | 'network' | 'other'
  ttft_ms?: number
  total_time_ms?: number
  output_tokens?: number
  timestamp: number
}

export type State = 'healthy' | 'degraded' | 'down' | 'unknown'

export interface Thresholds {
  minSamples: number
  consecutiveMinutes: number
  degradedUptime: number
  downUptime: number
  ttftFactor: number
  baselineMinSamples: number
  anomalyTtftFactor: number
  anomalyErrorRatePp: number
}

export const DEFAULTS: Thresholds = { minSamples: 20, consecutiveMinutes: 3, degradedUptime: 95, downUptime: 50, ttftFactor: 2, baselineMinSamples: 100, anomalyTtftFactor: 1.5, anomalyErrorRatePp: 5 }

const floor = (ms: number, size: number): number => Math.floor(ms / size) * size

/** 100 × k / n, rounded half up to 2 decimals in integers; null when n = 0. */
export function pct2 (k: number, n: number): number | null {
  if (n <= 0) return null
  return Math.floor((20_000 * k + n) / (2 * n)) / 100
}

/** Nearest rank: the sample of rank ceil(p/100 × n), ascending. */
export function rankValue (values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(1, Math.ceil((p * sorted.length) / 100)) - 1]!
}

/** Wilson lower bound (z = 1.96) × 100, 2 decimals. */
export function wilsonPct (k: number, n: number): number | null {
  if (n === 0) return null
  const z = 1.96
  const p = k / n
  const lower = (2 * n * p + z * z - z * Math.sqrt(z * z + 4 * n * p * (1 - p))) / (2 * (n + z * z))
  return Math.round(Math.max(0, lower) * 10_000) / 100
}

export interface Figures { requests: number, successes: number, rateLimited: number, ttft: number[] }

export function figures (events: readonly RawEvent[]): Figures {
  const out: Figures = { requests: 0, successes: 0, rateLimited: 0, ttft: [] }
  for (const e of events) {
    out.requests++
    if (e.success) out.successes++
    else if (e.error_type === 'rate_limit') out.rateLimited++
    if (e.ttft_ms !== undefined) out.ttft.push(e.ttft_ms)
  }
  return out
}

export const uptime = (f: Figures): number | null => pct2(f.successes, f.requests - f.rateLimited)

/** Events in [from, to). */
export function between (events: readonly RawEvent[], from: number, to: number): RawEvent[] {
  return events.filter((e) => e.timestamp >= from && e.timestamp < to)
}

/** The TTFT baseline p90 for minutes of the hour starting at `hourStart`: the same hour on the 7 days before. */
export function baselineP90 (events: readonly RawEvent[], hourStart: number, th: Thresholds): number | null {
  const samples: number[] = []
  for (let k = 1; k <= 7; k++) samples.push(...figures(between(events, hourStart - k * DAY, hourStart - k * DAY + HOUR)).ttft)
  return samples.length >= th.baselineMinSamples ? rankValue(samples, 90) : null
}

/** The condition of the 5 minutes ending with the minute starting at `minute`. */
export function conditionAt (events: readonly RawEvent[], minute: number, th: Thresholds): State {
  const f = figures(between(events, minute - 4 * MINUTE, minute + MINUTE))
  const eligible = f.requests - f.rateLimited
  if (eligible < th.minSamples) return 'unknown'
  const up = uptime(f)!
  if (up < th.downUptime) return 'down'
  if (up < th.degradedUptime) return 'degraded'
  const base = baselineP90(events, floor(minute, HOUR), th)
  if (f.ttft.length >= th.minSamples && base !== null && rankValue(f.ttft, 90)! > th.ttftFactor * base) return 'degraded'
  return 'healthy'
}

/**
 * The state after the minute starting at `minute`: the condition of the latest run of N equal
 * conditions among the 20 minutes ending with it; with none, degraded if any of the 20 was degraded
 * or down, else unknown.
 */
export function stateAt (events: readonly RawEvent[], minute: number, th: Thresholds): State {
  const conds: State[] = []
  for (let i = 19; i >= 0; i--) conds.push(conditionAt(events, minute - i * MINUTE, th))
  const n = th.consecutiveMinutes
  for (let end = conds.length - 1; end >= n - 1; end--) {
    const window = conds.slice(end - n + 1, end + 1)
    if (window.every((c) => c === window[0])) return window[0]!
  }
  return conds.some((c) => c === 'degraded' || c === 'down') ? 'degraded' : 'unknown'
}

/** The state at time `now`: after the last complete minute. */
export function stateNow (events: readonly RawEvent[], now: number, th: Thresholds): State {
  return stateAt(events, floor(now, MINUTE) - MINUTE, th)
}

export interface RefTransition { at: number, from: State, to: State }

/** State changes dated at the end of the minute that made them, for the minutes in [fromMinute, toMinute]. */
export function transitions (events: readonly RawEvent[], fromMinute: number, toMinute: number, th: Thresholds): RefTransition[] {
  const out: RefTransition[] = []
  let prev = stateAt(events, fromMinute - MINUTE, th)
  for (let m = fromMinute; m <= toMinute; m += MINUTE) {
    const s = stateAt(events, m, th)
    if (s !== prev) out.push({ at: m + MINUTE, from: prev, to: s })
    prev = s
  }
  return out
}

export interface RefPair {
  id: string
  requests: number
  successes: number
  rate_limited: number
  uptime: number | null
  uptime_lower_bound: number | null
  ttft_p50_ms: number | null
  ttft_p90_ms: number | null
  status: State
}

/** The model's figures through each gateway (or by each provider) over events already in the window. */
export function refPairs (all: readonly RawEvent[], windowed: readonly RawEvent[], model: string, by: 'gateway' | 'provider', now: number, th: Thresholds): RefPair[] {
  const keyOf = (e: RawEvent): string => by === 'gateway' ? (e.gateway ?? 'default') : (e.provider ?? model.split('/')[0]!)
  const ids = new Set(windowed.filter((e) => e.model === model).map(keyOf))
  return [...ids].map((id) => {
    const mine = windowed.filter((e) => e.model === model && keyOf(e) === id)
    const f = figures(mine)
    return {
      id,
      requests: f.requests,
      successes: f.successes,
      rate_limited: f.rateLimited,
      uptime: uptime(f),
      uptime_lower_bound: wilsonPct(f.successes, f.requests - f.rateLimited),
      ttft_p50_ms: rankValue(f.ttft, 50),
      ttft_p90_ms: rankValue(f.ttft, 90),
      status: stateNow(all.filter((e) => e.model === model && keyOf(e) === id), now, th)
    }
  }).sort((a, b) => b.requests - a.requests || (a.id < b.id ? -1 : 1))
}

/** The routing rule: not down first, higher uptime lower bound, lower TTFT p90, more requests, id. */
export function refRoute (pairs: readonly RefPair[]): string[] {
  const nullsLast = (a: number | null, b: number | null, sign: number): number => a === b ? 0 : a === null ? 1 : b === null ? -1 : sign * (a - b)
  return [...pairs].sort((a, b) =>
    Number(a.status === 'down') - Number(b.status === 'down') ||
    nullsLast(a.uptime_lower_bound, b.uptime_lower_bound, -1) ||
    nullsLast(a.ttft_p90_ms, b.ttft_p90_ms, 1) ||
    b.requests - a.requests ||
    (a.id < b.id ? -1 : 1)).map((p) => p.id)
}
