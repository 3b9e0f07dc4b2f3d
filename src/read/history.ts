import { bucketRange, HOUR_MS, MINUTE_MS } from '../metrics/buckets.js'
import type { Static } from '@sinclair/typebox'
import type { StatusHistorySchema } from '../schemas/status.js'
import type { EntityType } from '../metrics/events.js'
import { transitionsOf, type HealthThresholds, type Status, type Transition } from '../metrics/status.js'
import { splitLatest, TS_DIGITS } from '../store/merge.js'
import type { Fields } from '../store/types.js'
import type { StoreReader } from './budget.js'
import { decodeStatus, lastCompleteMinute, planStatus } from './status.js'
import { ReadPlan } from './targets.js'

/** Minutes of state changes the status recorder (and the history's live part) recompute each time. */
export const RECENT_MINUTES = 10

/** `since`: when the current state began, if that change is within the window; `transitions` newest first. */
export type HistoryAnswer = Static<typeof StatusHistorySchema>
export type HistoryEntry = HistoryAnswer['transitions'][number]

/** The stored value of one state change (the field is `last:` + its time). */
export function encodeTransition (t: Transition): string {
  return JSON.stringify({ from: t.from, to: t.to, reason: t.reason })
}

function decodeTransition (field: string, raw: string): Transition {
  const { value } = splitLatest(raw)
  const at = Number(field.slice('last:'.length, 'last:'.length + TS_DIGITS))
  return { at, ...(JSON.parse(value) as { from: Status, to: Status, reason: string }) }
}

/**
 * GET /api/metrics/status/history: the state changes stored over the last `hours` (written each
 * minute by the status recorder, one field per change, so repeated writes never duplicate one),
 * together with the changes of the last RECENT_MINUTES computed now. One round trip, two reads of
 * the entity's own keys.
 */
export async function readStatusHistory (
  store: StoreReader, type: EntityType, id: string, hours: number, now: number, th: HealthThresholds
): Promise<HistoryAnswer> {
  const buckets = bucketRange('hour', now, hours)
  const stored = new ReadPlan({ type, id })
  stored.slot('status', buckets)
  const live = planStatus({ type, id }, now, RECENT_MINUTES + 1)
  const [[fields], liveSlots] = await store.read([stored.read, live.plan.read]) as [[Fields], Fields[]]
  const from = buckets[0]!.start
  const series = decodeStatus(live, liveSlots, th)
  // What is recomputed now replaces what was stored for the same minutes (late events may move a change).
  const liveFrom = series.firstMinute + MINUTE_MS
  const transitions = Object.entries(fields)
    .map(([field, raw]) => decodeTransition(field, raw))
    .filter((t) => t.at >= from && t.at <= liveFrom)
    .concat(transitionsOf(series.states, series.firstMinute))
    .sort((a, b) => b.at - a.at)
  const current = series.states[series.states.length - 1]!
  const latest = transitions[0]
  return {
    type,
    id,
    window: { from: new Date(from).toISOString(), to: new Date(now).toISOString(), seconds: hours * HOUR_MS / 1000 },
    status: current.status,
    status_reason: current.reason,
    since: latest !== undefined && latest.to === current.status ? new Date(latest.at).toISOString() : null,
    transitions: transitions.map((t) => ({ at: new Date(t.at).toISOString(), from: t.from, to: t.to, reason: t.reason })),
    generated_at: new Date(now).toISOString()
  }
}

/**
 * Changes after this time are recomputed by every read (the last RECENT_MINUTES), not taken from
 * what the recorder stored: readStatusHistory's `series.firstMinute + MINUTE_MS`.
 */
export function liveFromOf (now: number): number {
  return lastCompleteMinute(now) - (RECENT_MINUTES - 1) * MINUTE_MS
}

/**
 * The history of the last `hours` from one computed over at least as many (at the same time): the
 * stored changes from the narrower window's start, every recomputed one, as readStatusHistory
 * answers for `hours`.
 */
export function narrowHistory (history: HistoryAnswer, hours: number): HistoryAnswer {
  if (history.window.seconds <= hours * HOUR_MS / 1000) return history
  const now = Date.parse(history.generated_at)
  const from = bucketRange('hour', now, hours)[0]!.start
  const liveFrom = liveFromOf(now)
  const transitions = history.transitions.filter((t) => {
    const at = Date.parse(t.at)
    return at >= from || at > liveFrom
  })
  const latest = transitions[0]
  return {
    ...history,
    window: { from: new Date(from).toISOString(), to: history.window.to, seconds: hours * HOUR_MS / 1000 },
    since: latest !== undefined && latest.to === history.status ? latest.at : null,
    transitions
  }
}
