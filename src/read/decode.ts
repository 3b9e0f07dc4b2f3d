import { CHAT_ERROR_TYPES, type ChatErrorType } from '../metrics/events.js'
import { ZERO_BIN, statsOf, statOf, type DistSummary, type StatName, type Stats } from '../metrics/histogram.js'
import type { Tally } from '../metrics/status.js'
import { fieldOf, splitLatest } from '../store/merge.js'
import type { Fields } from '../store/types.js'

export function num (f: Fields, field: string): number {
  const v = fieldOf(f, field)
  return v === undefined ? 0 : Number(v)
}

export function summaryOf (stats: Fields, name: string): DistSummary {
  return { n: num(stats, `${name}:n`), sum: num(stats, `${name}:sum`), min: num(stats, `${name}:min`), max: num(stats, `${name}:max`) }
}

export function binsOf (hist: Fields): Map<number | typeof ZERO_BIN, number> {
  const bins = new Map<number | typeof ZERO_BIN, number>()
  // for…in rather than Object.entries: no array per bin (a cold leaderboard decodes thousands of these).
  for (const k in hist) bins.set(k === ZERO_BIN ? ZERO_BIN : Number(k), Number(hist[k]))
  return bins
}

/** Stats of distribution `name` from a merged stats hash and its merged histogram. */
export function decodeStats (stats: Fields, name: string, hist: Fields): Stats {
  return statsOf(summaryOf(stats, name), binsOf(hist))
}

export function decodeStat (stats: Fields, name: string, hist: Fields, stat: StatName): number | null {
  return statOf(summaryOf(stats, name), binsOf(hist), stat)
}

/** Failures by error type from a merged stats hash (its `err:<type>` counters). */
export function errorsOf (stats: Fields): Record<ChatErrorType, number> {
  return Object.fromEntries(CHAT_ERROR_TYPES.map((t) => [t, num(stats, `err:${t}`)])) as Record<ChatErrorType, number>
}

/** The value of a latest-value (`last:`) field of a merged stats hash, without its time; null when never written. */
export function latestOf (stats: Fields, field: string): string | null {
  const raw = fieldOf(stats, field)
  return raw === undefined ? null : splitLatest(raw).value
}

/**
 * Tallies of shared (frozen) results, by the results: sealed figures are merged once per version of
 * their blocks (src/store/fetch.ts), and decoded once with them. Such a tally is shared: read only.
 */
const sharedTallies = new WeakMap<Fields, WeakMap<Fields, Tally>>()

/** The figures states and baselines use, from a merged stats hash and its merged TTFT histogram. */
export function tallyOf (stats: Fields, ttftHist: Fields): Tally {
  if (!Object.isFrozen(stats) || !Object.isFrozen(ttftHist)) return decodeTally(stats, ttftHist)
  let byHist = sharedTallies.get(stats)
  if (byHist === undefined) sharedTallies.set(stats, byHist = new WeakMap())
  let t = byHist.get(ttftHist)
  if (t === undefined) byHist.set(ttftHist, t = decodeTally(stats, ttftHist))
  return t
}

function decodeTally (stats: Fields, ttftHist: Fields): Tally {
  return {
    requests: num(stats, 'n'),
    successes: num(stats, 'ok'),
    rateLimited: num(stats, 'err:rate_limit'),
    ttft: summaryOf(stats, 'ttft'),
    ttftBins: binsOf(ttftHist)
  }
}

/**
 * Token totals from a merged stats hash: the `tokens:in` / `tokens:out` sums, 0 when no request
 * carried them. The store hands sums back as decimal strings; a JSON number is exact up to 2^53 and
 * the nearest double beyond (docs/api.md "Token totals").
 */
export function tokensOf (stats: Fields): { input_tokens: number, output_tokens: number } {
  return { input_tokens: num(stats, 'tokens:in'), output_tokens: num(stats, 'tokens:out') }
}
