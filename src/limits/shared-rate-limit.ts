import { createHash } from 'node:crypto'
import { RATE_LIMIT_PREFIX } from '../store/keys.js'
import type { MetricsStore } from '../store/types.js'

/** How often each instance adds its rate-limit counts to the shared counters. */
export const RATE_LIMIT_SYNC_MS = 250

/** This instance's count in a window (`mine`) and the other instances' as last learnt (`others`). */
interface Counter { windowStart: number, mine: number, others: number, dirty: boolean }

export interface RateLimitState { current: number, ttl: number }

/**
 * A fixed-window rate-limit counter shared by every instance through the store, without a store
 * round trip per request: each instance counts locally and, every `syncMs`, writes its own count
 * (an absolute number, so a re-sent write cannot count twice) to the shared counters in one round
 * trip and learns the totals. A client can therefore exceed the
 * limit by what the other instances admit between two syncs (at most instances × rate × syncMs).
 * While the store is unreachable each instance limits on its own counts (fails open to a
 * per-instance limit, never closed).
 */
export class SharedRateLimit {
  readonly #store: MetricsStore
  readonly #windowMs: number
  readonly #counters = new Map<string, Counter>()
  readonly #timer: NodeJS.Timeout
  readonly #maxKeys: number
  readonly #member: string
  #syncing: Promise<void> | null = null

  constructor (store: MetricsStore, opts: { windowMs: number, syncMs: number, member: string, maxKeys?: number }) {
    this.#store = store
    this.#member = opts.member
    this.#windowMs = opts.windowMs
    this.#maxKeys = opts.maxKeys ?? 100_000
    this.#timer = setInterval(() => { void this.sync() }, opts.syncMs)
    this.#timer.unref()
  }

  /** Counts one request for `key` and answers the count in the current window and its remaining ms. */
  incr (key: string, now = Date.now()): RateLimitState {
    const windowStart = Math.floor(now / this.#windowMs) * this.#windowMs
    let c = this.#counters.get(key)
    if (c === undefined || c.windowStart !== windowStart) {
      if (c === undefined && this.#counters.size >= this.#maxKeys) this.#evictOld(windowStart)
      c = { windowStart, mine: 0, others: 0, dirty: false }
      this.#counters.set(key, c)
    }
    c.mine++
    c.dirty = true
    return { current: c.others + c.mine, ttl: windowStart + this.#windowMs - now }
  }

  /** Sends the local counts and learns the shared totals; one round trip. Never rejects. */
  async sync (): Promise<void> {
    if (this.#syncing !== null) return await this.#syncing
    this.#syncing = this.#sync().finally(() => { this.#syncing = null })
    return await this.#syncing
  }

  async #sync (): Promise<void> {
    const batch: Array<[string, Counter, number]> = []
    for (const [key, c] of this.#counters) {
      if (c.dirty) {
        c.dirty = false
        batch.push([key, c, c.mine])
      }
    }
    if (batch.length === 0) return
    try {
      const totals = await this.#store.shareCounts(batch.map(([key, c, mine]) => ({
        key: `${RATE_LIMIT_PREFIX}{${hashKey(key)}}:${c.windowStart}`,
        member: this.#member,
        count: mine,
        expireAt: c.windowStart + this.#windowMs + 1000
      })))
      batch.forEach(([, c, mine], i) => { c.others = Math.max(0, totals[i]! - mine) })
    } catch {
      // The store is down: keep limiting on this instance's own counts; the next sync sends them.
      for (const [, c] of batch) c.dirty = true
    }
  }

  /** Bounds memory against clients that vary their key: old windows first, then the oldest keys. */
  #evictOld (windowStart: number): void {
    for (const [key, c] of this.#counters) if (c.windowStart !== windowStart) this.#counters.delete(key)
    for (const key of this.#counters.keys()) {
      if (this.#counters.size < this.#maxKeys) break
      this.#counters.delete(key)
    }
  }

  close (): void {
    clearInterval(this.#timer)
  }
}

/** Keys are hashed before they reach the store: a token must never be written anywhere. */
export function hashKey (key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 22)
}
