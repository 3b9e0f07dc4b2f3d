import type { WindowName } from '../metrics/buckets.js'
import { CHAT_ERROR_TYPES, type EntityType } from '../metrics/events.js'
import { healthScore, successRate } from '../metrics/health.js'
import type { Stats } from '../metrics/histogram.js'
import { entityKey, type Family } from '../store/keys.js'
import { splitLatest } from '../store/merge.js'
import type { Fields, MergeRead, MetricsStore } from '../store/types.js'
import { decodeStats, num } from './decode.js'
import { resolveWindow } from './window.js'

export interface RealtimeAnswer {
  type: EntityType
  id: string
  window: { from: string, to: string, seconds: number }
  requests: number
  successes: number
  failures: number
  success_rate: number | null
  errors: Record<typeof CHAT_ERROR_TYPES[number], number>
  ttft_ms: Stats
  total_time_ms: Stats
  output_tokens_per_second: Stats
  health_score: number | null
  generated_at: string
  gateway_fetches?: {
    fetches: number
    errors: number
    timeouts: number
    response_time_ms: Stats
    last_model_count: number | null
  }
}

/** Merge-read of `families` of one entity over `buckets`: result slot i is families[i]. */
export function entityRead (type: EntityType, id: string, families: Family[], buckets: Array<{ name: string }>): MergeRead {
  const read: MergeRead = { keys: [], slots: [], nSlots: families.length, counters: [] }
  families.forEach((family, slot) => {
    for (const b of buckets) {
      read.keys.push(entityKey(type, id, family, b.name))
      read.slots.push(slot)
      read.counters?.push(family !== 'stats')
    }
  })
  return read
}

/** GET /api/metrics/realtime: one round trip, the window's buckets merged in the store. */
export async function readRealtime (store: MetricsStore, type: EntityType, id: string, windowName: WindowName, now: number): Promise<RealtimeAnswer> {
  const w = resolveWindow(windowName, now)
  const families: Family[] = type === 'gateway' ? ['stats', 'ttft', 'total', 'tps', 'fetch_rt'] : ['stats', 'ttft', 'total', 'tps']
  const [[stats, ttft, total, tps, fetchRt]] = await store.read([entityRead(type, id, families, w.buckets)]) as [[Fields, Fields, Fields, Fields, Fields]]
  const requests = num(stats, 'n')
  const successes = num(stats, 'ok')
  const answer: RealtimeAnswer = {
    type,
    id,
    window: w.info,
    requests,
    successes,
    failures: requests - successes,
    success_rate: successRate(successes, requests),
    errors: {
      timeout: num(stats, 'err:timeout'),
      rate_limit: num(stats, 'err:rate_limit'),
      network: num(stats, 'err:network'),
      other: num(stats, 'err:other')
    },
    ttft_ms: decodeStats(stats, 'ttft', ttft),
    total_time_ms: decodeStats(stats, 'total', total),
    output_tokens_per_second: decodeStats(stats, 'tps', tps),
    health_score: healthScore(successes, requests),
    generated_at: new Date(now).toISOString()
  }
  if (type === 'gateway') {
    const last = stats['last:model_count']
    answer.gateway_fetches = {
      fetches: num(stats, 'fetch:n'),
      errors: num(stats, 'fetch:err'),
      timeouts: num(stats, 'fetch:timeout'),
      response_time_ms: decodeStats(stats, 'fetch_rt', fetchRt),
      last_model_count: last === undefined ? null : Number(splitLatest(last).value)
    }
  }
  return answer
}
