/**
 * Baselines and anomalies (docs/health.md): the current window against the same entity's previous
 * period and its trailing 7-day baseline for the same hours of day, for TTFT p50/p90 and the error
 * rate (failures apart from rate limits, over requests apart from rate limits).
 */
import { healthScore, round } from './score.js'
import { eligible, ttftPercentile, type HealthThresholds, type Tally } from './status.js'

export interface Comparison {
  current: number | null
  previous: number | null
  baseline: number | null
  /** 100 × (current − previous) / previous, 2 decimals; null when either is null or previous is 0. */
  change_vs_previous_pct: number | null
  change_vs_baseline_pct: number | null
}

export interface Baselines {
  ttft_p50_ms: Comparison
  ttft_p90_ms: Comparison
  error_rate_pct: Comparison
  anomaly: boolean
  /** Why, when anomaly is true: each finding, '; '-separated. */
  anomaly_reason: string | null
}

export function changePct (current: number | null, reference: number | null): number | null {
  if (current === null || reference === null || reference === 0) return null
  return round((100 * (current - reference)) / reference, 2)
}

/** 100 × failures (rate limits apart) / requests (rate limits apart), 2 decimals; null when none. */
export function errorRateOf (t: Tally): number | null {
  const n = eligible(t)
  return n > 0 ? round((100 * (n - t.successes)) / n, 2) : null
}

function comparison (current: number | null, previous: number | null, baseline: number | null): Comparison {
  return { current, previous, baseline, change_vs_previous_pct: changePct(current, previous), change_vs_baseline_pct: changePct(current, baseline) }
}

interface Reference { name: string, tally: Tally }

/**
 * The reference a metric is judged against: the baseline when it has `baselineMinSamples` samples,
 * else the previous period when it has `minSamples`, else none.
 */
function referenceFor (count: (t: Tally) => number, previous: Tally, baseline: Tally, th: HealthThresholds): Reference | null {
  if (count(baseline) >= th.baselineMinSamples) return { name: 'the 7-day baseline', tally: baseline }
  if (count(previous) >= th.minSamples) return { name: 'the previous period', tally: previous }
  return null
}

/**
 * Compares `current` with `previous` and `baseline`. An anomaly needs `minSamples` in the current
 * window and a reference (above): TTFT p50 or p90 over `anomalyTtftFactor` × the reference's, or an
 * error rate whose 95 % lower bound (Wilson) is `anomalyErrorRatePp` points or more above the
 * reference's rate.
 */
export function compareWindows (current: Tally, previous: Tally, baseline: Tally, th: HealthThresholds): Baselines {
  const reasons: string[] = []
  const p50 = comparison(ttftPercentile(current, 50), ttftPercentile(previous, 50), ttftPercentile(baseline, 50))
  const p90 = comparison(ttftPercentile(current, 90), ttftPercentile(previous, 90), ttftPercentile(baseline, 90))
  const errors = comparison(errorRateOf(current), errorRateOf(previous), errorRateOf(baseline))

  const ttftCount = (t: Tally): number => t.ttft.n
  const ttftRef = referenceFor(ttftCount, previous, baseline, th)
  if (ttftRef !== null && current.ttft.n >= th.minSamples) {
    for (const p of [50, 90]) {
      const cur = ttftPercentile(current, p)!
      const ref = ttftPercentile(ttftRef.tally, p)!
      if (ref > 0 && cur > th.anomalyTtftFactor * ref) reasons.push(`TTFT p${p} ${cur} ms is ${round(cur / ref, 2)} × ${ttftRef.name} (${ref} ms)`)
    }
  }
  const errRef = referenceFor(eligible, previous, baseline, th)
  if (errRef !== null && eligible(current) >= th.minSamples) {
    const n = eligible(current)
    const lower = healthScore(n - current.successes, n)!
    const ref = errorRateOf(errRef.tally)!
    if (lower - ref >= th.anomalyErrorRatePp) {
      reasons.push(`error rate ${errorRateOf(current)} % (at least ${lower} % at 95 % confidence) vs ${ref} % in ${errRef.name}`)
    }
  }
  return { ttft_p50_ms: p50, ttft_p90_ms: p90, error_rate_pct: errors, anomaly: reasons.length > 0, anomaly_reason: reasons.length > 0 ? reasons.join('; ') : null }
}
