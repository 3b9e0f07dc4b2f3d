import { expandKey } from './layout.js'
import { addFields, applyOp, mergeFields } from './merge.js'
import { MARKER_TTL_MS, MAX_SUM, StoreRefusal, type Claim, type SharedCount, type Fields, type GroupWrite, type MergeRead, type MetricsStore } from './types.js'

const DIGITS = /^\d{1,19}$/
const LARGEST = BigInt(MAX_SUM)

interface Entry { expireAt: number, fields: Map<string, string> }

export interface MemoryStoreOptions {
  /** Clock, for tests. */
  now?: () => number
  /** How often expired keys are swept (ms). */
  sweepIntervalMs?: number
}

/**
 * The embedded store: the same contract as the Redis store, in this process. Used when no Redis is
 * configured; data lives as long as the process. Keys expire like Redis keys: never read after their
 * expiry, and swept periodically so memory stays bounded by the retention.
 */
export class MemoryStore implements MetricsStore {
  readonly kind = 'memory' as const
  readonly #data = new Map<string, Entry>()
  readonly #markers = new Map<string, { seq: number, expireAt: number }>()
  /** Approximate counters (rate limits), kept apart from the metrics keys. */
  readonly #counters = new Map<string, { members: Map<string, number>, expireAt: number }>()
  readonly #claims = new Map<string, { member: string, expireAt: number }>()
  readonly #now: () => number
  readonly #sweeper: NodeJS.Timeout

  constructor (opts: MemoryStoreOptions = {}) {
    this.#now = opts.now ?? Date.now
    this.#sweeper = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? 60_000)
    this.#sweeper.unref()
  }

  /** Drops expired keys and markers. */
  sweep (): void {
    const now = this.#now()
    for (const [key, e] of this.#data) if (e.expireAt <= now) this.#data.delete(key)
    for (const [key, m] of this.#markers) if (m.expireAt <= now) this.#markers.delete(key)
    for (const [key, c] of this.#counters) if (c.expireAt <= now) this.#counters.delete(key)
    for (const [key, c] of this.#claims) if (c.expireAt <= now) this.#claims.delete(key)
  }

  async applyGroups (seq: number, groups: GroupWrite[]): Promise<Array<Error | null>> {
    const now = this.#now()
    return groups.map((group) => {
      const marker = this.#markers.get(group.marker)
      if (marker !== undefined && marker.expireAt > now && marker.seq >= seq) return null
      const refusal = this.#check(group, now)
      if (refusal !== null) return refusal
      for (const kw of group.keys) {
        if (kw.expireAt <= now) {
          this.#data.delete(kw.key)
          continue
        }
        let entry = this.#live(kw.key, now)
        if (entry === undefined) {
          entry = { expireAt: kw.expireAt, fields: new Map() }
          this.#data.set(kw.key, entry)
        }
        for (const [op, field, value] of kw.ops) {
          entry.fields.set(field, applyOp(op, entry.fields.get(field), value))
        }
        entry.expireAt = kw.expireAt
      }
      this.#markers.set(group.marker, { seq, expireAt: now + MARKER_TTL_MS })
      return null
    })
  }

  /** The checks the Redis script makes before its first write: no checked sum may pass MAX_SUM. */
  #check (group: GroupWrite, now: number): StoreRefusal | null {
    for (const kw of group.keys) {
      if (kw.expireAt <= now) continue
      const fields = this.#live(kw.key, now)?.fields
      for (const [op, field, value] of kw.ops) {
        if (op !== 's') continue
        const cur = fields?.get(field) ?? '0'
        if (!DIGITS.test(value) || !DIGITS.test(cur) || BigInt(cur) + BigInt(value) > LARGEST) return new StoreRefusal(`${kw.key} ${field} would pass the largest storable sum`)
      }
    }
    return null
  }

  async shareCounts (items: SharedCount[]): Promise<number[]> {
    const now = this.#now()
    return items.map(({ key, member, count, expireAt }) => {
      let counter = this.#counters.get(key)
      if (counter === undefined || counter.expireAt <= now) {
        counter = { members: new Map(), expireAt }
        this.#counters.set(key, counter)
      }
      counter.members.set(member, count)
      counter.expireAt = expireAt
      let total = 0
      for (const c of counter.members.values()) total += c
      return total
    })
  }

  async claim (key: string, member: string, expireAt: number): Promise<boolean> {
    const held = this.#claims.get(key)
    if (held !== undefined && held.expireAt > this.#now()) return false
    this.#claims.set(key, { member, expireAt })
    return true
  }

  async claimOnce (items: Claim[]): Promise<Array<boolean | Error>> {
    const now = this.#now()
    return items.map(({ key, token, expireAt }) => {
      const held = this.#claims.get(key)
      if (held !== undefined && held.expireAt > now) return held.member === token
      this.#claims.set(key, { member: token, expireAt })
      return true
    })
  }

  async fieldNames (keys: string[]): Promise<string[][]> {
    const now = this.#now()
    return keys.map((key) => [...(this.#live(key, now)?.fields.keys() ?? [])])
  }

  async liveFieldNames (keys: string[]): Promise<string[][]> {
    return await this.fieldNames(keys)
  }

  async seal (): Promise<number> {
    return 0
  }

  async read (reads: MergeRead[]): Promise<Fields[][]> {
    const now = this.#now()
    return reads.map((r) => {
      const out: Fields[] = Array.from({ length: r.nSlots }, () => ({}))
      r.keys.forEach((key, i) => {
        const slot = out[r.slots[i]!]!
        for (const stored of expandKey(key)) {
          const entry = this.#live(stored, now)
          if (entry === undefined) continue
          if (r.counters?.[i] === true) addFields(slot, entry.fields)
          else mergeFields(slot, entry.fields)
        }
      })
      return out
    })
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
  }

  #live (key: string, now: number): Entry | undefined {
    const entry = this.#data.get(key)
    if (entry === undefined) return undefined
    if (entry.expireAt <= now) {
      this.#data.delete(key)
      return undefined
    }
    return entry
  }
}
