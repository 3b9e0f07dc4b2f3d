import type { WindowName } from '../metrics/buckets.js'
import { healthScore, successRate, type Order } from '../metrics/score.js'
import { uptimeOf, type HealthThresholds } from '../metrics/status.js'
import type { Static } from '@sinclair/typebox'
import type { LeaderboardEntry, LeaderboardSchema } from '../schemas/read.js'
import type { Fields } from '../store/types.js'
import type { StoreReader } from './budget.js'
import { LIMIT_TIERS, roundUp125, tierOf } from './params.js'
import { readActivity } from './activity.js'
import { decodeStat, latestOf, tallyOf, tokensOf } from './decode.js'
import { decodeStatus, planStatus } from './status.js'
import { ReadPlan } from './targets.js'
import { resolveWindow } from './window.js'

export interface LeaderboardQuery {
  window: WindowName
  order: Order
  limit: number
  minRequests: number
}

/**
 * Ranks by the 2-decimal health score (as `order` says), then more requests, then id ascending,
 * whatever the order (docs/api.md).
 */
export function rank<T extends { id: string, requests: number, score: number }> (rows: T[], order: Order): T[] {
  const dir = order === 'desc' ? -1 : 1
  // Ids are unique in a ranking, so two rows never compare equal.
  return rows.sort((a, b) => (a.score - b.score) * dir || b.requests - a.requests || (a.id < b.id ? -1 : 1))
}

/** `min_requests`: the threshold applied. */
export type LeaderboardAnswer = Static<typeof LeaderboardSchema>

/**
 * GET /api/metrics/health/leaderboard in two store reads whatever the window (which the read budget
 * may send as several bounded round trips): the activity index to rank every model, then the details
 * (provider, p50s, uptime, state) of the `limit` ranked ones only, one MergeRead per model.
 */
export async function readLeaderboard (store: StoreReader, q: LeaderboardQuery, now: number, th: HealthThresholds): Promise<LeaderboardAnswer> {
  const w = resolveWindow(q.window, now)
  const active = (await readActivity(store, 'model', w))
    .filter((a) => a.requests >= q.minRequests)
    .map((a) => ({ ...a, score: healthScore(a.successes, a.requests)! }))
  const top = rank(active, q.order).slice(0, q.limit)
  // One MergeRead per model: the window's slots 0–2, then the state's.
  const plans = top.map((a) => {
    const plan = new ReadPlan({ type: 'model', id: a.id })
    for (const family of ['stats', 'ttft', 'total'] as const) plan.slot(family, w.cover)
    return planStatus(plan.target, now, 1, plan)
  })
  const details = await store.read(plans.map((p) => p.plan.read))
  const entries = top.map((a, i): LeaderboardEntry => {
    const [stats, ttft, total] = details[i] as [Fields, Fields, Fields]
    const series = decodeStatus(plans[i]!, details[i]!, th)
    return {
      rank: i + 1,
      model: a.id,
      provider: latestOf(stats, 'last:provider'),
      health_score: a.score,
      success_rate: successRate(a.successes, a.requests),
      requests: a.requests,
      ...tokensOf(stats),
      ttft_p50_ms: decodeStat(stats, 'ttft', ttft, 'p50'),
      total_time_p50_ms: decodeStat(stats, 'total', total, 'p50'),
      uptime: uptimeOf(tallyOf(stats, ttft)),
      status: series.states[series.states.length - 1]!.status
    }
  })
  return { window: w.info, order: q.order, min_requests: q.minRequests, entries }
}

/** The first `limit` entries of a leaderboard computed for at least as many. */
export function narrowLeaderboard (board: LeaderboardAnswer, limit: number): LeaderboardAnswer {
  return board.entries.length <= limit ? board : { ...board, entries: board.entries.slice(0, limit) }
}

/**
 * The computation a leaderboard query is answered from: `limit` up to its tier (the answer is cut to
 * the limit asked), `min_requests` rounded up to 1, 2 or 5 × a power of ten (the answer says which).
 */
export function leaderboardComputation (q: LeaderboardQuery): LeaderboardQuery {
  return { ...q, limit: tierOf(LIMIT_TIERS, q.limit), minRequests: roundUp125(q.minRequests) }
}
