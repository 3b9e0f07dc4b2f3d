/**
 * How the read parameters that would multiply distinct cold computations are normalised. A read is
 * computed for its normalised parameters (cached, and shared by the GET routes and the stream) and
 * answered from that computation: a shorter leaderboard is the first entries of a longer one, fewer
 * hours of trends the last points of more. Only `min_requests` changes an answer: it is rounded up.
 */

/** Leaderboards (and sparklines) are computed for one of these lengths and cut to the `limit` asked. */
export const LIMIT_TIERS = [10, 25, 50, 100] as const

/** Trends by hour are computed over one of these numbers of hours, and cut to the `hours` asked. */
export const TREND_HOUR_TIERS = [6, 24, 72, 168] as const

/** Trends by minute (at most 2 hours) are computed over 2 hours. */
export const TREND_MINUTE_HOURS = 2

/** Status histories and catalogs are computed over one of these numbers of hours (capped by the retention). */
export const HISTORY_HOUR_TIERS = [24, 168, 720, 2160, 8760] as const

/** Catalogs are computed with one of these numbers of changes, and cut to the `limit` asked. */
export const CATALOG_LIMIT_TIERS = [20, 100] as const

/** The first tier at least `n`; `n` itself beyond the last. */
export function tierOf (tiers: readonly number[], n: number): number {
  return tiers.find((t) => t >= n) ?? n
}

/** `n` rounded up to 1, 2 or 5 times a power of ten: 30 → 50, 100 → 100, 101 → 200. */
export function roundUp125 (n: number): number {
  let p = 1
  while (5 * p < n) p *= 10
  return p >= n ? p : 2 * p >= n ? 2 * p : 5 * p
}

/** Hours of a history or catalog: the hours asked within the retention, and the hours computed. */
export function hoursTier (hours: number, retentionHours: number): { effective: number, computed: number } {
  const effective = Math.min(hours, retentionHours)
  return { effective, computed: Math.min(tierOf(HISTORY_HOUR_TIERS, effective), retentionHours) }
}

const views = new WeakMap<object, Map<string, object>>()

/**
 * The view `key` of a computed (cached) answer, made once per answer: the same object each time, so
 * its JSON is made once too (routes/cached-reply.ts) and goes away with the cached answer.
 */
export function viewOf<T extends object, V extends object> (value: T, key: string, make: (value: T) => V): V {
  let byKey = views.get(value)
  if (byKey === undefined) views.set(value, byKey = new Map())
  let view = byKey.get(key) as V | undefined
  if (view === undefined) byKey.set(key, view = make(value))
  return view
}
