import type { EntityType, IndexedType } from '../metrics/events.js'

/**
 * The Redis key schema (docs/design.md). Every key of one entity carries the entity inside `{…}`, so
 * in a Redis Cluster all of them share one hash slot and one flush script can update them together.
 * `%`, `{` and `}` in ids are percent-encoded, so an id can neither end the hash tag early nor forge
 * another entity's key; every other character (`/`, `:`) is kept, so keys stay readable.
 */
export const KEY_PREFIX = 'metrics:'
/** Rate-limit counters live apart from the metrics: a rejected request leaves no key under `metrics:`. */
export const RATE_LIMIT_PREFIX = 'metrics-ratelimit:'

/** Claimed (`MetricsStore.claim`) by the instance that runs period `period` of a periodic job. */
export function jobKey (job: string, period: number): string {
  return `${KEY_PREFIX}job:{${job}}:${period}`
}

export function encodeId (id: string): string {
  return /[%{}]/.test(id) ? id.replace(/[%{}]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()) : id
}

export function entityTag (type: EntityType, id: string): string {
  return `${KEY_PREFIX}${type}:{${encodeId(id)}}`
}

/**
 * Families of keys per entity-bucket. `stats` holds counters, sums, min/max and latest values.
 * Models also keep `gateways` and `providers` (id → requests, hour buckets) and, per gateway and per
 * provider, the pair's own `stats` and `dists` (its three histograms in one hash, see
 * src/metrics/histogram.ts; pairKey). Any entity keeps its state changes
 * in `status` (hour buckets); gateways keep their model lists in `catalog` (one key per distinct list,
 * named by the list's digest) and the fetches that carried one in `catalog_fetches` (hour buckets).
 */
export type Family = 'stats' | 'ttft' | 'total' | 'tps' | 'models' | 'fetch_rt' | 'gateways' | 'providers' | 'status' | 'catalog' | 'catalog_fetches' | 'dists'

export function entityKey (type: EntityType, id: string, family: Family, bucket: string): string {
  return `${entityTag(type, id)}:${family}:${bucket}`
}

/**
 * A model seen through one gateway (or served by one provider): its keys share the model's hash tag,
 * so they are written by the model's flush script and a comparison of one model reads one slot. The
 * family and bucket never hold a `:`, so the key still names one (model, gateway) pair only.
 */
export function pairKey (model: string, kind: 'gateway' | 'provider', other: string, family: Family, bucket: string): string {
  return `${entityTag('model', model)}:${kind}:${encodeId(other)}:${family}:${bucket}`
}

/**
 * Per-type activity index: which ids had requests (and successes) in a bucket, with counts; for
 * gateways also the fetches of model lists (which the sealer must find: a gateway may have fetches
 * and no requests).
 */
export type IndexField = 'requests' | 'successes' | 'fetches'

export function indexTag (type: IndexedType): string {
  return `${KEY_PREFIX}index:{${type}}`
}

export function indexKey (type: IndexedType, field: IndexField, bucket: string): string {
  return `${indexTag(type)}:${field}:${bucket}`
}

/** The marker holding the last flush sequence an instance applied to a group (same slot as the group). */
export function markerKey (groupTag: string, instanceId: string): string {
  return `${groupTag}:flushed:${instanceId}`
}

/**
 * The claim of an idempotency key sent with a recording request (`route`: chat or fetch). The key is
 * the hash tag, so claims spread over a cluster's slots.
 */
export function idempotencyKey (route: 'chat' | 'fetch', key: string): string {
  return `${KEY_PREFIX}idem:{${route}:${encodeId(key)}}`
}

/**
 * A per-hour counter the instances share (instance → its count; `MetricsStore.shareCounts`), for a
 * cap the activity index cannot tell: the entries of gateways' model lists stored in the hour.
 */
export function quotaKey (name: 'catalog', hour: string): string {
  return `${KEY_PREFIX}quota:{${name}}:${hour}`
}
