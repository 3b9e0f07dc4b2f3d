import { bucketRange, bucketStart, resolutionMs, WINDOWS, type Bucket, type Resolution, type WindowName } from '../metrics/buckets.js'
import type { Static } from '@sinclair/typebox'
import { compareWindows } from '../metrics/baseline.js'
import type { EntityType } from '../metrics/events.js'
import { healthScore, successRate } from '../metrics/score.js'
import { DEFAULT_THRESHOLDS, uptimeOf, type HealthThresholds } from '../metrics/status.js'
import type { RealtimeSchema } from '../schemas/realtime.js'
import type { Family } from '../store/keys.js'
import type { Fields, MergeRead } from '../store/types.js'
import type { StoreReader } from './budget.js'
import { decodeStats, errorsOf, latestOf, num, tallyOf, tokensOf } from './decode.js'
import { baselineBuckets, currentStatus, decodeStatus, planStatus } from './status.js'
import { ReadPlan } from './targets.js'
import { coverOf, resolveWindow } from './window.js'

/** The answer of GET /api/metrics/realtime, as its response schema says. */
export type RealtimeAnswer = Static<typeof RealtimeSchema>

/** Merge-read of `families` of one entity over `buckets`: result slot i is families[i]. */
export function entityRead (type: EntityType, id: string, families: readonly Family[], buckets: ReadonlyArray<Pick<Bucket, 'name'>>): MergeRead {
  const plan = new ReadPlan({ type, id })
  for (const family of families) plan.slot(family, buckets)
  return plan.read
}

/** The same number of buckets right before `buckets`. */
export function previousBuckets (buckets: readonly Bucket[], res: Resolution): Bucket[] {
  return bucketRange(res, buckets[0]!.start - resolutionMs(res), buckets.length)
}

/** Start of every hour the buckets touch: the hours of day a baseline looks at. */
export function hoursOf (buckets: readonly Bucket[]): Set<number> {
  return new Set(buckets.map((b) => bucketStart('hour', b.start)))
}

/**
 * GET /api/metrics/realtime: one read of the entity's keys: the window's buckets (with the previous
 * period and the 7-day baseline of the same hours of day, for the baselines) and the minute buckets
 * behind the health state. A window by minute, and its previous period, read each complete 10-minute
 * block as one 10-minute bucket and only the minutes at the edges by minute (ResolvedWindow.cover).
 * The state's baselines, and the window's edge minutes the state replays too, are buckets the rest
 * of the read holds too: in one read, the store fetches each of them once.
 */
export async function readRealtime (
  store: StoreReader, type: EntityType, id: string, windowName: WindowName, now: number, th: HealthThresholds = DEFAULT_THRESHOLDS
): Promise<RealtimeAnswer> {
  const w = resolveWindow(windowName, now)
  const res = WINDOWS[windowName].res
  const families: Family[] = type === 'gateway' ? ['stats', 'ttft', 'total', 'tps', 'fetch_rt'] : ['stats', 'ttft', 'total', 'tps']
  const plan = new ReadPlan({ type, id })
  const windowSlots = families.map((f) => plan.slot(f, w.cover))
  const previous = previousBuckets(w.buckets, res)
  const previousCover = coverOf(res, previous)
  const baseline = baselineBuckets(hoursOf(w.buckets))
  const [prevStats, prevTtft, baseStats, baseTtft] = [plan.slot('stats', previousCover), plan.slot('ttft', previousCover), plan.slot('stats', baseline), plan.slot('ttft', baseline)]
  const status = planStatus({ type, id }, now, 1, plan)
  const [merged] = await store.read([plan.read]) as [Fields[]]
  const [stats, ttft, total, tps, fetchRt] = windowSlots.map((s) => merged[s]) as [Fields, Fields, Fields, Fields, Fields | undefined]
  const current = tallyOf(stats, ttft)
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
    errors: errorsOf(stats),
    ttft_ms: decodeStats(stats, 'ttft', ttft),
    total_time_ms: decodeStats(stats, 'total', total),
    ...tokensOf(stats),
    output_tokens_per_second: decodeStats(stats, 'tps', tps),
    health_score: healthScore(successes, requests),
    uptime: uptimeOf(current),
    ...currentStatus(decodeStatus(status, merged, th)),
    baselines: {
      previous: { from: new Date(previous[0]!.start).toISOString(), to: new Date(w.buckets[0]!.start).toISOString() },
      ...compareWindows(current, tallyOf(merged[prevStats]!, merged[prevTtft]!), tallyOf(merged[baseStats]!, merged[baseTtft]!), th)
    },
    generated_at: new Date(now).toISOString()
  }
  if (type === 'gateway') {
    const last = latestOf(stats, 'last:model_count')
    answer.gateway_fetches = {
      fetches: num(stats, 'fetch:n'),
      errors: num(stats, 'fetch:err'),
      timeouts: num(stats, 'fetch:timeout'),
      response_time_ms: decodeStats(stats, 'fetch_rt', fetchRt!),
      last_model_count: last === null ? null : Number(last)
    }
  }
  return answer
}
