import { randomBytes } from 'node:crypto'
import { HourLoadingError } from '../errors.js'
import { bucketName, bucketStart, HOUR_MS } from '../metrics/buckets.js'
import { catalogDigest } from '../metrics/catalog.js'
import { pairId, type ChatEvent, type EntityType, type FetchEvent, type IndexedType, type PairType } from '../metrics/events.js'
import { indexKey, quotaKey } from '../store/keys.js'
import type { MetricsStore } from '../store/types.js'
import { MAX_FUTURE_MS } from './normalize.js'

/** Every kind of thing a cap counts: the ids of the activity index, and the model lists' entries. */
export type CappedType = IndexedType | 'catalog'

/**
 * What a refusal names: the kind of id, the id (a pair: the model, a space, the gateway or provider;
 * `catalog`: the gateway whose list would pass the cap) and the cap. `hour` (the bucket's name) is
 * set when the id was refused in an hour other than the current one (a back-dated event).
 */
export interface Refused { type: CappedType, id: string, limit: number, hour?: string }

/** The caps: distinct ids per hour bucket, and model-list entries per hour (`catalog`). */
export type Caps = Record<EntityType, number> & Partial<Record<PairType | 'catalog', number>>

export interface GuardOptions {
  /** Hour buckets are kept this long after they end (METRICS_RETENTION_HOURS); default 168. */
  retentionHours?: number
  now?: () => number
  /** This instance's name among those sharing the store (its share of the catalog quota); default random. */
  member?: string
}

const TYPES = ['model', 'provider', 'gateway', 'model_gateway', 'model_provider'] as const satisfies readonly IndexedType[]
type Ids = Record<IndexedType, Set<string>>
const noIds = (): Ids => ({ model: new Set(), provider: new Set(), gateway: new Set(), model_gateway: new Set(), model_provider: new Set() })

/** A past hour not used for this long is forgotten (read again from the store when next needed). */
export const IDLE_VIEW_MS = 10 * 60_000
/** Past hours refreshed after one flush at most, least recently refreshed first (the current hour always is). */
export const REFRESH_PAST_HOURS = 8
/** How long a failed read of an hour's ids is not tried again. */
const LOAD_RETRY_MS = 1_000

/** The ids one hour bucket holds, as this instance knows them. */
interface HourView {
  readonly start: number
  readonly ids: Ids
  /**
   * Model → provider → gateways of events whose five ids are all known in this hour: the common case
   * answered by three look-ups of strings the request already holds, without building pair ids. Ids
   * are never forgotten while the view lives, so an entry stays true.
   */
  readonly triples: Map<string, Map<string, Set<string>>>
  /** `loading`: the store's ids are being read for the first time; `failed`: that read failed. */
  state: 'ready' | 'loading' | 'failed'
  retryAt: number
  /** Last time a request needed this hour; whether one did since the last refresh. */
  usedAt: number
  used: boolean
  refreshedAt: number
}

function newView (start: number, state: HourView['state'], now: number): HourView {
  return { start, ids: noIds(), triples: new Map(), state, retryAt: 0, usedAt: now, used: false, refreshedAt: 0 }
}

/** Model-list entries admitted in the current arrival hour. */
interface CatalogQuota {
  hourStart: number
  /** Gateway + NUL + digest of the lists admitted this hour: a list already stored costs no more ids. */
  lists: Set<string>
  /** Entries admitted here, and by the other instances as of the last refresh. */
  mine: number
  others: number
}

/** What a refusal says, naming the variable that sets the limit. */
export function refusalMessage (r: Refused): string {
  const when = r.hour === undefined ? 'this hour' : `in hour ${r.hour} (UTC)`
  if (r.type === 'catalog') {
    return `the model list of gateway ${JSON.stringify(r.id)} would exceed the limit of ${r.limit} model-list entries ${when} (METRICS_MAX_CATALOG_IDS); fetches without a model list are still accepted`
  }
  const variable = `METRICS_MAX_${r.type.toUpperCase()}S`
  const what = r.type === 'model_gateway' || r.type === 'model_provider'
    ? `${r.type === 'model_gateway' ? 'model × gateway' : 'model × provider'} pair ${JSON.stringify(r.id.slice(0, r.id.indexOf(' ')))} × ${JSON.stringify(r.id.slice(r.id.indexOf(' ') + 1))} would exceed the limit of ${r.limit} distinct pairs`
    : `${r.type} ${JSON.stringify(r.id)} would exceed the limit of ${r.limit} distinct ${r.type}s`
  return `${what} ${when} (${variable}); events for known ones are still accepted`
}

/**
 * The cardinality guard: at most `max[type]` distinct models (providers, gateways, model × gateway
 * and model × provider pairs) in each hour bucket, and at most `max.catalog` model-list entries per
 * hour, shared through the store. An event counts against the hour bucket it is stored in, whatever
 * its arrival: a back-dated event meets the cap of its own hour.
 *
 * Ids already in an hour, here or written by any instance (the store's activity index), always pass;
 * a new id passes while its hour has room. The guard answers synchronously from what it holds of
 * each hour (a view): the current and the next hour start empty when they begin and learn the other
 * instances' ids after each flush; every kept hour is read once at start; a past hour forgotten since
 * (unused for IDLE_VIEW_MS) is read again when a request needs it, and that request is answered 503
 * with Retry-After meanwhile (`HourLoadingError`). The views of the hours requests used since the
 * last refresh are refreshed after each flush, so each instance may overshoot a cap by the new ids it
 * admits between two refreshes.
 *
 * Model lists are counted by arrival hour (a list is kept for the retention from when it is stored):
 * each fetch carrying a list is one entry (its record in the gateway's `catalog_fetches`), plus the
 * list's ids the first time that gateway sends that list in the hour.
 *
 * Memory: a view holds at most the caps' sum of ids (plus the other instances' overshoot), and there
 * is at most one per kept hour bucket (retention + 2); only the hours used in the last
 * IDLE_VIEW_MS are held after the first.
 */
export class CardinalityGuard {
  readonly #max: Record<CappedType, number>
  readonly #store: MetricsStore
  readonly #now: () => number
  readonly #retentionMs: number
  /** This instance's name in the shared model-list counter. */
  readonly #member: string
  readonly #views = new Map<number, HourView>()
  /** Whether every kept hour has been read once (the first refresh, or the first that reached the store). */
  #preloaded = false
  #catalog: CatalogQuota = { hourStart: -1, lists: new Set(), mine: 0, others: 0 }
  /** Events refused since start, by type. */
  readonly refused: Record<CappedType, number> = { model: 0, provider: 0, gateway: 0, model_gateway: 0, model_provider: 0, catalog: 0 }

  /** Pair and catalog limits left out are not enforced (pairs: beyond what the model and gateway limits imply). */
  constructor (store: MetricsStore, max: Caps, opts: GuardOptions = {}) {
    this.#store = store
    this.#max = { model_gateway: Infinity, model_provider: Infinity, catalog: Infinity, ...max }
    this.#now = opts.now ?? Date.now
    this.#retentionMs = (opts.retentionHours ?? 168) * HOUR_MS
    this.#member = opts.member ?? randomBytes(8).toString('hex')
  }

  /** Hours held and the ids they hold in all: what the guard itself keeps in memory. */
  get heldIds (): { hours: number, ids: number } {
    let ids = 0
    for (const v of this.#views.values()) for (const type of TYPES) ids += v.ids[type].size
    return { hours: this.#views.size, ids }
  }

  /**
   * Admits the ids of a whole request, or none of them: the first id beyond a limit is returned and
   * nothing is recorded as known. Throws `HourLoadingError` (503) while an hour the request needs is
   * being read from the store.
   */
  admit (chat: readonly ChatEvent[], fetch: readonly FetchEvent[] = []): Refused | null {
    const now = this.#now()
    if (this.#allKnown(chat, fetch, now)) return null
    return this.#admitNew(chat, fetch, now)
  }

  /** The common case, without the bookkeeping: every id is known in its hour, and no model list. */
  #allKnown (chat: readonly ChatEvent[], fetch: readonly FetchEvent[], now: number): boolean {
    let view: HourView | undefined
    for (const e of chat) {
      if (view === undefined || e.ts < view.start || e.ts >= view.start + HOUR_MS) {
        view = this.#views.get(bucketStart('hour', e.ts))
        if (view?.state !== 'ready') return false
        view.usedAt = now
        view.used = true
      }
      if (view.triples.get(e.model)?.get(e.provider)?.has(e.gateway) === true) continue
      const { model, provider, gateway, model_gateway: modelGateway, model_provider: modelProvider } = view.ids
      if (!model.has(e.model) || !provider.has(e.provider) || !gateway.has(e.gateway)) return false
      if (!modelGateway.has(pairId(e.model, e.gateway)) || !modelProvider.has(pairId(e.model, e.provider))) return false
      rememberTriple(view, e)
    }
    for (const e of fetch) {
      if (e.models !== undefined) return false
      const v = this.#views.get(bucketStart('hour', e.ts))
      if (v?.state !== 'ready' || !v.ids.gateway.has(e.gateway)) return false
      v.usedAt = now
      v.used = true
    }
    return true
  }

  #admitNew (chat: readonly ChatEvent[], fetch: readonly FetchEvent[], now: number): Refused | null {
    const current = bucketStart('hour', now)
    // Every hour the request names must be known before anything is counted against it.
    const toLoad: HourView[] = []
    const waiting: HourView[] = []
    const viewOf = (ts: number): HourView => {
      const start = bucketStart('hour', ts)
      let v = this.#views.get(start)
      if (v === undefined) {
        // An hour that begins now holds only what arrives from now on, which refreshes bring in;
        // a past hour holds what was written before: it is read first.
        v = newView(start, start >= current ? 'ready' : 'loading', now)
        this.#views.set(start, v)
        if (v.state === 'loading') toLoad.push(v)
      } else if (v.state === 'failed' && now >= v.retryAt) {
        v.state = 'loading'
        toLoad.push(v)
      }
      v.usedAt = now
      v.used = true
      if (v.state !== 'ready' && !waiting.includes(v)) waiting.push(v)
      return v
    }
    const chatViews = chat.map((e) => viewOf(e.ts))
    const fetchViews = fetch.map((e) => viewOf(e.ts))
    if (toLoad.length > 0) void this.#load(toLoad)
    if (waiting.length > 0) {
      throw Object.assign(new HourLoadingError(waiting.map((v) => bucketName('hour', v.start)).join(', ')), { headers: { 'retry-after': '1' } })
    }

    const fresh = new Map<HourView, Ids>()
    const check = (v: HourView, type: IndexedType, id: string): Refused | null => {
      if (v.ids[type].has(id)) return null
      let f = fresh.get(v)
      if (f === undefined) fresh.set(v, f = noIds())
      if (f[type].has(id)) return null
      if (v.ids[type].size + f[type].size >= this.#max[type]) {
        return { type, id, limit: this.#max[type], ...(v.start !== current ? { hour: bucketName('hour', v.start) } : {}) }
      }
      f[type].add(id)
      return null
    }
    const refuse = (r: Refused): Refused => {
      this.refused[r.type] += chat.length + fetch.length
      return r
    }
    for (let i = 0; i < chat.length; i++) {
      const e = chat[i]!
      const v = chatViews[i]!
      const refused = check(v, 'model', e.model) ?? check(v, 'provider', e.provider) ?? check(v, 'gateway', e.gateway) ??
        check(v, 'model_gateway', pairId(e.model, e.gateway)) ?? check(v, 'model_provider', pairId(e.model, e.provider))
      if (refused !== null) return refuse(refused)
    }
    for (let i = 0; i < fetch.length; i++) {
      const refused = check(fetchViews[i]!, 'gateway', fetch[i]!.gateway)
      if (refused !== null) return refuse(refused)
    }

    const catalog = this.#catalogOf(current)
    const lists = new Set<string>()
    let entries = 0
    for (const e of fetch) {
      if (e.models === undefined) continue
      const list = `${e.gateway}\u0000${catalogDigest(e.models)}`
      let cost = 1
      if (!catalog.lists.has(list) && !lists.has(list)) {
        cost += e.models.length
        lists.add(list)
      }
      if (catalog.mine + catalog.others + entries + cost > this.#max.catalog) return refuse({ type: 'catalog', id: e.gateway, limit: this.#max.catalog })
      entries += cost
    }

    for (const [v, f] of fresh) for (const type of TYPES) for (const id of f[type]) v.ids[type].add(id)
    for (const list of lists) catalog.lists.add(list)
    catalog.mine += entries
    return null
  }

  /** The model-list quota of the arrival hour starting at `hourStart`: afresh when the hour turns. */
  #catalogOf (hourStart: number): CatalogQuota {
    if (this.#catalog.hourStart !== hourStart) this.#catalog = { hourStart, lists: new Set(), mine: 0, others: 0 }
    return this.#catalog
  }

  /** Reads the ids the store holds for these hours into their views; never rejects. */
  async #load (views: HourView[]): Promise<void> {
    try {
      await this.#read(views.map((v) => v.start))
    } catch {
      const now = this.#now()
      for (const v of views) {
        if (v.state !== 'ready') {
          v.state = 'failed'
          v.retryAt = now + LOAD_RETRY_MS
        }
      }
    }
  }

  /** Adds the ids the store's activity index holds for each hour to its view (made ready). Rejects when the store does. */
  async #read (hours: number[]): Promise<void> {
    const names = await this.#store.fieldNames(hours.flatMap((h) => TYPES.map((type) => indexKey(type, 'requests', bucketName('hour', h)))))
    const now = this.#now()
    hours.forEach((h, i) => {
      let v = this.#views.get(h)
      if (v === undefined) this.#views.set(h, v = newView(h, 'ready', now))
      TYPES.forEach((type, j) => { for (const id of names[i * TYPES.length + j]!) v.ids[type].add(id) })
      v.state = 'ready'
      v.refreshedAt = now
    })
  }

  /**
   * Learns the ids every instance has written: the first time, for every hour bucket still kept;
   * then for the current hour and the past hours requests used since the last refresh. Also shares
   * this instance's model-list entries and learns the others'. Forgets hours no longer kept or
   * unused for IDLE_VIEW_MS. Never rejects.
   */
  async refresh (): Promise<void> {
    const now = this.#now()
    const current = bucketStart('hour', now)
    for (const [start, v] of this.#views) {
      const expired = start + HOUR_MS + this.#retentionMs <= now
      if (expired || (start < current && v.state !== 'loading' && v.usedAt < now - IDLE_VIEW_MS)) this.#views.delete(start)
    }
    const first = !this.#preloaded
    let hours: number[]
    if (first) {
      hours = []
      for (let h = bucketStart('hour', now - this.#retentionMs); h <= bucketStart('hour', now + MAX_FUTURE_MS); h += HOUR_MS) hours.push(h)
    } else {
      const past = [...this.#views.values()].filter((v) => v.used && v.state === 'ready' && v.start !== current)
        .sort((a, b) => a.refreshedAt - b.refreshedAt).slice(0, REFRESH_PAST_HOURS)
      hours = [current, ...past.map((v) => v.start)]
    }
    const marked = hours.map((h) => this.#views.get(h)).filter((v) => v !== undefined)
    for (const v of marked) v.used = false
    try {
      await this.#read(hours)
      this.#preloaded = true
    } catch {
      // The store is down: keep the local view (the flusher reports the outage); look again next time.
      for (const v of marked) v.used = true
    }
    // Not at start: a refused request must leave no key under `metrics:`, and the start writes nothing.
    if (!first) await this.#shareCatalog(current)
  }

  /** Writes this instance's model-list entries of the hour to the shared counter and learns the total. */
  async #shareCatalog (current: number): Promise<void> {
    const catalog = this.#catalogOf(current)
    const mine = catalog.mine
    try {
      const [total] = await this.#store.shareCounts([{ key: quotaKey('catalog', bucketName('hour', current)), member: this.#member, count: mine, expireAt: current + 2 * HOUR_MS }])
      catalog.others = Math.max(0, total! - mine)
    } catch {
      // Keep the last known count.
    }
  }
}

function rememberTriple (view: HourView, e: ChatEvent): void {
  let byProvider = view.triples.get(e.model)
  if (byProvider === undefined) view.triples.set(e.model, byProvider = new Map())
  let gateways = byProvider.get(e.provider)
  if (gateways === undefined) byProvider.set(e.provider, gateways = new Set())
  gateways.add(e.gateway)
}
