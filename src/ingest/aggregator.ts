import { bucketExpiry, bucketName, bucketStart, MINUTE_MS, PAIR_MINUTE_RETENTION_MS, type Resolution } from '../metrics/buckets.js'
import { catalogDigest } from '../metrics/catalog.js'
import { CHAT_ERROR_TYPES, pairId, tokensPerSecond, type ChatEvent, type EntityType, type FetchEvent, type IndexedType } from '../metrics/events.js'
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
   */
  * sealInSteps (opts: SealOptions): Generator<void, GroupWrite[], void> {
    let work = 0
    // entity tag → bucket name → figures
    const entities = new Map<string, { type: EntityType, id: string, buckets: Map<string, EntityBucket>, catalogs: CatalogFetch[] }>()
    const bucketOf = (type: EntityType, id: string, res: Resolution, minute: number): EntityBucket | null => {
      const start = bucketStart(res, minute * MINUTE_MS)
      if (bucketExpiry(res, start, opts.retentionHours) <= opts.now) return null
      const tag = entityTag(type, id)
      let entity = entities.get(tag)
      if (entity === undefined) {
        entity = { type, id, buckets: new Map(), catalogs: [] }
        entities.set(tag, entity)
      }
      const name = bucketName(res, start)
      let b = entity.buckets.get(name)
      if (b === undefined) {
        b = { res, start, chat: null, fetch: null, models: null, pairs: null }
        entity.buckets.set(name, b)
      }
      return b
    }

    for (const c of this.#chatCombos) {
      if (++work % SEAL_STEP === 0) yield
      for (const res of RESOLUTIONS) {
        const targets: Array<[EntityType, string]> = [['model', c.model], ['provider', c.provider], ['gateway', c.gateway]]
        for (const [type, id] of targets) {
          const b = bucketOf(type, id, res, c.minute)
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
    for (const c of this.#fetch.values()) {
      if (++work % SEAL_STEP === 0) yield
      for (const res of RESOLUTIONS) {
        const b = bucketOf('gateway', c.gateway, res, c.minute)
        if (b === null) continue
        if (b.fetch === null) b.fetch = new FetchAgg()
        b.fetch.merge(c.agg)
        if (res === 'hour') entities.get(entityTag('gateway', c.gateway))!.catalogs.push(...c.agg.catalogs)
      }
    }

    const groups: GroupWrite[] = []
    const index = new Map<IndexedType, Map<string, { expireAt: number, requests: KeyWrite['ops'], successes: KeyWrite['ops'], fetches: KeyWrite['ops'] }>>()
    const indexOf = (type: IndexedType, name: string, expireAt: number): { requests: KeyWrite['ops'], successes: KeyWrite['ops'], fetches: KeyWrite['ops'] } => {
      let idx = index.get(type)
      if (idx === undefined) index.set(type, idx = new Map())
      let ib = idx.get(name)
      if (ib === undefined) idx.set(name, ib = { expireAt, requests: [], successes: [], fetches: [] })
      return ib
    }
    const indexAdd = (type: IndexedType, name: string, expireAt: number, id: string, a: ChatAgg, withSuccesses: boolean): void => {
      const ib = indexOf(type, name, expireAt)
      ib.requests.push(['i', id, String(a.n)])
      if (withSuccesses && a.ok > 0) ib.successes.push(['i', id, String(a.ok)])
    }
    for (const [tag, entity] of entities) {
      const keys: KeyWrite[] = []
      for (const [name, b] of entity.buckets) {
        if (++work % SEAL_STEP === 0) yield
        const expireAt = bucketExpiry(b.res, b.start, opts.retentionHours)
        const add = (family: Family, ops: KeyWrite['ops']): void => {
          if (ops.length > 0) keys.push({ key: entityKey(entity.type, entity.id, family, name), expireAt, ops })
        }
        const stats: KeyWrite['ops'] = []
        if (b.chat !== null) {
          const a = b.chat
          chatOps(stats, a)
          if (entity.type === 'model' && a.latestArrival > 0) stats.push(['l', 'last:provider', latestValue(a.latestTs, a.latestValue)])
          add('ttft', binOps(a.ttft))
          add('total', binOps(a.total))
          add('tps', binOps(a.tps))
          if (b.models !== null) add('models', [...b.models].map(([m, n]) => ['i', m, String(n)]))
          indexAdd(entity.type, name, expireAt, entity.id, a, true)
        }
        if (b.pairs !== null) {
          for (const kind of ['gateway', 'provider'] as const) {
            const pairs = b.pairs[kind]
            // Which gateways (providers) served the model: hour buckets are enough to find them.
            if (b.res === 'hour') {
              add(kind === 'gateway' ? 'gateways' : 'providers', [...pairs].map(([other, a]) => ['i', other, String(a.n)]))
              for (const [other, a] of pairs) indexAdd(kind === 'gateway' ? 'model_gateway' : 'model_provider', name, expireAt, pairId(entity.id, other), a, false)
            }
            // A pair's minute buckets serve windows of at most an hour: they are kept that long only.
            const pairExpireAt = b.res === 'minute' ? Math.min(expireAt, b.start + MINUTE_MS + PAIR_MINUTE_RETENTION_MS) : expireAt
            if (pairExpireAt <= opts.now) continue
            for (const [other, a] of pairs) {
              const pairStats: KeyWrite['ops'] = []
              chatOps(pairStats, a)
              keys.push({ key: pairKey(entity.id, kind, other, 'stats', name), expireAt: pairExpireAt, ops: pairStats })
              // The three histograms of a pair share one hash (field names: src/metrics/histogram.ts).
              const dists = [...pairBinOps(a.ttft, 'ttft'), ...pairBinOps(a.total, 'total'), ...pairBinOps(a.tps, 'tps')]
              if (dists.length > 0) keys.push({ key: pairKey(entity.id, kind, other, 'dists', name), expireAt: pairExpireAt, ops: dists })
            }
          }
        }
        if (b.fetch !== null) {
          const f = b.fetch
          stats.push(['i', 'fetch:n', String(f.n)])
          if (f.err > 0) stats.push(['i', 'fetch:err', String(f.err)])
          if (f.timeouts > 0) stats.push(['i', 'fetch:timeout', String(f.timeouts)])
          if (f.lastCount !== null) stats.push(['l', 'last:model_count', latestValue(f.lastCount.ts, f.lastCount.value)])
          distOps(stats, 'fetch_rt', f.rt)
          add('fetch_rt', binOps(f.rt))
          // The sealer finds a gateway's buckets through the index, fetches and no requests included.
          indexOf('gateway', name, expireAt).fetches.push(['i', entity.id, String(f.n)])
        }
        add('stats', stats)
      }
      catalogKeys(keys, entity.id, entity.catalogs, opts)
      if (keys.length > 0) groups.push({ marker: markerKey(tag, opts.instanceId), keys })
    }
    for (const [type, buckets] of index) {
      const keys: KeyWrite[] = []
      for (const [name, ib] of buckets) {
        if (ib.requests.length > 0) keys.push({ key: indexKey(type, 'requests', name), expireAt: ib.expireAt, ops: ib.requests })
        if (ib.fetches.length > 0) keys.push({ key: indexKey(type, 'fetches', name), expireAt: ib.expireAt, ops: ib.fetches })
        if (ib.successes.length > 0) keys.push({ key: indexKey(type, 'successes', name), expireAt: ib.expireAt, ops: ib.successes })
      }
      groups.push({ marker: markerKey(indexTag(type), opts.instanceId), keys })
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
