import type { SealUnit } from './layout.js'

/**
 * The store contract shared by the Redis store and the embedded in-process store. Both implement it
 * with the same semantics; one contract test suite runs against both (test/helpers/store-contract.ts).
 *
 * The store knows nothing of metrics: it applies sealed groups of field operations exactly once and
 * reads hashes merged by the field rules below.
 *
 * Field operations and the matching merge rule on read:
 * - `i` add an integer (HINCRBY); merged by adding. For counters, which grow by one per event and so
 *   cannot come near 2^63.
 * - `s` add an integer to a sum that may grow large (times in µs, tokens); merged by adding. Checked
 *   before anything is written: a group in which a sum would pass MAX_SUM is refused whole
 *   (StoreRefusal), never half applied.
 * - `m` / `M` keep the smaller / larger integer; the field name ends in `:min` / `:max`, merged likewise.
 * - `l` keep the latest value: the value starts with a 15-digit event time; a write replaces the stored
 *   value when its time is not older. The field name starts with `last:`; merged likewise.
 */
export type FieldOp = 'i' | 's' | 'm' | 'M' | 'l'
// Field names and values never contain control characters (ids are validated so on the way in):
// the Redis store packs a key's ops into one argument, separated by byte 31.

export interface KeyWrite {
  key: string
  /** Absolute expiry, epoch ms. A key whose expiry has passed is deleted rather than written. */
  expireAt: number
  ops: Array<[FieldOp, string, string]>
}

/**
 * Writes that must land together and at most once: every key of one group shares a hash slot with
 * `marker`, which records the last sequence this instance applied to the group.
 */
export interface GroupWrite {
  marker: string
  keys: KeyWrite[]
}

/**
 * Read `keys`, merging key i into result slot `slots[i]`; `nSlots` results come back. A key may be
 * listed more than once (a bucket that feeds several slots): each listing merges into its own slot,
 * and the Redis store fetches the key once. Values come back as decimal strings.
 */
export interface MergeRead {
  keys: string[]
  slots: number[]
  nSlots: number
  /**
   * Key i holds only counters: every field is added, whatever its name. Required for hashes whose
   * field names are ids (the activity index, a provider's models), where an id such as `x:max` must
   * not be taken for a rule; it also spares the store the rule look-ups for histogram bins.
   */
  counters?: boolean[]
}

export type Fields = Record<string, string>

export interface Claim { key: string, token: string, expireAt: number }

export interface SharedCount { key: string, member: string, count: number, expireAt: number }

export interface MetricsStore {
  readonly kind: 'redis' | 'memory'
  /**
   * Apply each group with sequence `seq`, unless the group's marker already holds `seq` or later
   * (then it is skipped: it landed before). Sequences of one instance must be applied in order.
   * Resolves with one entry per group: null when applied or skipped, the error when it may not have
   * landed (the caller retries that group with the same `seq`). A rejection means the same for every
   * group.
   */
  applyGroups: (seq: number, groups: GroupWrite[]) => Promise<Array<Error | null>>
  /**
   * Sets each member's count in its shared counter (which expires at `expireAt`, epoch ms) and
   * resolves with each counter's total over all members. Setting an absolute count is idempotent, so
   * a re-sent command cannot count twice. For shared rate limits. Rejects when the store cannot answer.
   */
  shareCounts: (items: SharedCount[]) => Promise<number[]>
  /**
   * Takes `key` for `member` until `expireAt` (epoch ms) unless it is held (SET NX): resolves true for
   * the one caller that took it, false for every other until it expires. For periodic jobs that one
   * of the instances sharing the store should run. Rejects when the store cannot answer.
   */
  claim: (key: string, member: string, expireAt: number) => Promise<boolean>
  /**
   * Takes each `key` for `token` until `expireAt` (epoch ms) unless another token holds it (SET NX GET),
   * in one round trip: true when `token` holds it (taken now, or by an earlier call whose answer was
   * lost), false when another token does, the error when the store did not answer for that key. For
   * idempotency keys: the events of a key are applied by the one request whose token took it.
   */
  claimOnce: (items: Claim[]) => Promise<Array<boolean | Error>>
  /**
   * The field names of each hash, live or sealed, in one round trip; rejects when the store cannot
   * answer.
   */
  fieldNames: (keys: string[]) => Promise<string[][]>
  /** The field names of each live (not yet sealed) hash: what a seal would still have to move. */
  liveFieldNames: (keys: string[]) => Promise<string[][]>
  /**
   * Moves live hashes into sealed blocks (src/store/layout.ts), each unit in one atomic step; reads
   * answer the same before and after. Resolves with the bytes written. The embedded store keeps
   * every bucket live (its memory is a process's, not a shared server's) and writes nothing.
   */
  seal: (units: SealUnit[]) => Promise<number>
  /**
   * One round trip for all reads; rejects when the store cannot answer. `answered`, when given, is
   * called once the store has answered, before the service merges what it sent (the store's part of
   * the read ends there: src/read/budget.ts charges only that).
   */
  read: (reads: MergeRead[], answered?: () => void) => Promise<Fields[][]>
  /** Resolves when the store answers. */
  ping: () => Promise<void>
  /** Releases connections and timers. Idempotent. */
  close: () => Promise<void>
}

/**
 * A group of more than MAX_PART_OPS field operations (a back-fill, a burst) is applied by the Redis
 * store in parts of about that many, so that no script holds Redis long: part p of sequence s is
 * applied as s × PARTS_PER_GROUP + p, in order (a part lands only right after the one before it),
 * and a retry skips the parts that landed. Each part is whole or nothing.
 */
export const MAX_PART_OPS = 2_048
export const PARTS_PER_GROUP = 1_024

/** How long a group's marker outlives its last write: longer than any retry or client re-send. */
export const MARKER_TTL_MS = 24 * 3_600_000

/** The largest value a checked sum (`s`) may reach: 2^63 − 1, Redis's largest integer (a decimal string). */
export const MAX_SUM = '9223372036854775807'

/** Starts the message of an error for a group the store refuses for its content (never retried). */
export const REFUSAL_PREFIX = 'METRICS_REFUSED'

/** A group the store refuses for what it holds, not because it is unreachable: retrying cannot help. */
export class StoreRefusal extends Error {
  constructor (message: string) {
    super(`${REFUSAL_PREFIX} ${message}`)
    this.name = 'StoreRefusal'
  }
}

/**
 * Whether a store error refuses a group for its content: the store's own checks (METRICS_REFUSED), or
 * Redis refusing a command on a key's type or a value (which those checks are there to prevent). An
 * unreachable, busy, loading, out-of-memory or moving store is not a refusal: the group is retried.
 */
export function isRefusal (err: unknown): boolean {
  const m = String((err as { message?: unknown }).message)
  return m.startsWith(REFUSAL_PREFIX) || m.startsWith('WRONGTYPE') || m.includes('not an integer or out of range') || m.includes('increment or decrement would overflow')
}
