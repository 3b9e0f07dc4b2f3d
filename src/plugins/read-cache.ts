import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import type { Config } from '../config.js'
import { budgetedReader, ReadBudget, type StoreReader } from '../read/budget.js'

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

declare module 'fastify' {
  interface FastifyInstance {
    readCache: ReadCache
    /** The share of the store that reads may take (METRICS_READ_*), with its counts. */
    readBudget: ReadBudget
    /** The store for the read routes and the stream: every read goes through `readBudget`. */
    readStore: StoreReader
  }
}

const MAX_ENTRIES = 10_000

/**
 * A read waits at most this long for its turn under the read budget, then gets 503. Longer than the
 * store's command timeout (2 s): reads queued behind reads that hang on a frozen store are answered
 * for what the store did (503 METRICS_STORE_UNAVAILABLE), not refused as busy.
 */
export const READ_MAX_WAIT_MS = 2500

/**
 * Decorates `readCache`: an LRU with TTL METRICS_CACHE_TTL_MS (0: no caching, misses still coalesce);
 * and `readStore`, the store as reads may use it: within `readBudget`. A cache hit costs the store
 * nothing; only the loads behind misses go through the budget.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const budget = new ReadBudget({ ...opts.config.readBudget, maxWaitMs: READ_MAX_WAIT_MS })
  fastify.decorate('readBudget', budget)
  fastify.decorate('readStore', budgetedReader(fastify.metricsStore, budget))
  fastify.addHook('onClose', async () => { budget.close() })

  const ttl = opts.config.cacheTtlMs
  const counts: CacheCounts = { lookups: 0, loads: 0 }
  let readCache: ReadCache
  if (ttl > 0) {
    const lru = new LRUCache<string, object, () => Promise<object>>({
      max: MAX_ENTRIES,
      ttl,
      fetchMethod: async (_key, _stale, { context }) => {
        counts.loads++
        return await context()
      }
    })
    readCache = {
      counts,
      async get<T extends object> (key: string, load: () => Promise<T>) {
        counts.lookups++
        const value = await lru.fetch(key, { context: load }) as T
        return { value, maxAgeSec: Math.max(0, Math.floor(lru.getRemainingTTL(key) / 1000)) }
      }
    }
  } else {
    const inflight = new Map<string, Promise<object>>()
    readCache = {
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
  fastify.decorate('readCache', readCache)
}, { name: 'read-cache', dependencies: ['store'] })
