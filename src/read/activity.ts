import type { Bucket } from '../metrics/buckets.js'
import type { EntityType } from '../metrics/events.js'
import { indexKey, type IndexField } from '../store/keys.js'
import type { Fields } from '../store/types.js'
import type { StoreReader } from './budget.js'
import { num } from './decode.js'
import { MergePlan } from './targets.js'
import type { ResolvedWindow } from './window.js'

export interface Activity { id: string, requests: number, successes: number }

/**
 * Ids starting with this are the operator's probes (`llm-gateway-metrics check`): readable by id,
 * never listed (leaderboard, provider summary, exports).
 */
export const RESERVED_ID_PREFIX = '__check__'

/**
 * The activity index of `type` over `buckets`, merged: per field of `fields`, each id with counts in
 * those buckets → its count. One read of the per-bucket index hashes (written by the same flushes as
 * the entities), never a keyspace scan.
 */
export async function readIndex (store: StoreReader, type: EntityType, fields: readonly IndexField[], buckets: ReadonlyArray<Pick<Bucket, 'name'>>): Promise<Fields[]> {
  const plan = new MergePlan()
  for (const field of fields) plan.add(buckets.map((b) => indexKey(type, field, b.name)), true)
  const [counts] = await store.read([plan.read]) as [Fields[]]
  return counts
}

/** Listed ids of `type` with requests in the window, with their requests and successes. */
export async function readActivity (store: StoreReader, type: 'model' | 'provider', w: ResolvedWindow): Promise<Activity[]> {
  const [requests, successes] = await readIndex(store, type, ['requests', 'successes'], w.buckets) as [Fields, Fields]
  return Object.entries(requests)
    .filter(([id]) => !id.startsWith(RESERVED_ID_PREFIX))
    .map(([id, n]) => ({ id, requests: Number(n), successes: num(successes, id) }))
}
