import { decodeMulti } from '@msgpack/msgpack'
import { bucketName, bucketStart, HOUR_MS, MINUTE_MS, TEN_MINUTES_MS } from '../metrics/buckets.js'
import type { EntityType, IndexedType } from '../metrics/events.js'
import { PAIR_DISTS, PAIR_ZERO, ZERO_BIN } from '../metrics/histogram.js'
import { KEY_PREFIX, entityKey, indexKey, pairKey, type Family, type IndexField } from './keys.js'

/**
 * The stored layout, version 2 (docs/design.md, "Sealed blocks").
 *
 * Live buckets are hashes, written by the flush (src/store/keys.ts names them). Once a bucket is
 * closed, the sealer moves every live hash of one hash tag and one period into one **block**: a string
 * key `<tag>:sealed:<period>` holding MessagePack snapshots, one after the other. A period is an hour
 * (the tag's hour buckets) or an aligned 10 minutes (its ten minute buckets). A snapshot is a map
 * sub-bucket → part → the hash's fields and values as one flat array;
 * integers are stored as MessagePack integers, everything else as strings.
 *
 * A read of a bucket reads its live hash and its block's part in one script call (atomic, so a seal
 * between them can neither hide nor double a figure) and merges them: a write that comes after the
 * seal lands in a live hash beside the block and is read with it; the next seal appends it.
 */
export const LAYOUT_VERSION = 2

/** Says which layout the store holds (a decimal version); refreshed by every instance that writes. */
export const SCHEMA_KEY = `${KEY_PREFIX}schema`
/** How long the schema key outlives the last instance that refreshed it. */
export const SCHEMA_TTL_MS = 30 * 24 * HOUR_MS

/** Names of the buckets that are written (src/metrics/buckets.ts): hour `YYYY-MM-DD-HH`, minute `…-mm`. */
const BUCKET = /^(\d{4}-\d{2}-\d{2}-\d{2})(?:-(\d)(\d))?$/

/**
 * Short names of the parts in a block (the hash's family, or an index's field): they are written in
 * every snapshot, so a byte saved here is saved per bucket and entity.
 */
const PART_CODES: Record<string, string> = {
  stats: 's',
  ttft: 't',
  total: 'T',
  tps: 'p',
  fetch_rt: 'f',
  models: 'm',
  gateways: 'g',
  providers: 'P',
  status: 'S',
  catalog_fetches: 'c',
  dists: 'd',
  requests: 'r',
  successes: 'o',
  fetches: 'F'
}

export interface Location {
  /** The block key holding the bucket once sealed. */
  block: string
  /** The tag's seal index (`sealsKey`), and the block's period in it. */
  seals: string
  period: string
  /** The bucket within the block: `h` for an hour block, the minute's last digit for a 10-minute block. */
  sub: string
  /** The hash within the bucket. */
  part: string
}

function partCode (rest: string): string {
  const colon = rest.lastIndexOf(':')
  const family = rest.slice(colon + 1)
  const code = PART_CODES[family] ?? family
  if (colon < 0) return code
  // A pair: `gateway:<id>:<family>` or `provider:<id>:<family>`.
  return (rest.startsWith('gateway:') ? 'g' : rest.startsWith('provider:') ? 'p' : rest.slice(0, rest.indexOf(':'))) + rest.slice(rest.indexOf(':'), colon + 1) + code
}

/**
 * Where a live hash goes when sealed, or null for keys that are never sealed (markers, claims, model
 * lists named by digest, quotas). A key is sealable when it is `<tag>:<rest>:<bucket>`, with `<tag>`
 * ending at the first `}` (ids have `}` percent-encoded) and `<bucket>` a bucket name.
 */
export function locate (key: string): Location | null {
  const close = key.indexOf('}')
  const last = key.lastIndexOf(':')
  if (close < 0 || last <= close + 1) return null
  const m = BUCKET.exec(key.slice(last + 1))
  if (m === null) return null
  const tag = key.slice(0, close + 1)
  const part = partCode(key.slice(close + 2, last))
  const period = m[2] === undefined ? m[1]! : `${m[1]!}-${m[2]}0+10m`
  return { block: `${tag}:sealed:${period}`, seals: sealsKey(tag), period, sub: m[2] === undefined ? 'h' : m[3]!, part }
}

/**
 * A tag's seal index: a hash, period → the sub-buckets sealed into its block (`h`, or minute
 * digits), and `<period>:late` → `1` once a flush wrote a live hash of a sub-bucket already sealed.
 * A read fetches the live hash of a sealed sub-bucket only when its period is marked late: a seal
 * unit takes every live hash of its entity and bucket (src/jobs/sealer.ts), so nothing else can be
 * live there. Pruned of periods past the retention by the seals of hours.
 */
export function sealsKey (tag: string): string {
  return `${tag}:seals`
}

/**
 * The names of a stats hash's fields, stored in blocks as their index + 1 here (one byte instead of
 * up to 14, in every stats hash of every bucket). Names not listed are stored as they are.
 */
export const STAT_NAMES = [
  'n', 'ok', 'err:timeout', 'err:rate_limit', 'err:network', 'err:other', 'tokens:in', 'tokens:out',
  'ttft:n', 'ttft:sum', 'ttft:min', 'ttft:max', 'total:n', 'total:sum', 'total:min', 'total:max',
  'tps:n', 'tps:sum', 'tps:min', 'tps:max', 'fetch:n', 'fetch:err', 'fetch:timeout',
  'fetch_rt:n', 'fetch_rt:sum', 'fetch_rt:min', 'fetch_rt:max', 'last:provider', 'last:model_count'
] as const

/** A part as stored: fields and values; sorted differences after `true`; or 1, "the model's own". */
type StoredPart = Array<string | number | boolean> | 1
/** A snapshot: sub-bucket → part → field, value, field, value, … (as stored; read it with partOf). */
export type Snapshot = Record<string, Record<string, StoredPart>>
type Flat = Array<string | number>

/** Bin offsets of a pair's `dists` hash (src/metrics/histogram.ts PAIR_DISTS), by the model's part. */
const PAIR_DIST_PARTS: Array<[string, number]> = [['t', PAIR_DISTS.ttft], ['T', PAIR_DISTS.total], ['p', PAIR_DISTS.tps]]

function undelta (stored: StoredPart | undefined): Flat | undefined {
  if (stored === undefined || stored === 1 || stored[0] !== true) return stored as Flat | undefined
  const out: Flat = []
  let field = 0
  for (let i = 1; i + 1 < stored.length; i += 2) {
    field += stored[i] as number
    out.push(field, stored[i + 1] as number)
  }
  return out
}

/**
 * The fields and values of `part` in sub-bucket `sub` of a snapshot, as the live hash held them
 * (field names may come back as numbers). Decoded in place: a cached block decodes a part once.
 */
export function partOf (snap: Snapshot, sub: string, part: string): Flat | undefined {
  const parts = snap[sub]
  const stored = parts?.[part]
  if (parts === undefined || stored === undefined) return undefined
  let flat: Flat
  if (stored === 1) {
    flat = []
    if (part.endsWith(':s')) {
      // The model's stats, less its latest provider (a pair's stats have none).
      const s = partOf(snap, sub, 's')!
      for (let i = 0; i + 1 < s.length; i += 2) if (!String(s[i]).startsWith('last:')) flat.push(s[i]!, s[i + 1]!)
    } else {
      for (const [code, offset] of PAIR_DIST_PARTS) {
        const bins = partOf(snap, sub, code) ?? []
        for (let i = 0; i + 1 < bins.length; i += 2) flat.push(bins[i] === ZERO_BIN ? offset + PAIR_ZERO : offset + Number(bins[i]), bins[i + 1]!)
      }
    }
  } else {
    flat = undelta(stored)!
  }
  if (part === 's' || part.endsWith(':s')) {
    for (let i = 0; i < flat.length; i += 2) if (typeof flat[i] === 'number') flat[i] = STAT_NAMES[(flat[i] as number) - 1] ?? String(flat[i])
  }
  parts[part] = flat
  return flat
}

/** The snapshots of a block, oldest first. */
export function decodeBlock (raw: Uint8Array): Snapshot[] {
  return [...decodeMulti(raw)] as Snapshot[]
}

/** What the sealer moves into one block in one call. */
export interface SealUnit {
  block: string
  /** The tag's seal index and the block's period. */
  seals: string
  period: string
  /** The oldest hour and 10-minute period still kept: older ones leave the seal index (hour units only). */
  prune?: { hours: string, spans: string }
  /** Live hashes, all in the block's hash slot. */
  keys: string[]
  /** For each key, its sub-bucket and part in the block. */
  subs: string[]
  parts: string[]
}

const ENTITY_FAMILIES: Record<EntityType, Family[]> = {
  model: ['stats', 'ttft', 'total', 'tps', 'gateways', 'providers', 'status'],
  provider: ['stats', 'ttft', 'total', 'tps', 'models', 'status'],
  gateway: ['stats', 'ttft', 'total', 'tps', 'fetch_rt', 'catalog_fetches', 'status']
}
/** Families with no 10-minute bucket (hour lists and states). */
const HOUR_ONLY = new Set<Family>(['gateways', 'providers', 'status', 'catalog_fetches'])
const INDEX_FIELDS: IndexField[] = ['requests', 'successes', 'fetches']

/** A period to seal: an hour, or an aligned 10 minutes (its minutes and its 10-minute bucket). */
export interface Period { kind: 'hour' | 'tenmin', start: number }

/** The bucket names a period's block holds: its hour, or its ten minutes. */
export function periodBuckets (p: Period): string[] {
  if (p.kind === 'hour') return [bucketName('hour', p.start)]
  return Array.from({ length: 10 }, (_, i) => bucketName('minute', p.start + i * MINUTE_MS))
}

/**
 * The stored keys a read key stands for: a 10-minute bucket (`…+10m`, which reads ask for to merge
 * fewer buckets) is not written; it reads as its ten minutes, live or sealed in the 10-minute block
 * that holds them. Any other key stands for itself.
 */
export function expandKey (key: string): string[] {
  if (!key.endsWith('+10m')) return [key]
  const stem = key.slice(0, -4 - 1)
  return Array.from({ length: 10 }, (_, i) => stem + String(i))
}

function unitOf (keys: string[]): SealUnit {
  const unit: SealUnit = { block: '', seals: '', period: '', keys: [], subs: [], parts: [] }
  for (const key of keys) {
    const loc = locate(key)!
    unit.block = loc.block
    unit.seals = loc.seals
    unit.period = loc.period
    unit.keys.push(key)
    unit.subs.push(loc.sub)
    unit.parts.push(loc.part)
  }
  return unit
}

/**
 * The seal of one entity over a period, one unit per bucket (each a snapshot of its own, so that
 * no seal call holds Redis long): every family, and for a model the pairs `others` names (gateway
 * and provider ids, from the activity index).
 */
export function entitySealUnits (type: EntityType, id: string, p: Period, others: { gateway: ReadonlySet<string>, provider: ReadonlySet<string> }): SealUnit[] {
  const units: SealUnit[] = []
  for (const b of periodBuckets(p)) {
    const keys: string[] = []
    for (const f of ENTITY_FAMILIES[type]) if (p.kind === 'hour' || !HOUR_ONLY.has(f)) keys.push(entityKey(type, id, f, b))
    if (type === 'model') {
      for (const kind of ['gateway', 'provider'] as const) {
        for (const other of others[kind]) keys.push(pairKey(id, kind, other, 'stats', b), pairKey(id, kind, other, 'dists', b))
      }
    }
    units.push(unitOf(keys))
  }
  return units
}

/** The seal of one type's activity index over a period. */
export function indexSealUnit (type: IndexedType, p: Period): SealUnit {
  const keys: string[] = []
  for (const name of periodBuckets(p)) for (const field of INDEX_FIELDS) keys.push(indexKey(type, field, name))
  return unitOf(keys)
}

/** The periods a pass looks at: every closed 10 minutes still kept by minute, every closed hour within the retention. */
export function closedPeriods (now: number, delayMs: number, minuteRetentionMs: number, retentionHours: number): Period[] {
  const out: Period[] = []
  const until = now - delayMs
  for (let start = bucketStart('tenmin', now - minuteRetentionMs); start + TEN_MINUTES_MS <= until; start += TEN_MINUTES_MS) out.push({ kind: 'tenmin', start })
  for (let start = bucketStart('hour', now - retentionHours * HOUR_MS); start + HOUR_MS <= until; start += HOUR_MS) out.push({ kind: 'hour', start })
  return out
}
