import { bucketRange, type Resolution } from '../metrics/buckets.js'
import type { EntityType } from '../metrics/events.js'
import { successRate } from '../metrics/health.js'
import { entityKey, type Family } from '../store/keys.js'
import type { Fields, MergeRead, MetricsStore } from '../store/types.js'
import { decodeStat, num, type StatName } from './decode.js'

export const DIST_METRICS = { ttft: 'ttft', total_time: 'total', output_tokens_per_second: 'tps' } as const
export const RATE_METRICS = ['success_rate', 'requests', 'errors'] as const
export type TrendMetric = keyof typeof DIST_METRICS | typeof RATE_METRICS[number]

export interface TrendQuery {
  type: EntityType
  id: string
  metric: TrendMetric
  stat: StatName | null
  hours: number
  resolution: Resolution
}

export interface TrendPoint { t: string, count: number, value: number | null }

/** GET /api/metrics/trends: one point per bucket, oldest first, empty buckets included; one round trip. */
export async function readTrends (store: MetricsStore, q: TrendQuery, now: number): Promise<TrendQuery & { points: TrendPoint[] }> {
  const buckets = bucketRange(q.resolution, now, q.resolution === 'hour' ? q.hours : q.hours * 60)
  const family: Family | null = q.metric in DIST_METRICS ? DIST_METRICS[q.metric as keyof typeof DIST_METRICS] : null
  const perBucket = family === null ? 1 : 2
  const read: MergeRead = { keys: [], slots: [], nSlots: buckets.length * perBucket, counters: [] }
  buckets.forEach((b, i) => {
    read.keys.push(entityKey(q.type, q.id, 'stats', b.name))
    read.slots.push(i * perBucket)
    read.counters?.push(false)
    if (family !== null) {
      read.keys.push(entityKey(q.type, q.id, family, b.name))
      read.slots.push(i * perBucket + 1)
      read.counters?.push(true)
    }
  })
  const [slots] = await store.read([read]) as [Fields[]]
  const points = buckets.map((b, i): TrendPoint => {
    const stats = slots[i * perBucket]!
    const t = new Date(b.start).toISOString()
    if (family !== null) {
      const count = num(stats, `${family}:n`)
      return { t, count, value: count === 0 ? null : decodeStat(stats, family, slots[i * perBucket + 1]!, q.stat!) }
    }
    const requests = num(stats, 'n')
    const successes = num(stats, 'ok')
    const value = q.metric === 'success_rate' ? successRate(successes, requests) : q.metric === 'requests' ? requests : requests - successes
    return { t, count: requests, value: requests === 0 ? null : value }
  })
  return { ...q, points }
}
