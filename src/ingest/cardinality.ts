import { bucketName, bucketStart } from '../metrics/buckets.js'
import { pairId, type ChatEvent, type EntityType, type FetchEvent, type IndexedType, type PairType } from '../metrics/events.js'
import { indexKey } from '../store/keys.js'
import type { MetricsStore } from '../store/types.js'

export interface Refused { type: IndexedType, id: string, limit: number }

const TYPES = ['model', 'provider', 'gateway', 'model_gateway', 'model_provider'] as const satisfies readonly IndexedType[]
const noIds = (): Record<IndexedType, Set<string>> => ({ model: new Set(), provider: new Set(), gateway: new Set(), model_gateway: new Set(), model_provider: new Set() })

/** What a refusal says, naming the variable that sets the limit. */
export function refusalMessage (r: Refused): string {
  const variable = `METRICS_MAX_${r.type.toUpperCase()}S`
  const what = r.type === 'model_gateway' || r.type === 'model_provider'
    ? `${r.type === 'model_gateway' ? 'model × gateway' : 'model × provider'} pair ${JSON.stringify(r.id.slice(0, r.id.indexOf(' ')))} × ${JSON.stringify(r.id.slice(r.id.indexOf(' ') + 1))} would exceed the limit of ${r.limit} distinct pairs`
    : `${r.type} ${JSON.stringify(r.id)} would exceed the limit of ${r.limit} distinct ${r.type}s`
  return `${what} this hour (${variable}); events for known ones are still accepted`
}

/**
 * The cardinality guard: at most `max[type]` distinct models (providers, gateways, model × gateway
 * and model × provider pairs) per hour bucket, shared through the store. Ids already seen this
 * hour, here or by any instance (the store's activity index), always pass; a new id passes while the
 * hour has room. The view of other instances' ids is refreshed after each flush, so each instance may
 * overshoot by the new ids it admits between two refreshes. Counted by arrival time: an event with a
 * past timestamp counts towards the current hour.
 */
export class CardinalityGuard {
  readonly #max: Record<IndexedType, number>
  readonly #store: MetricsStore
  readonly #now: () => number
  /** Start (epoch ms) of the hour the known ids belong to. */
  #hourStart = -1
  #known = noIds()
  /**
   * Model → provider → gateways of events whose five ids were all known this hour: the common case
   * answered by three look-ups of strings the request already holds, without building pair ids.
   * Ids are never forgotten within an hour, so an entry stays true until the hour turns.
   */
  #knownTriples = new Map<string, Map<string, Set<string>>>()
  /** Events refused since start, by type. */
  readonly refused: Record<IndexedType, number> = { model: 0, provider: 0, gateway: 0, model_gateway: 0, model_provider: 0 }

  /** Pair limits left out are not enforced beyond what the model and gateway limits imply. */
  constructor (store: MetricsStore, max: Record<EntityType, number> & Partial<Record<PairType, number>>, now: () => number = Date.now) {
    this.#store = store
    this.#max = { model_gateway: Infinity, model_provider: Infinity, ...max }
    this.#now = now
  }

  /** Starts afresh when the hour turns; a number compare per request, the name only when asked. */
  #rollHour (): number {
    const hourStart = bucketStart('hour', this.#now())
    if (hourStart !== this.#hourStart) {
      this.#hourStart = hourStart
      this.#known = noIds()
      this.#knownTriples = new Map()
    }
    return hourStart
  }

  /**
   * Admits the ids of a whole request, or none of them: the first id beyond a limit is returned and
   * nothing is recorded as known.
   */
  admit (chat: readonly ChatEvent[], fetch: readonly FetchEvent[] = []): Refused | null {
    this.#rollHour()
    if (this.#allKnown(chat, fetch)) return null
    const fresh = noIds()
    const check = (type: IndexedType, id: string): Refused | null => {
      const known = this.#known[type]
      if (known.has(id) || fresh[type].has(id)) return null
      if (known.size + fresh[type].size >= this.#max[type]) return { type, id, limit: this.#max[type] }
      fresh[type].add(id)
      return null
    }
    for (const e of chat) {
      const refused = check('model', e.model) ?? check('provider', e.provider) ?? check('gateway', e.gateway) ??
        check('model_gateway', pairId(e.model, e.gateway)) ?? check('model_provider', pairId(e.model, e.provider))
      if (refused !== null) {
        this.refused[refused.type] += chat.length + fetch.length
        return refused
      }
    }
    for (const e of fetch) {
      const refused = check('gateway', e.gateway)
      if (refused !== null) {
        this.refused.gateway += chat.length + fetch.length
        return refused
      }
    }
    for (const type of TYPES) for (const id of fresh[type]) this.#known[type].add(id)
    return null
  }

  /** The common case, without the bookkeeping: every id of the request is already known this hour. */
  #allKnown (chat: readonly ChatEvent[], fetch: readonly FetchEvent[]): boolean {
    const { model, provider, gateway, model_gateway: modelGateway, model_provider: modelProvider } = this.#known
    for (const e of chat) {
      if (this.#knownTriples.get(e.model)?.get(e.provider)?.has(e.gateway) === true) continue
      if (!model.has(e.model) || !provider.has(e.provider) || !gateway.has(e.gateway)) return false
      if (!modelGateway.has(pairId(e.model, e.gateway)) || !modelProvider.has(pairId(e.model, e.provider))) return false
      this.#rememberTriple(e)
    }
    for (const e of fetch) if (!gateway.has(e.gateway)) return false
    return true
  }

  #rememberTriple (e: ChatEvent): void {
    let byProvider = this.#knownTriples.get(e.model)
    if (byProvider === undefined) this.#knownTriples.set(e.model, byProvider = new Map())
    let gateways = byProvider.get(e.provider)
    if (gateways === undefined) byProvider.set(e.provider, gateways = new Set())
    gateways.add(e.gateway)
  }

  /** Learns the ids every instance has written for the current hour. Never rejects. */
  async refresh (): Promise<void> {
    const hour = bucketName('hour', this.#rollHour())
    try {
      const names = await this.#store.fieldNames(TYPES.map((type) => indexKey(type, 'requests', hour)))
      // Had the hour turned meanwhile, the new hour would start with the old one's ids: generous, harmless.
      TYPES.forEach((type, i) => { for (const id of names[i]!) this.#known[type].add(id) })
    } catch {
      // The store is down: keep the local view; the flusher reports the outage.
    }
  }
}
