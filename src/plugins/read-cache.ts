import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import type { Config } from '../config.js'

export interface Cached<T> { value: T, maxAgeSec: number }

export interface ReadCache {
  /**
   * The answer for `key`: from the cache while it lives, else from `load`. Concurrent misses for one
   * key share one `load`. `maxAgeSec` is the entry's remaining life, for Cache-Control.
   */
  get: <T extends object>(key: string, load: () => Promise<T>) => Promise<Cached<T>>
}

declare module 'fastify' {
  interface FastifyInstance {
    readCache: ReadCache
  }
}

const MAX_ENTRIES = 10_000

/** Decorates `readCache`: an LRU with TTL METRICS_CACHE_TTL_MS (0: no caching, misses still coalesce). */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const ttl = opts.config.cacheTtlMs
  let readCache: ReadCache
  if (ttl > 0) {
    const lru = new LRUCache<string, object, () => Promise<object>>({
      max: MAX_ENTRIES,
      ttl,
      fetchMethod: async (_key, _stale, { context }) => await context()
    })
    readCache = {
      async get<T extends object> (key: string, load: () => Promise<T>) {
        const value = await lru.fetch(key, { context: load }) as T
        return { value, maxAgeSec: Math.max(0, Math.floor(lru.getRemainingTTL(key) / 1000)) }
      }
    }
  } else {
    const inflight = new Map<string, Promise<object>>()
    readCache = {
      async get<T extends object> (key: string, load: () => Promise<T>) {
        let p = inflight.get(key)
        if (p === undefined) {
          p = load().finally(() => inflight.delete(key))
          inflight.set(key, p)
        }
        return { value: await p as T, maxAgeSec: 0 }
      }
    }
  }
  fastify.decorate('readCache', readCache)
}, { name: 'read-cache' })
