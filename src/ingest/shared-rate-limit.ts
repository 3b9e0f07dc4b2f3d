import { createHash } from 'node:crypto'
import { RATE_LIMIT_PREFIX } from '../store/keys.js'
import type { MetricsStore } from '../store/types.js'

interface Counter { windowStart: number, synced: number, unsynced: number, sending: number }

export interface RateLimitState { current: number, ttl: number }

/**
 * A fixed-window rate-limit counter shared by every instance through the store, without a store
 * round trip per request: each instance counts locally and, every `syncMs`, adds its new counts to
 * the shared counters in one round trip and learns the totals. A client can therefore exceed the
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
  #syncing: Promise<void> | null = null

  constructor (store: MetricsStore, opts: { windowMs: number, syncMs: number, maxKeys?: number }) {
    this.#store = store
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
      c = { windowStart, synced: 0, unsynced: 0, sending: 0 }
      this.#counters.set(key, c)
    }
    c.unsynced++
    return { current: c.synced + c.sending + c.unsynced, ttl: windowStart + this.#windowMs - now }
  }

  /** Sends the local counts and learns the shared totals; one round trip. Never rejects. */
  async sync (): Promise<void> {
    if (this.#syncing !== null) return await this.#syncing
    this.#syncing = this.#sync().finally(() => { this.#syncing = null })
    return await this.#syncing
  }

  async #sync (): Promise<void> {
    const batch: Array<[string, Counter]> = []
    for (const entry of this.#counters) {
      if (entry[1].unsynced > 0) batch.push(entry)
    }
    if (batch.length === 0) return
    for (const [, c] of batch) {
      c.sending = c.unsynced
      c.unsynced = 0
    }
    try {
      const totals = await this.#store.addCounters(batch.map(([key, c]) => ({
        key: `${RATE_LIMIT_PREFIX}{${hashKey(key)}}:${c.windowStart}`,
        delta: c.sending,
        expireAt: c.windowStart + this.#windowMs + 1000
      })))
      batch.forEach(([, c], i) => {
        c.synced = Math.max(c.synced + c.sending, totals[i] ?? 0)
        c.sending = 0
      })
    } catch {
      // Keep counting locally: the requests still count against this instance's view.
      for (const [, c] of batch) {
        c.synced += c.sending
        c.sending = 0
      }
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
