const Z = 1.96

/** The orders of a ranking by health score (the leaderboard): best first, or worst first. */
export const ORDERS = ['desc', 'asc'] as const
export type Order = typeof ORDERS[number]

export function round (value: number, decimals: number): number {
  const f = 10 ** decimals
  return Math.round(value * f) / f
}

/** 100 × successes / requests, 2 decimals; null with no requests. */
export function successRate (successes: number, requests: number): number | null {
  // From the integers: 10000·s/r is exact at the halves (0.575 % → 57.5), so ties round up.
  return requests > 0 ? Math.round((10_000 * successes) / requests) / 100 : null
}

/** 100 × the Wilson score lower bound (z = 1.96) of successes / requests, 2 decimals; null with no requests. */
export function healthScore (successes: number, requests: number): number | null {
  if (requests <= 0) return null
  const p = successes / requests
  const z2 = Z * Z
  const centre = p + z2 / (2 * requests)
  const margin = Z * Math.sqrt((p * (1 - p)) / requests + z2 / (4 * requests * requests))
  const lower = (centre - margin) / (1 + z2 / requests)
  return round(100 * Math.max(0, lower), 2)
}
