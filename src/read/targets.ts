import type { Bucket } from '../metrics/buckets.js'
import type { EntityType, Via } from '../metrics/events.js'
import { pairBins, type PairDist } from '../metrics/histogram.js'
import { entityKey, pairKey, type Family } from '../store/keys.js'
import type { Fields, MergeRead } from '../store/types.js'

/**
 * What a read is about: an entity (model, provider, gateway), or a model through one gateway or
 * served by one provider (a pair, whose keys live in the model's hash slot). Every key of one target
 * shares one hash slot, so each MergeRead stays within one slot.
 */
export type Target =
  | { type: EntityType, id: string }
  | { model: string, via: Via, id: string }

export function keyOf (target: Target, family: Family, bucket: string): string {
  return 'type' in target ? entityKey(target.type, target.id, family, bucket) : pairKey(target.model, target.via, target.id, family, bucket)
}

/** Families whose fields are ids or bins: merged by adding whatever the field's name. */
const COUNTER_FAMILIES = new Set<Family>(['ttft', 'total', 'tps', 'fetch_rt', 'models', 'gateways', 'providers', 'catalog', 'dists'])

/** Where a distribution's bins are in a read's result: a slot of its own, or a share of a pair's `dists` slot. */
export interface DistRef { slot: number, pair: PairDist | null }

/** The bins of one distribution from a read's result slots. */
export function binsIn (slots: readonly Fields[], ref: DistRef): Fields {
  const fields = slots[ref.slot]!
  return ref.pair === null ? fields : pairBins(fields, ref.pair)
}

/**
 * A MergeRead being built, one result slot at a time: `add(keys, counters)` adds a slot holding
 * `keys` merged and returns its index. Reads are built with one: a ReadPlan for one target's
 * families, a plain MergePlan for the activity index or for several targets merged into one slot.
 */
export class MergePlan {
  readonly read: MergeRead = { keys: [], slots: [], nSlots: 0, counters: [] }

  /** `counters`: every field of these keys is added, whatever its name (see MergeRead). */
  add (keys: readonly string[], counters: boolean): number {
    const slot = this.read.nSlots++
    for (const key of keys) {
      this.read.keys.push(key)
      this.read.slots.push(slot)
      this.read.counters!.push(counters)
    }
    return slot
  }

  /** A slot holding `family` of every target of `targets` merged over `buckets`. */
  merge (targets: readonly Target[], family: Family, buckets: ReadonlyArray<Pick<Bucket, 'name'>>): number {
    return this.add(targets.flatMap((t) => buckets.map((b) => keyOf(t, family, b.name))), COUNTER_FAMILIES.has(family))
  }
}

/**
 * The read of one target: `slot(family, buckets)` adds one result slot holding the target's `family`
 * merged over `buckets` and returns its index.
 */
export class ReadPlan extends MergePlan {
  /** A pair's `dists` slot per list of buckets: its three distributions are read once. */
  readonly #dists = new Map<string, number>()
  constructor (readonly target: Target) {
    super()
  }

  /** The bins of distribution `name` over `buckets`: its own family for an entity, the pair's `dists` otherwise. */
  dist (name: PairDist, buckets: ReadonlyArray<Pick<Bucket, 'name'>>): DistRef {
    if ('type' in this.target) return { slot: this.slot(name, buckets), pair: null }
    const key = buckets.map((b) => b.name).join(',')
    let slot = this.#dists.get(key)
    if (slot === undefined) this.#dists.set(key, slot = this.slot('dists', buckets))
    return { slot, pair: name }
  }

  slot (family: Family, buckets: ReadonlyArray<Pick<Bucket, 'name'>>): number {
    return this.add(buckets.map((b) => keyOf(this.target, family, b.name)), COUNTER_FAMILIES.has(family))
  }
}
