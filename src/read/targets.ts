import type { Bucket } from '../metrics/buckets.js'
import type { EntityType } from '../metrics/events.js'
import { entityKey, pairKey, type Family } from '../store/keys.js'
import type { MergeRead } from '../store/types.js'

/**
 * What a read is about: an entity (model, provider, gateway), or a model through one gateway or
 * served by one provider (a pair, whose keys live in the model's hash slot). Every key of one target
 * shares one hash slot, so each MergeRead stays within one slot.
 */
export type Target =
  | { type: EntityType, id: string }
  | { model: string, via: 'gateway' | 'provider', id: string }

export function keyOf (target: Target, family: Family, bucket: string): string {
  return 'type' in target ? entityKey(target.type, target.id, family, bucket) : pairKey(target.model, target.via, target.id, family, bucket)
}

/** Families whose fields are ids or bins: merged by adding whatever the field's name. */
const COUNTER_FAMILIES = new Set<Family>(['ttft', 'total', 'tps', 'fetch_rt', 'models', 'gateways', 'providers', 'catalog'])

/**
 * A MergeRead being built: `slot(family, buckets)` adds one result slot holding `family` merged over
 * `buckets` and returns its index.
 */
export class ReadPlan {
  readonly read: MergeRead = { keys: [], slots: [], nSlots: 0, counters: [] }
  constructor (readonly target: Target) {}

  slot (family: Family, buckets: ReadonlyArray<Pick<Bucket, 'name'>>): number {
    const slot = this.read.nSlots++
    for (const b of buckets) {
      this.read.keys.push(keyOf(this.target, family, b.name))
      this.read.slots.push(slot)
      this.read.counters!.push(COUNTER_FAMILIES.has(family))
    }
    return slot
  }
}
