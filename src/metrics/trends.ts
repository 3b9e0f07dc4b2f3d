/** The metrics a trend shows, by name (GET /api/metrics/trends `metric`). */

/** Distributions: each read from the histogram family named here, with a `stat`. */
export const DIST_METRICS = { ttft: 'ttft', total_time: 'total', output_tokens_per_second: 'tps' } as const
export const RATE_METRICS = ['success_rate', 'requests', 'errors'] as const
/** Sums per bucket, read from the stats hash like the rate metrics. */
export const SUM_METRICS = ['tokens'] as const
/** The metrics a `stat` does not apply to. */
export const STATLESS_METRICS: readonly string[] = [...RATE_METRICS, ...SUM_METRICS]
/** Every metric a trend can show. */
export const TREND_METRICS = [...Object.keys(DIST_METRICS) as Array<keyof typeof DIST_METRICS>, ...RATE_METRICS, ...SUM_METRICS]
export type TrendMetric = typeof TREND_METRICS[number]
