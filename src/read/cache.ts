import { LRUCache } from 'lru-cache'

export interface Cached<T> { value: T, maxAgeSec: number }

/** Lookups since start, and how many of them loaded from the store (misses); the rest were hits. */
export interface CacheCounts { lookups: number, loads: number }

export interface ReadCache {
  /**
   * The answer for `key`: from the cache while it lives, else from `load`. Concurrent misses for one
   * key share one `load`. `maxAgeSec` is the entry's remaining life, for Cache-Control.
   */
  get: <T extends object>(key: string, load: () => Promise<T>) => Promise<Cached<T>>
  /** A lookup served by a cached or in-flight answer is a hit; one that calls `load` is a miss. */
  readonly counts: CacheCounts
}

const MAX_ENTRIES = 10_000

/**
 * The read answers cache: an LRU of at most MAX_ENTRIES answers living `ttlMs` each; with `ttlMs` 0
 * nothing is kept, but concurrent misses for one key still share one load.
 */
export function createReadCache (ttlMs: number): ReadCache {
  const counts: CacheCounts = { lookups: 0, loads: 0 }
  if (ttlMs > 0) {
    const lru = new LRUCache<string, object, () => Promise<object>>({
      max: MAX_ENTRIES,
      ttl: ttlMs,
      fetchMethod: async (_key, _stale, { context }) => {
        counts.loads++
        return await context()
      }
    })
    return {
      counts,
      async get<T extends object> (key: string, load: () => Promise<T>) {
        counts.lookups++
        const value = await lru.fetch(key, { context: load }) as T
        return { value, maxAgeSec: Math.max(0, Math.floor(lru.getRemainingTTL(key) / 1000)) }
      }
    }
  }
  const inflight = new Map<string, Promise<object>>()
  return {
    counts,
    async get<T extends object> (key: string, load: () => Promise<T>) {
      counts.lookups++
      let p = inflight.get(key)
      if (p === undefined) {
        counts.loads++
        p = load().finally(() => inflight.delete(key))
        inflight.set(key, p)
      }
      return { value: await p as T, maxAgeSec: 0 }
    }
  }
}
