import type { EntityType } from '../metrics/events.js'

/**
 * The Redis key schema (docs/design.md). Every key of one entity carries the entity inside `{…}`, so
 * in a Redis Cluster all of them share one hash slot and one flush script can update them together.
 * `%`, `{` and `}` in ids are percent-encoded, so an id can neither end the hash tag early nor forge
 * another entity's key; every other character (`/`, `:`) is kept, so keys stay readable.
 */
export const KEY_PREFIX = 'metrics:'
/** Rate-limit counters live apart from the metrics: a rejected request leaves no key under `metrics:`. */
export const RATE_LIMIT_PREFIX = 'metrics-ratelimit:'

export function encodeId (id: string): string {
  return /[%{}]/.test(id) ? id.replace(/[%{}]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()) : id
}

export function entityTag (type: EntityType, id: string): string {
  return `${KEY_PREFIX}${type}:{${encodeId(id)}}`
}

/** Families of keys per entity-bucket. `stats` holds counters, sums, min/max and latest values. */
export type Family = 'stats' | 'ttft' | 'total' | 'tps' | 'models' | 'fetch_rt'

export function entityKey (type: EntityType, id: string, family: Family, bucket: string): string {
  return `${entityTag(type, id)}:${family}:${bucket}`
}

/** Per-type activity index: which ids had requests (and successes) in a bucket, with counts. */
export type IndexField = 'requests' | 'successes'

export function indexTag (type: EntityType): string {
  return `${KEY_PREFIX}index:{${type}}`
}

export function indexKey (type: EntityType, field: IndexField, bucket: string): string {
  return `${indexTag(type)}:${field}:${bucket}`
}

/** The marker holding the last flush sequence an instance applied to a group (same slot as the group). */
export function markerKey (groupTag: string, instanceId: string): string {
  return `${groupTag}:flushed:${instanceId}`
}
