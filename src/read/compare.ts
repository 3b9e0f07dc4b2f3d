import { bucketName, type WindowName } from '../metrics/buckets.js'
import { VIAS, type Via } from '../metrics/events.js'
import type { Static } from '@sinclair/typebox'
import type { CompareSchema, RouteSchema } from '../schemas/compare.js'
import { successRate } from '../metrics/score.js'
import { rankCandidates, type RankedCandidate } from '../metrics/routing.js'
import { ttftPercentile, uptimeLowerBound, uptimeOf, type HealthThresholds, type Status } from '../metrics/status.js'
import type { Fields } from '../store/types.js'
import type { StoreReader } from './budget.js'
import { decodeStat, tallyOf } from './decode.js'
import { hoursOf } from './realtime.js'
import { currentStatus, decodeStatus, planStatus, type StatusPlan } from './status.js'
import { binsIn, ReadPlan, type DistRef } from './targets.js'
import { resolveWindow, type ResolvedWindow } from './window.js'

/** One model through one gateway (or served by one provider) over a window. */
export interface PairFigures {
  id: string
  requests: number
  successes: number
  failures: number
  rate_limited: number
  success_rate: number | null
  uptime: number | null
  uptime_lower_bound: number | null
  status: Status
  status_reason: string
  ttft_p50_ms: number | null
  ttft_p90_ms: number | null
  total_time_p50_ms: number | null
  output_tokens_per_second_p50: number | null
}

/**
 * The figures of `model` through each gateway and/or by each provider with traffic in the window,
 * by requests (more first), then id. Two round trips: which gateways and providers served the model
 * (the model's hour hashes), then each pair's window and state. Every key read is in the model's
 * hash slot; each pair is its own read.
 */
export async function readPairs (store: StoreReader, model: string, vias: readonly Via[], windowName: WindowName, now: number, th: HealthThresholds): Promise<{ window: ResolvedWindow['info'], pairs: Record<Via, PairFigures[]> }> {
  const w = resolveWindow(windowName, now)
  const hours = [...hoursOf(w.buckets)].map((h) => ({ name: bucketName('hour', h) }))
  const index = new ReadPlan({ type: 'model', id: model })
  for (const via of vias) index.slot(via === 'gateway' ? 'gateways' : 'providers', hours)
  const [found] = await store.read([index.read]) as [Fields[]]

  const targets: Array<{ via: Via, id: string, window: ReadPlan, dists: [DistRef, DistRef, DistRef], status: StatusPlan }> = []
  vias.forEach((via, i) => {
    for (const id of Object.keys(found[i]!)) {
      const target = { model, via, id }
      const window = new ReadPlan(target)
      window.slot('stats', w.buckets)
      const dists: [DistRef, DistRef, DistRef] = [window.dist('ttft', w.buckets), window.dist('total', w.buckets), window.dist('tps', w.buckets)]
      targets.push({ via, id, window, dists, status: planStatus(target, now) })
    }
  })
  const merged = await store.read(targets.flatMap((t) => [t.window.read, t.status.plan.read]))
  const pairs: Record<Via, PairFigures[]> = { gateway: [], provider: [] }
  targets.forEach((t, i) => {
    const slots = merged[2 * i]!
    const stats = slots[0]!
    const [ttft, total, tps] = t.dists.map((d) => binsIn(slots, d)) as [Fields, Fields, Fields]
    const tally = tallyOf(stats, ttft)
    if (tally.requests === 0) return
    pairs[t.via].push({
      id: t.id,
      requests: tally.requests,
      successes: tally.successes,
      failures: tally.requests - tally.successes,
      rate_limited: tally.rateLimited,
      success_rate: successRate(tally.successes, tally.requests),
      uptime: uptimeOf(tally),
      uptime_lower_bound: uptimeLowerBound(tally),
      ...currentStatus(decodeStatus(t.status, merged[2 * i + 1]!, th)),
      ttft_p50_ms: ttftPercentile(tally, 50),
      ttft_p90_ms: ttftPercentile(tally, 90),
      total_time_p50_ms: decodeStat(stats, 'total', total, 'p50'),
      output_tokens_per_second_p50: decodeStat(stats, 'tps', tps, 'p50')
    })
  })
  for (const via of vias) pairs[via].sort((a, b) => b.requests - a.requests || (a.id < b.id ? -1 : 1))
  return { window: w.info, pairs }
}

type Named<K extends string> = Omit<PairFigures, 'id'> & Record<K, string>

function named<K extends string> (key: K, rows: PairFigures[]): Array<Named<K>> {
  return rows.map(({ id, ...rest }) => ({ [key]: id, ...rest }) as Named<K>)
}

export type CompareAnswer = Static<typeof CompareSchema>

/** GET /api/metrics/compare: the model through each gateway, and by each provider, side by side. */
export async function readCompare (store: StoreReader, model: string, windowName: WindowName, now: number, th: HealthThresholds): Promise<CompareAnswer> {
  const { window, pairs } = await readPairs(store, model, VIAS, windowName, now, th)
  return { model, window, gateways: named('gateway', pairs.gateway), providers: named('provider', pairs.provider), generated_at: new Date(now).toISOString() }
}

/** `recommended`: the first candidate when it is not down; null otherwise (or with no candidates). */
export type RouteAnswer = Static<typeof RouteSchema>
export type RouteCandidate = RouteAnswer['candidates'][number]

/** GET /api/metrics/route: the candidates for `model` ranked by the routing rule (src/metrics/routing.ts). */
export async function readRoute (store: StoreReader, model: string, by: Via, windowName: WindowName, now: number, th: HealthThresholds): Promise<RouteAnswer> {
  const { window, pairs } = await readPairs(store, model, [by], windowName, now, th)
  const figures = new Map(pairs[by].map((p) => [p.id, p]))
  const ranking = pairs[by].map((p) => ({ id: p.id, status: p.status, uptimeLowerBound: p.uptime_lower_bound, ttftP90: p.ttft_p90_ms, requests: p.requests }))
  const ranked: RankedCandidate[] = rankCandidates(ranking)
  const candidates = ranked.map((c): RouteCandidate => {
    const p = figures.get(c.id)!
    const { status_reason: statusReason, uptime } = p
    return {
      rank: c.rank,
      id: c.id,
      status: c.status,
      status_reason: statusReason,
      uptime,
      uptime_lower_bound: c.uptimeLowerBound,
      ttft_p90_ms: c.ttftP90,
      requests: c.requests,
      reason: c.reason
    }
  })
  const first = candidates[0]
  return { model, by, window, recommended: first !== undefined && first.status !== 'down' ? first.id : null, candidates, generated_at: new Date(now).toISOString() }
}
