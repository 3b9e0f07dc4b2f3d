import { bucketExpiry, bucketName, bucketStart, MINUTE_MS, PAIR_MINUTE_RETENTION_MS, type Resolution } from '../metrics/buckets.js'
import { catalogDigest } from '../metrics/catalog.js'
import {
  CHAT_ERROR_TYPES, pairId, tokensPerSecond, VIAS, type ChatEvent, type EntityType, type FetchEvent, type IndexedType, type PairType, type Via
} from '../metrics/events.js'
import { Dist, pairBinField, type PairDist } from '../metrics/histogram.js'
import { entityKey, entityTag, indexKey, indexTag, markerKey, pairKey, type Family } from '../store/keys.js'
import { latestValue } from '../store/merge.js'
import type { FieldOp, GroupWrite, KeyWrite } from '../store/types.js'

interface Latest { ts: number, arrival: number, value: string }

function newer (a: Latest | null, b: Latest | null): Latest | null {
  if (a === null) return b
  if (b === null) return a
  return b.ts > a.ts || (b.ts === a.ts && b.arrival > a.arrival) ? b : a
}

/** Chat figures of one (model, provider, gateway, minute); also the shape of an entity-bucket. */
class ChatAgg {
  /** A combination's own figures, which sealing reads and never changes (see `plus`). */
  readonly ofCombo: boolean
  n = 0
  ok = 0
  readonly err = [0, 0, 0, 0]
  readonly ttft = new Dist()
  readonly total = new Dist()
  readonly tps = new Dist()
  inTok = 0
  outTok = 0
  /**
   * The latest event's time, arrival and provider (models' `last:provider`), as plain fields: one is
   * observed per event, and an object per event would only feed the garbage collector.
   */
  latestTs = -Infinity
  latestArrival = 0
  latestValue = ''

  constructor (ofCombo = false) {
    this.ofCombo = ofCombo
  }

  /** Keeps the later of what is held and this (by event time; on a tie the later arrival). */
  observe (ts: number, arrival: number, value: string): void {
    if (ts > this.latestTs || (ts === this.latestTs && arrival > this.latestArrival)) {
      this.latestTs = ts
      this.latestArrival = arrival
      this.latestValue = value
    }
  }

  merge (o: ChatAgg): void {
    this.n += o.n
    this.ok += o.ok
    for (let i = 0; i < this.err.length; i++) this.err[i]! += o.err[i]!
    this.ttft.merge(o.ttft)
    this.total.merge(o.total)
    this.tps.merge(o.tps)
    this.inTok += o.inTok
    this.outTok += o.outTok
    this.observe(o.latestTs, o.latestArrival, o.latestValue)
  }
}

/** A fetch that carried its model list, with its place in this process's arrivals (`nextCatalogSeq`). */
interface CatalogFetch { ts: number, seq: number, models: readonly string[] }

/**
 * Numbers the fetches that carry a list in the order this process accepts them, across buffers: with
 * the instance id it names each fetch's record apart from every other, even one of the same
 * millisecond, and orders fetches of the same millisecond by arrival.
 */
let catalogSeq = 0
function nextCatalogSeq (): number {
  return ++catalogSeq
}

class FetchAgg {
  n = 0
  err = 0
  timeouts = 0
  readonly rt = new Dist()
  lastCount: Latest | null = null
  /** The lists carried by this combination's fetches. */
  readonly catalogs: CatalogFetch[] = []

  merge (o: FetchAgg): void {
    this.n += o.n
    this.err += o.err
    this.timeouts += o.timeouts
    this.rt.merge(o.rt)
    this.lastCount = newer(this.lastCount, o.lastCount)
    // Model lists are taken from the (gateway, minute) combinations at seal, not from buckets.
  }
}

interface ChatCombo { model: string, provider: string, gateway: string, minute: number, agg: ChatAgg }
interface FetchCombo { gateway: string, minute: number, agg: FetchAgg }

/** One entity's figures in one bucket, built at seal time from the combos. */
interface EntityBucket {
  res: Resolution
  start: number
  chat: ChatAgg | null
  fetch: FetchAgg | null
  /** Provider entities: requests per model, so the summary can count a provider's models. */
  models: Map<string, number> | null
  /** Model entities: the model's figures per gateway and per provider (the pairs). */
  pairs: { gateway: Map<string, ChatAgg>, provider: Map<string, ChatAgg> } | null
}

export interface SealOptions {
  now: number
  retentionHours: number
  instanceId: string
}

/**
 * Every entity's figures go to its minute and hour buckets (a 10-minute bucket is read as the sum of
 * its minutes: src/store/layout.ts). The pairs' activity index has hour buckets only.
 */
const RESOLUTIONS: Resolution[] = ['minute', 'hour']

/**
 * Units of work (a combination merged into its entity-buckets, an entity-bucket turned into key
 * writes) between two pauses of `sealInSteps`: a few hundred microseconds of work.
 */
export const SEAL_STEP = 64

/** model → provider → gateway → minute → combination */
type ChatCombos = Map<string, Map<string, Map<string, Map<number, ChatCombo>>>>

/**
 * The in-process buffer. Events are aggregated per (model, provider, gateway, minute), the
 * combination that determines every key they touch: an event costs a few map look-ups on strings it
 * already holds, and allocates only when its combination (or a histogram bin) is new. Sealing
 * expands the combinations into per-entity, per-bucket writes (model, provider and gateway; minute,
 * 10-minute and hour), so a flush costs Redis work per entity-bucket, never per event.
 */
export class Aggregator {
  readonly #chat: ChatCombos = new Map()
  /** The combinations of `#chat` in the order they came. */
  readonly #chatCombos: ChatCombo[] = []
  readonly #fetch = new Map<string, FetchCombo>()
  /**
   * Ids of the entity-buckets held (each becomes a few keys in the store): a chat event's model,
   * provider and gateway in a minute, a 10-minute and an hour bucket, its two pairs in a minute and an
   * hour bucket; a fetch's gateway in its three buckets, plus one for the model list it may carry.
   */
  readonly entityBucketIds = new Set<string>()
  /** Entity-buckets held that `#besides` does not hold too. */
  #extra = 0
  #besides: ReadonlySet<string>
  #arrival = 0
  /** Events held. */
  events = 0

  /**
   * @param besides the entity-buckets of a batch sealed before this one and not yet written: the
   * two buffers together hold |besides| + `extra` distinct entity-buckets.
   */
  constructor (besides: ReadonlySet<string> = new Set()) {
    this.#besides = besides
  }

  /** Distinct entity-buckets held here and not in `besides`. */
  get extra (): number {
    return this.#extra
  }

  /** The batch sealed before this one has landed: everything held here counts now. */
  forgetBesides (): void {
    this.#besides = new Set()
    this.#extra = this.entityBucketIds.size
  }

  /** How many entity-buckets these events would add to what is held here and in `besides`. */
  newEntityBuckets (chat: readonly ChatEvent[], fetch: readonly FetchEvent[]): number {
    const fresh = new Set<string>()
    const consider = (ids: string[]): void => {
      for (const id of ids) if (!this.entityBucketIds.has(id) && !this.#besides.has(id)) fresh.add(id)
    }
    for (const e of chat) consider(entityBucketIds(Math.floor(e.ts / MINUTE_MS), chatTargets(e)))
    for (const e of fetch) consider(entityBucketIds(Math.floor(e.ts / MINUTE_MS), [['gateway', e.gateway]]))
    // Every model list is a key write of its own.
    return fresh.size + fetch.filter((e) => e.models !== undefined).length
  }

  #hold (ids: string[]): void {
    for (const id of ids) {
      if (this.entityBucketIds.has(id)) continue
      this.entityBucketIds.add(id)
      if (!this.#besides.has(id)) this.#extra++
    }
  }

  get empty (): boolean {
    return this.events === 0
  }

  addChat (e: ChatEvent): void {
    const minute = Math.floor(e.ts / MINUTE_MS)
    let byProvider = this.#chat.get(e.model)
    if (byProvider === undefined) this.#chat.set(e.model, byProvider = new Map())
    let byGateway = byProvider.get(e.provider)
    if (byGateway === undefined) byProvider.set(e.provider, byGateway = new Map())
    let byMinute = byGateway.get(e.gateway)
    if (byMinute === undefined) byGateway.set(e.gateway, byMinute = new Map())
    let combo = byMinute.get(minute)
    if (combo === undefined) {
      combo = { model: e.model, provider: e.provider, gateway: e.gateway, minute, agg: new ChatAgg(true) }
      byMinute.set(minute, combo)
      this.#chatCombos.push(combo)
      this.#hold(entityBucketIds(minute, chatTargets(e)))
    }
    const a = combo.agg
    a.n++
    if (e.success) a.ok++
    else {
      a.err[CHAT_ERROR_TYPES.indexOf(e.errorType ?? 'other')]! += 1
    }
    if (e.ttftMs !== undefined) a.ttft.add(e.ttftMs)
    if (e.totalMs !== undefined) a.total.add(e.totalMs)
    const tps = tokensPerSecond(e)
    if (tps !== undefined) a.tps.add(tps)
    if (e.inputTokens !== undefined) a.inTok += e.inputTokens
    if (e.outputTokens !== undefined) a.outTok += e.outputTokens
    a.observe(e.ts, ++this.#arrival, e.provider)
    this.events++
  }

  addFetch (e: FetchEvent): void {
    const minute = Math.floor(e.ts / MINUTE_MS)
    const key = `${e.gateway}\u0000${minute}`
    let combo = this.#fetch.get(key)
    if (combo === undefined) {
      combo = { gateway: e.gateway, minute, agg: new FetchAgg() }
      this.#fetch.set(key, combo)
      this.#hold(entityBucketIds(minute, [['gateway', e.gateway]]))
    }
    const a = combo.agg
    a.n++
    if (!e.success) {
      a.err++
      if (e.errorType === 'timeout') a.timeouts++
    }
    if (e.responseTimeMs !== undefined) a.rt.add(e.responseTimeMs)
    const arrival = ++this.#arrival
    if (e.success && e.modelCount !== undefined) {
      a.lastCount = newer(a.lastCount, { ts: e.ts, arrival, value: String(e.modelCount) })
    }
    if (e.models !== undefined) {
      a.catalogs.push({ ts: e.ts, seq: nextCatalogSeq(), models: e.models })
      this.#hold([`catalog\u0000${e.gateway}\u0000${arrival}`])
    }
    this.events++
  }

  /** The writes for everything held: one group per entity, one per entity type's index. */
  seal (opts: SealOptions): GroupWrite[] {
    const steps = this.sealInSteps(opts)
    for (;;) {
      const step = steps.next()
      if (step.done === true) return step.value
    }
  }

  /**
   * `seal`, in steps of SEAL_STEP units of work: the generator pauses between steps (its value is the
   * writes when done), so that sealing a large buffer never holds the event loop for long. Nothing
   * may be added to the aggregator meanwhile.
   *
   * Sealing runs in two passes: the combinations are merged into entity-buckets (a unit of work per
   * combination), then each entity-bucket is turned into key writes (a unit per entity-bucket).
   */
  * sealInSteps (opts: SealOptions): Generator<void, GroupWrite[], void> {
    let work = 0
    const entities: SealEntities = new Map()
    for (const c of this.#chatCombos) {
      if (++work % SEAL_STEP === 0) yield
      addChatCombo(entities, c, opts)
    }
    for (const c of this.#fetch.values()) {
      if (++work % SEAL_STEP === 0) yield
      addFetchCombo(entities, c, opts)
    }

    const groups: GroupWrite[] = []
    const index = new ActivityIndex()
    for (const [tag, entity] of entities) {
      const keys: KeyWrite[] = []
      for (const [name, b] of entity.buckets) {
        if (++work % SEAL_STEP === 0) yield
        entityBucketKeys(keys, entity, name, b, index, opts)
      }
      catalogKeys(keys, entity.id, entity.catalogs, opts)
      if (keys.length > 0) groups.push({ marker: markerKey(tag, opts.instanceId), keys })
    }
    groups.push(...index.groups(opts.instanceId))
    return groups
  }
}

// Sealing, first pass: the combinations merged into entity-buckets.

/** An entity being sealed: its buckets by bucket name and, for a gateway, the model lists its fetches carried. */
interface SealEntity { type: EntityType, id: string, buckets: Map<string, EntityBucket>, catalogs: CatalogFetch[] }

/** Entity tag → the entity being sealed, in the order sealing first met them (the order of the groups). */
type SealEntities = Map<string, SealEntity>

/** The entity `type` `id` of `entities`, added when new. */
function entityOf (entities: SealEntities, type: EntityType, id: string): SealEntity {
  const tag = entityTag(type, id)
  let entity = entities.get(tag)
  if (entity === undefined) entities.set(tag, entity = { type, id, buckets: new Map(), catalogs: [] })
  return entity
}

/** The entity's `res` bucket holding `minute`, added when new; null when that bucket has expired already. */
function bucketOf (entities: SealEntities, type: EntityType, id: string, res: Resolution, minute: number, opts: SealOptions): EntityBucket | null {
  const start = bucketStart(res, minute * MINUTE_MS)
  if (bucketExpiry(res, start, opts.retentionHours) <= opts.now) return null
  const buckets = entityOf(entities, type, id).buckets
  const name = bucketName(res, start)
  let b = buckets.get(name)
  if (b === undefined) buckets.set(name, b = { res, start, chat: null, fetch: null, models: null, pairs: null })
  return b
}

/** A chat combination merged into the buckets of its model (with its pairs), provider (with its model counts) and gateway. */
function addChatCombo (entities: SealEntities, c: ChatCombo, opts: SealOptions): void {
  const targets: Array<[EntityType, string]> = [['model', c.model], ['provider', c.provider], ['gateway', c.gateway]]
  for (const res of RESOLUTIONS) {
    for (const [type, id] of targets) {
      const b = bucketOf(entities, type, id, res, c.minute, opts)
      if (b === null) continue
      b.chat = plus(b.chat, c.agg)
      if (type === 'provider') {
        if (b.models === null) b.models = new Map()
        b.models.set(c.model, (b.models.get(c.model) ?? 0) + c.agg.n)
      }
      if (type === 'model') {
        b.pairs ??= { gateway: new Map(), provider: new Map() }
        addPair(b.pairs.gateway, c.gateway, c.agg)
        addPair(b.pairs.provider, c.provider, c.agg)
      }
    }
  }
}

/** A fetch combination merged into its gateway's buckets; the gateway keeps the model lists of the ones whose hour is kept. */
function addFetchCombo (entities: SealEntities, c: FetchCombo, opts: SealOptions): void {
  for (const res of RESOLUTIONS) {
    const b = bucketOf(entities, 'gateway', c.gateway, res, c.minute, opts)
    if (b === null) continue
    if (b.fetch === null) b.fetch = new FetchAgg()
    b.fetch.merge(c.agg)
    if (res === 'hour') entityOf(entities, 'gateway', c.gateway).catalogs.push(...c.agg.catalogs)
  }
}

// Sealing, second pass: each entity-bucket turned into key writes (src/store/keys.ts names the keys).

type Ops = KeyWrite['ops']

/** The entity-bucket being written: where its key writes go, and when its keys expire. */
interface BucketTarget { keys: KeyWrite[], entity: SealEntity, name: string, expireAt: number }

/** The entity-bucket's key of `family` appended, unless it has no ops. */
function addFamily (to: BucketTarget, family: Family, ops: Ops): void {
  if (ops.length > 0) to.keys.push({ key: entityKey(to.entity.type, to.entity.id, family, to.name), expireAt: to.expireAt, ops })
}

/**
 * The key writes of one entity-bucket appended to `keys` (its chat histograms and model counts, its
 * pairs, its fetch times, then its stats hash), and its entries noted in the activity index.
 */
function entityBucketKeys (keys: KeyWrite[], entity: SealEntity, name: string, b: EntityBucket, index: ActivityIndex, opts: SealOptions): void {
  const to: BucketTarget = { keys, entity, name, expireAt: bucketExpiry(b.res, b.start, opts.retentionHours) }
  const stats: Ops = []
  if (b.chat !== null) chatBucketKeys(to, stats, b.chat, b.models, index)
  if (b.pairs !== null) for (const via of VIAS) pairKeys(to, b, via, b.pairs[via], index, opts.now)
  if (b.fetch !== null) fetchBucketKeys(to, stats, b.fetch, index)
  addFamily(to, 'stats', stats)
}

/** Chat figures: their stats ops (a model's with its latest provider), histogram and model-count keys, requests and successes in the index. */
function chatBucketKeys (to: BucketTarget, stats: Ops, a: ChatAgg, models: Map<string, number> | null, index: ActivityIndex): void {
  chatOps(stats, a)
  if (to.entity.type === 'model' && a.latestArrival > 0) stats.push(['l', 'last:provider', latestValue(a.latestTs, a.latestValue)])
  addFamily(to, 'ttft', binOps(a.ttft))
  addFamily(to, 'total', binOps(a.total))
  addFamily(to, 'tps', binOps(a.tps))
  if (models !== null) addFamily(to, 'models', [...models].map(([m, n]) => ['i', m, String(n)]))
  index.addRequests(to.entity.type, to.name, to.expireAt, to.entity.id, a, true)
}

/** Where a model's pairs through a gateway (a provider) are listed: the model's family, and the pair type in the activity index. */
const PAIR_LISTS: Record<Via, { family: Family, type: PairType }> = {
  gateway: { family: 'gateways', type: 'model_gateway' },
  provider: { family: 'providers', type: 'model_provider' }
}

/**
 * A model-bucket's pairs through `via`: in an hour bucket, the model's list of them and their entries
 * in the activity index; then each pair's `stats` and `dists` keys, while the pair's bucket is kept.
 */
function pairKeys (to: BucketTarget, b: EntityBucket, via: Via, pairs: Map<string, ChatAgg>, index: ActivityIndex, now: number): void {
  const { keys, entity, name, expireAt } = to
  // Which gateways (providers) served the model: hour buckets are enough to find them.
  if (b.res === 'hour') {
    addFamily(to, PAIR_LISTS[via].family, [...pairs].map(([other, a]) => ['i', other, String(a.n)]))
    for (const [other, a] of pairs) index.addRequests(PAIR_LISTS[via].type, name, expireAt, pairId(entity.id, other), a, false)
  }
  // A pair's minute buckets serve windows of at most an hour: they are kept that long only.
  const pairExpireAt = b.res === 'minute' ? Math.min(expireAt, b.start + MINUTE_MS + PAIR_MINUTE_RETENTION_MS) : expireAt
  if (pairExpireAt <= now) return
  for (const [other, a] of pairs) {
    const pairStats: Ops = []
    chatOps(pairStats, a)
    keys.push({ key: pairKey(entity.id, via, other, 'stats', name), expireAt: pairExpireAt, ops: pairStats })
    // The three histograms of a pair share one hash (field names: src/metrics/histogram.ts).
    const dists = [...pairBinOps(a.ttft, 'ttft'), ...pairBinOps(a.total, 'total'), ...pairBinOps(a.tps, 'tps')]
    if (dists.length > 0) keys.push({ key: pairKey(entity.id, via, other, 'dists', name), expireAt: pairExpireAt, ops: dists })
  }
}

/** A gateway's fetch figures: their stats ops, its response-time histogram key, its fetches in the index. */
function fetchBucketKeys (to: BucketTarget, stats: Ops, f: FetchAgg, index: ActivityIndex): void {
  stats.push(['i', 'fetch:n', String(f.n)])
  if (f.err > 0) stats.push(['i', 'fetch:err', String(f.err)])
  if (f.timeouts > 0) stats.push(['i', 'fetch:timeout', String(f.timeouts)])
  if (f.lastCount !== null) stats.push(['l', 'last:model_count', latestValue(f.lastCount.ts, f.lastCount.value)])
  distOps(stats, 'fetch_rt', f.rt)
  addFamily(to, 'fetch_rt', binOps(f.rt))
  // The sealer finds a gateway's buckets through the index, fetches and no requests included.
  index.addFetches(to.name, to.expireAt, to.entity.id, f.n)
}

/** One bucket of one type's activity index: its entries per field, and when its keys expire. */
interface IndexBucket { expireAt: number, requests: Ops, successes: Ops, fetches: Ops }

/** The activity index being written: which ids were active in each bucket of each type, with counts. */
class ActivityIndex {
  /** type → bucket name → entries, in the order they came (the order of the groups and keys). */
  readonly #types = new Map<IndexedType, Map<string, IndexBucket>>()

  /** Bucket `name` of the index of `type`, added (expiring at `expireAt`) when new. */
  #bucket (type: IndexedType, name: string, expireAt: number): IndexBucket {
    let buckets = this.#types.get(type)
    if (buckets === undefined) this.#types.set(type, buckets = new Map())
    let ib = buckets.get(name)
    if (ib === undefined) buckets.set(name, ib = { expireAt, requests: [], successes: [], fetches: [] })
    return ib
  }

  /** `id`'s requests in bucket `name`, and its successes too when `withSuccesses` (pairs have none). */
  addRequests (type: IndexedType, name: string, expireAt: number, id: string, a: ChatAgg, withSuccesses: boolean): void {
    const ib = this.#bucket(type, name, expireAt)
    ib.requests.push(['i', id, String(a.n)])
    if (withSuccesses && a.ok > 0) ib.successes.push(['i', id, String(a.ok)])
  }

  /** Gateway `id`'s `n` fetches in bucket `name`. */
  addFetches (name: string, expireAt: number, id: string, n: number): void {
    this.#bucket('gateway', name, expireAt).fetches.push(['i', id, String(n)])
  }

  /** One group per indexed type: per bucket, its requests, fetches and successes keys. */
  groups (instanceId: string): GroupWrite[] {
    const groups: GroupWrite[] = []
    for (const [type, buckets] of this.#types) {
      const keys: KeyWrite[] = []
      for (const [name, ib] of buckets) {
        if (ib.requests.length > 0) keys.push({ key: indexKey(type, 'requests', name), expireAt: ib.expireAt, ops: ib.requests })
        if (ib.fetches.length > 0) keys.push({ key: indexKey(type, 'fetches', name), expireAt: ib.expireAt, ops: ib.fetches })
        if (ib.successes.length > 0) keys.push({ key: indexKey(type, 'successes', name), expireAt: ib.expireAt, ops: ib.successes })
      }
      groups.push({ marker: markerKey(indexTag(type), instanceId), keys })
    }
    return groups
  }
}

/** The entities a chat event counts towards, its pairs included. */
function chatTargets (e: ChatEvent): Array<[IndexedType, string]> {
  return [['model', e.model], ['provider', e.provider], ['gateway', e.gateway], ['model_gateway', pairId(e.model, e.gateway)], ['model_provider', pairId(e.model, e.provider)]]
}

/**
 * `sum` with `add` added. Most entity-buckets take the figures of one combination only (a model in
 * its minute, a model × gateway pair): they share the combination's figures instead of copying
 * them, and a copy is made when a second combination comes. Combinations' figures are never changed.
 */
function plus (sum: ChatAgg | null | undefined, add: ChatAgg): ChatAgg {
  if (sum === null || sum === undefined) return add
  if (sum.ofCombo) {
    const copy = new ChatAgg()
    copy.merge(sum)
    sum = copy
  }
  sum.merge(add)
  return sum
}

function addPair (pairs: Map<string, ChatAgg>, other: string, agg: ChatAgg): void {
  pairs.set(other, plus(pairs.get(other), agg))
}

/** The counters, sums and extremes of chat figures in a stats hash. */
function chatOps (stats: KeyWrite['ops'], a: ChatAgg): void {
  stats.push(['i', 'n', String(a.n)])
  if (a.ok > 0) stats.push(['i', 'ok', String(a.ok)])
  CHAT_ERROR_TYPES.forEach((t, i) => { if (a.err[i]! > 0) stats.push(['i', `err:${t}`, String(a.err[i])]) })
  if (a.inTok > 0) stats.push(['s', 'tokens:in', String(a.inTok)])
  if (a.outTok > 0) stats.push(['s', 'tokens:out', String(a.outTok)])
  distOps(stats, 'ttft', a.ttft)
  distOps(stats, 'total', a.total)
  distOps(stats, 'tps', a.tps)
}

/**
 * A gateway's model lists: each distinct list once, named by its digest (its ids as fields; kept
 * for the retention from now, so a list outlives every fetch that names it), and each fetch as
 * `last:<time>:<instance>:<arrival>` → time + digest in the hour bucket of the fetch (see
 * `catalogFetchField`): fetches of the same millisecond (a batch sent without times) stay apart.
 */
function catalogKeys (keys: KeyWrite[], gateway: string, catalogs: readonly CatalogFetch[], opts: SealOptions): void {
  const lists = new Map<string, readonly string[]>()
  const fetches = new Map<string, KeyWrite>()
  for (const c of catalogs) {
    // Only fetches whose hour bucket is still kept get here (seal skips the others).
    const hour = bucketStart('hour', c.ts)
    const expireAt = bucketExpiry('hour', hour, opts.retentionHours)
    const digest = catalogDigest(c.models)
    lists.set(digest, c.models)
    const name = bucketName('hour', hour)
    let kw = fetches.get(name)
    if (kw === undefined) fetches.set(name, kw = { key: entityKey('gateway', gateway, 'catalog_fetches', name), expireAt, ops: [] })
    kw.ops.push(['l', catalogFetchField(c.ts, opts.instanceId, c.seq), latestValue(c.ts, digest)])
  }
  const listExpiry = bucketExpiry('hour', bucketStart('hour', opts.now), opts.retentionHours)
  // An empty list has no fields to keep: reading its digest finds none, which is the same answer.
  for (const [digest, models] of lists) if (models.length > 0) keys.push({ key: entityKey('gateway', gateway, 'catalog', digest), expireAt: listExpiry, ops: models.map((m) => ['M', m, '1']) })
  keys.push(...fetches.values())
}

/**
 * The field of one fetch in `catalog_fetches`: `last:` (a latest-value field, so a re-sent write lands
 * once), its time (15 digits), then the instance and its arrival number, which name it apart from
 * every other fetch and order those of one millisecond (src/read/catalog.ts reads them). Fields of
 * the time alone (`last:<time>`) were written before and are still read.
 */
export function catalogFetchField (ts: number, instanceId: string, seq: number): string {
  return `last:${latestValue(ts, '')}:${instanceId}:${seq}`
}

/** Ids of the entity-buckets of `entities` at `minute`: its minute and its hour. */
function entityBucketIds (minute: number, entities: Array<[IndexedType, string]>): string[] {
  const hour = Math.floor(minute / 60)
  const ids: string[] = []
  for (const [type, id] of entities) {
    ids.push(`${type}\u0000${id}\u0000m${minute}`, `${type}\u0000${id}\u0000h${hour}`)
  }
  return ids
}

function distOps (ops: Array<[FieldOp, string, string]>, name: string, d: Dist): void {
  if (d.n === 0) return
  ops.push(['i', `${name}:n`, String(d.n)], ['s', `${name}:sum`, String(d.sum)], ['m', `${name}:min`, String(d.min)], ['M', `${name}:max`, String(d.max)])
}

function binOps (d: Dist): KeyWrite['ops'] {
  const ops: KeyWrite['ops'] = []
  for (const [bin, c] of d.bins) ops.push(['i', String(bin), String(c)])
  return ops
}

function pairBinOps (d: Dist, name: PairDist): KeyWrite['ops'] {
  const ops: KeyWrite['ops'] = []
  for (const [bin, c] of d.bins) ops.push(['i', pairBinField(name, bin), String(c)])
  return ops
}
