import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { bucketExpiry, bucketName, bucketRange, bucketStart, MINUTE_MS } from '../metrics/buckets.js'
import { ENTITY_TYPES, type EntityType } from '../metrics/events.js'
import { REPLAY_MINUTES, transitionsOf, WINDOW_MINUTES, type HealthThresholds } from '../metrics/status.js'
import { entityKey, entityTag, jobKey, markerKey } from '../store/keys.js'
import { latestValue } from '../store/merge.js'
import type { Fields, GroupWrite, KeyWrite, MetricsStore } from '../store/types.js'
import { encodeTransition, RECENT_MINUTES } from '../read/history.js'
import { readIndex } from '../read/activity.js'
import { decodeStatus, lastCompleteMinute, planStatus } from '../read/status.js'

/** Entities whose states one store round trip computes. */
const CHUNK = 100

export interface StatusRecorderOptions {
  store: MetricsStore
  th: HealthThresholds
  retentionHours: number
  log: FastifyBaseLogger
  /** How often a sweep runs (ms) and how long after each period starts: defaults 1 minute and 2 s. */
  intervalMs?: number
  offsetMs?: number
  /** This instance's name among those sharing the store (default: a random UUID). */
  member?: string
}

/** What one sweep did. */
export interface SweepResult { entities: number, transitions: number, failedGroups: number }

/**
 * Keeps the state history: once a minute, for every model, provider and gateway with requests in
 * the minutes the states replay, it recomputes the states after each of the last RECENT_MINUTES
 * minutes and stores their changes, each as the field `last:<time of the change>` of the entity's
 * `status` hash of that hour (TTL: the retention). The same change written again, by a later sweep
 * or by another instance, lands on the same field: nothing is ever duplicated, and no instance needs
 * to know of the others. The timer's sweeps are not repeated by every instance, though: each period
 * one instance claims the sweep (`claim`, SET NX) and the others skip it, so Redis does one sweep's
 * work a minute whatever the number of instances. A sweep that fails is logged and the next one, by
 * whichever instance, catches up (it looks back RECENT_MINUTES minutes).
 */
export class StatusRecorder {
  readonly #o: StatusRecorderOptions
  #timer: NodeJS.Timeout | null = null
  #running: Promise<unknown> | null = null
  readonly #member: string

  constructor (opts: StatusRecorderOptions) {
    this.#o = opts
    this.#member = opts.member ?? randomUUID()
  }

  /** The timer's sweep of the period holding `now`, by the one instance that claims the period. */
  async #tick (now: number, intervalMs: number): Promise<SweepResult | null> {
    const period = Math.floor(now / intervalMs)
    const mine = await this.#o.store.claim(jobKey('status-sweep', period), this.#member, (period + 2) * intervalMs)
    return mine ? await this.sweep(now) : null
  }

  /** Ids of `type` with requests in the minutes the recent states replay (one read of the type's index). */
  async #active (type: EntityType, now: number): Promise<string[]> {
    const minutes = bucketRange('minute', lastCompleteMinute(now), REPLAY_MINUTES + RECENT_MINUTES + WINDOW_MINUTES - 1)
    const [ids] = await readIndex(this.#o.store, type, ['requests'], minutes) as [Fields]
    return Object.keys(ids)
  }

  /** One sweep at `now`. Resolves with what it did; rejects when the store cannot answer. */
  async sweep (now = Date.now()): Promise<SweepResult> {
    const { store, th, retentionHours } = this.#o
    // One sequence per minute, shared by every instance: a second write of the same minute is skipped.
    const seq = lastCompleteMinute(now) / MINUTE_MS
    let entities = 0
    let transitions = 0
    let failedGroups = 0
    for (const type of ENTITY_TYPES) {
      const ids = await this.#active(type, now)
      entities += ids.length
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK)
        const plans = chunk.map((id) => planStatus({ type, id }, now, RECENT_MINUTES + 1))
        const slots = await store.read(plans.map((p) => p.plan.read))
        const groups: GroupWrite[] = []
        chunk.forEach((id, j) => {
          const series = decodeStatus(plans[j]!, slots[j]!, th)
          const keys = new Map<string, KeyWrite>()
          for (const t of transitionsOf(series.states, series.firstMinute)) {
            const hour = bucketStart('hour', t.at)
            const name = bucketName('hour', hour)
            let kw = keys.get(name)
            if (kw === undefined) keys.set(name, kw = { key: entityKey(type, id, 'status', name), expireAt: bucketExpiry('hour', hour, retentionHours), ops: [] })
            kw.ops.push(['l', `last:${latestValue(t.at, '')}`, latestValue(t.at, encodeTransition(t))])
            transitions++
          }
          if (keys.size > 0) groups.push({ marker: markerKey(entityTag(type, id), 'status'), keys: [...keys.values()] })
        })
        if (groups.length > 0) failedGroups += (await store.applyGroups(seq, groups)).filter((e) => e !== null).length
      }
    }
    return { entities, transitions, failedGroups }
  }

  /** Sweeps every interval, `offsetMs` after the period starts (so the minute just ended is flushed). */
  start (): void {
    if (this.#timer !== null) return
    const interval = this.#o.intervalMs ?? MINUTE_MS
    const offset = this.#o.offsetMs ?? 2_000
    const schedule = (): void => {
      const now = Date.now()
      this.#timer = setTimeout(() => {
        this.#running = this.#tick(Date.now(), interval).then(
          (r) => { if (r !== null && r.failedGroups > 0) this.#o.log.warn(r, 'status history: some changes were not stored; the next sweep retries') },
          (err: unknown) => { this.#o.log.warn({ err }, 'status history sweep failed; the next one catches up') }
        )
        schedule()
      }, interval - (now % interval) + offset)
      this.#timer.unref()
    }
    schedule()
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop (): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#running
  }
}
