import { bucketRange, type Resolution } from '../metrics/buckets.js'
import type { EntityType } from '../metrics/events.js'
import { successRate } from '../metrics/score.js'
import type { StatName } from '../metrics/histogram.js'
import { DIST_METRICS, type TrendMetric } from '../metrics/trends.js'
import type { Family } from '../store/keys.js'
import type { StoreReader } from './budget.js'
import { tierOf, TREND_HOUR_TIERS, TREND_MINUTE_HOURS } from './params.js'
import type { TrendPoint } from '../schemas/read.js'
import { decodeStat, num, tokensOf } from './decode.js'
import { ReadPlan } from './targets.js'

export interface TrendQuery {
  type: EntityType
  id: string
  metric: TrendMetric
  stat: StatName | null
  hours: number
  resolution: Resolution
}

/** GET /api/metrics/trends: one point per bucket, oldest first, empty buckets included; one round trip. */
export async function readTrends (store: StoreReader, q: TrendQuery, now: number): Promise<TrendsAnswer> {
  return (await readManyTrends(store, [q], now))[0]!
}

/** Several trends in one round trip (one MergeRead each): the sparklines of a leaderboard. */
export async function readManyTrends (store: StoreReader, queries: readonly TrendQuery[], now: number): Promise<TrendsAnswer[]> {
  if (queries.length === 0) return []
  const plans = queries.map((q) => {
    const buckets = bucketRange(q.resolution, now, q.resolution === 'hour' ? q.hours : q.hours * 60)
    const family: Family | null = q.metric in DIST_METRICS ? DIST_METRICS[q.metric as keyof typeof DIST_METRICS] : null
    const perBucket = family === null ? 1 : 2
    // Bucket i's stats in slot i × perBucket, its histogram (if any) in the next.
    const plan = new ReadPlan({ type: q.type, id: q.id })
    for (const b of buckets) {
      plan.slot('stats', [b])
      if (family !== null) plan.slot(family, [b])
    }
    return { q, buckets, family, perBucket, read: plan.read }
  })
  const results = await store.read(plans.map((p) => p.read))
  return plans.map(({ q, buckets, family, perBucket }, n) => {
    const slots = results[n]!
    const points = buckets.map((b, i): TrendPoint => {
      const stats = slots[i * perBucket]!
      const t = new Date(b.start).toISOString()
      if (family !== null) {
        const count = num(stats, `${family}:n`)
        return { t, count, value: count === 0 ? null : decodeStat(stats, family, slots[i * perBucket + 1]!, q.stat!) }
      }
      const requests = num(stats, 'n')
      if (q.metric === 'tokens') {
        const tokens = tokensOf(stats)
        return { t, count: requests, value: requests === 0 ? null : tokens.input_tokens + tokens.output_tokens, ...tokens }
      }
      const successes = num(stats, 'ok')
      const value = q.metric === 'success_rate' ? successRate(successes, requests) : q.metric === 'requests' ? requests : requests - successes
      return { t, count: requests, value: requests === 0 ? null : value }
    })
    return { ...q, points }
  })
}

/**
 * The computation a trends query is answered from: by hour over 6, 24, 72 or 168 hours, by minute
 * over 2 hours; the answer is its last points (narrowTrends), the same as if computed for `hours`.
 */
export function trendsComputation (q: TrendQuery): TrendQuery {
  return { ...q, hours: q.resolution === 'minute' ? Math.max(q.hours, TREND_MINUTE_HOURS) : tierOf(TREND_HOUR_TIERS, q.hours) }
}

export type TrendsAnswer = TrendQuery & { points: TrendPoint[] }

/** The last `hours` of trends computed over at least as many. */
export function narrowTrends (trends: TrendsAnswer, hours: number): TrendsAnswer {
  const points = trends.resolution === 'hour' ? hours : hours * 60
  return trends.points.length <= points ? trends : { ...trends, hours, points: trends.points.slice(-points) }
}
