import type { FastifyBaseLogger } from 'fastify'
import { bucketName, HOUR_MS, MINUTE_MS, MINUTE_RETENTION_MS } from '../metrics/buckets.js'
import { ENTITY_TYPES, PAIR_TYPES, type EntityType, type IndexedType } from '../metrics/events.js'
import { entityKey, indexKey, jobKey } from '../store/keys.js'
import { closedPeriods, entitySealUnits, periodBuckets, indexSealUnit, type Period, type SealUnit } from '../store/layout.js'
import type { MetricsStore } from '../store/types.js'

const INDEXED_TYPES: readonly IndexedType[] = [...ENTITY_TYPES, ...PAIR_TYPES]

/** Seal units per store call: each is one short script, and reads and flushes run between calls. */
export const SEAL_CHUNK = 32
/** How long after a period ends it is sealed: flushes of its last events have landed by then. */
export const SEAL_DELAY_MS = 2 * MINUTE_MS

export interface SealerOptions {
  store: MetricsStore
  retentionHours: number
  log: FastifyBaseLogger
  /** This instance's name among those sharing the store. */
  member: string
  /** Run at each pass (the Redis store refreshes its schema key). */
  beforePass?: () => Promise<void>
  intervalMs?: number
}

export interface SealResult { periods: number, units: number, bytes: number }

/**
 * Seals closed buckets into compact blocks (src/store/layout.ts): once a minute, the instance that
 * claims the minute looks at every closed 10 minutes still kept by minute and every closed hour
 * within the retention, finds through the activity index which of them still hold live hashes, and
 * moves those into their blocks, entities first and the index last (so an entity listed by a live
 * index is sealed before its listing is). A pass that stops half way leaves the rest live, where
 * reads find it, and the next pass finishes it; sealing what is already sealed moves nothing.
 */
export class Sealer {
  readonly #o: SealerOptions
  #timer: NodeJS.Timeout | null = null
  #running: Promise<unknown> | null = null

  constructor (opts: SealerOptions) {
    this.#o = opts
  }

  /** One pass at `now`. */
  async pass (now: number): Promise<SealResult> {
    const { store } = this.#o
    await this.#o.beforePass?.()
    const periods = closedPeriods(now, SEAL_DELAY_MS, MINUTE_RETENTION_MS, this.#o.retentionHours)
    // A chat event writes every type's `requests` index, a fetch the gateways' `fetches`: a period
    // with neither live has nothing live.
    const probes = periods.map((p) => periodBuckets(p).flatMap((b) => [indexKey('gateway', 'requests', b), indexKey('gateway', 'fetches', b)]))
    const probed = await store.liveFieldNames(probes.flat())
    let at = 0
    const live = periods.filter((_, i) => {
      const n = probes[i]!.length
      const any = probed.slice(at, at + n).some((names) => names.length > 0)
      at += n
      return any
    })
    const result: SealResult = { periods: live.length, units: 0, bytes: 0 }
    for (const p of live) {
      const units = await this.#unitsOf(p, now)
      for (let i = 0; i < units.length; i += SEAL_CHUNK) {
        result.bytes += await store.seal(units.slice(i, i + SEAL_CHUNK))
      }
      result.units += units.length
    }
    return result
  }

  /** Everything live in period `p`: its entities (from the live index), then the index itself. */
  async #unitsOf (p: Period, now: number): Promise<SealUnit[]> {
    const buckets = periodBuckets(p)
    const keys: string[] = []
    for (const type of ENTITY_TYPES) for (const b of buckets) keys.push(indexKey(type, 'requests', b))
    for (const b of buckets) keys.push(indexKey('gateway', 'fetches', b))
    const names = await this.#o.store.liveFieldNames(keys)
    const ids = new Map<EntityType, Set<string>>()
    ENTITY_TYPES.forEach((type, t) => ids.set(type, new Set(names.slice(t * buckets.length, (t + 1) * buckets.length).flat())))
    for (const id of names.slice(ENTITY_TYPES.length * buckets.length).flat()) ids.get('gateway')!.add(id)
    // A model's pairs in an hour are listed by its `gateways` and `providers` hashes of that hour,
    // written in the same script call as the pairs' own keys: complete whenever a pair key exists.
    const hour = bucketName('hour', p.start)
    const models = [...ids.get('model')!]
    const lists = await this.#o.store.fieldNames(models.flatMap((m) => [entityKey('model', m, 'gateways', hour), entityKey('model', m, 'providers', hour)]))
    const others = new Map<string, { gateway: Set<string>, provider: Set<string> }>()
    models.forEach((m, i) => others.set(m, { gateway: new Set(lists[2 * i]), provider: new Set(lists[2 * i + 1]) }))
    const units: SealUnit[] = []
    const none = { gateway: new Set<string>(), provider: new Set<string>() }
    for (const type of ENTITY_TYPES as readonly EntityType[]) {
      for (const id of ids.get(type)!) {
        units.push(...entitySealUnits(type, id, p, others.get(id) ?? none))
      }
    }
    for (const type of INDEXED_TYPES) units.push(indexSealUnit(type, p))
    if (p.kind === 'hour') {
      const prune = { hours: bucketName('hour', now - this.#o.retentionHours * HOUR_MS), spans: bucketName('tenmin', now - MINUTE_RETENTION_MS) }
      for (const u of units) u.prune = prune
    }
    return units
  }

  /** The timer's pass of the minute holding `now`, by the one instance that claims it. */
  async #tick (now: number, intervalMs: number): Promise<SealResult | null> {
    const period = Math.floor(now / intervalMs)
    const mine = await this.#o.store.claim(jobKey('seal', period), this.#o.member, (period + 2) * intervalMs)
    return mine ? await this.pass(now) : null
  }

  /** Passes every interval; a pass still running when the next is due makes that one wait its turn. */
  start (): void {
    if (this.#timer !== null) return
    const interval = this.#o.intervalMs ?? MINUTE_MS
    const schedule = (): void => {
      this.#timer = setTimeout(() => {
        const previous = this.#running ?? Promise.resolve()
        this.#running = previous.then(async () => await this.#tick(Date.now(), interval)).then(
          (r) => { if (r !== null && r.units > 0) this.#o.log.debug(r, 'sealed closed buckets') },
          (err: unknown) => { this.#o.log.warn({ err }, 'sealing closed buckets failed; the next pass catches up (reads are unaffected)') }
        )
        schedule()
      }, interval - (Date.now() % interval) + 5_000)
      this.#timer.unref()
    }
    schedule()
  }

  async stop (): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#running
  }
}
