import { bucketName, bucketRange, bucketStart, HOUR_MS, MINUTE_MS, type Bucket } from '../metrics/buckets.js'
import {
  BASELINE_DAYS, baselineP90, conditions, REPLAY_MINUTES, stateSeries, WINDOW_MINUTES,
  type HealthThresholds, type StateResult
} from '../metrics/status.js'
import type { Fields } from '../store/types.js'
import { tallyOf } from './decode.js'
import { binsIn, ReadPlan, type DistRef, type Target } from './targets.js'

export const DAY_MS = 24 * HOUR_MS

/** The hour buckets of the same hours of day on each of the BASELINE_DAYS days before. */
export function baselineBuckets (hourStarts: Iterable<number>): Bucket[] {
  const out: Bucket[] = []
  for (const h of hourStarts) {
    for (let k = 1; k <= BASELINE_DAYS; k++) out.push({ name: bucketName('hour', h - k * DAY_MS), start: h - k * DAY_MS })
  }
  return out
}

/** The complete minute before the one holding `now`: the latest minute a state looks at. */
export function lastCompleteMinute (now: number): number {
  return bucketStart('minute', now) - MINUTE_MS
}

export interface StatusPlan {
  plan: ReadPlan
  minutes: Bucket[]
  /** [stats slot, TTFT bins] per minute bucket. */
  minuteSlots: Array<[number, DistRef]>
  /** Hour of day (start of the hour) → [stats slot, TTFT bins] of its baseline. */
  baselineSlots: Map<number, [number, DistRef]>
  count: number
}

/**
 * The read behind the states after each of the last `count` complete minutes at `now`: the minute
 * buckets those states replay (stats and TTFT histogram, one slot each) and, for each hour of day
 * they touch, the TTFT baseline of that hour over the 7 days before. One target, so one hash slot.
 * The slots go into `plan` when given (a read of the same target that needs the state too: keys it
 * reads already are fetched once, see MergeRead), into a plan of their own otherwise.
 */
export function planStatus (target: Target, now: number, count = 1, plan = new ReadPlan(target)): StatusPlan {
  const minutes = bucketRange('minute', lastCompleteMinute(now), REPLAY_MINUTES + count - 1 + WINDOW_MINUTES - 1)
  const minuteSlots = minutes.map((b): [number, DistRef] => [plan.slot('stats', [b]), plan.dist('ttft', [b])])
  const baselineSlots = new Map<number, [number, DistRef]>()
  for (const b of minutes.slice(WINDOW_MINUTES - 1)) {
    const hour = bucketStart('hour', b.start)
    if (!baselineSlots.has(hour)) {
      const days = baselineBuckets([hour])
      baselineSlots.set(hour, [plan.slot('stats', days), plan.dist('ttft', days)])
    }
  }
  return { plan, minutes, minuteSlots, baselineSlots, count }
}

export interface StatusSeries {
  /** The states after each of the last `count` complete minutes, oldest first. */
  states: StateResult[]
  /** Start of the minute of states[0]. */
  firstMinute: number
}

export function decodeStatus (p: StatusPlan, slots: Fields[], th: HealthThresholds): StatusSeries {
  const tallies = p.minuteSlots.map(([s, h]) => tallyOf(slots[s]!, binsIn(slots, h)))
  const baselines = new Map<number, number | null>()
  for (const [hour, [s, h]] of p.baselineSlots) baselines.set(hour, baselineP90(tallyOf(slots[s]!, binsIn(slots, h)), th))
  const perMinute = p.minutes.map((b) => baselines.get(bucketStart('hour', b.start)) ?? null)
  const conds = conditions(tallies, perMinute, th)
  return {
    states: stateSeries(conds, th, p.count),
    firstMinute: p.minutes[p.minutes.length - p.count]!.start
  }
}

export interface CurrentStatus { status: StateResult['status'], status_reason: string }

export function currentStatus (series: StatusSeries): CurrentStatus {
  const s = series.states[series.states.length - 1]!
  return { status: s.status, status_reason: s.reason }
}
