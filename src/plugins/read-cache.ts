import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { budgetedReader, ReadBudget, type StoreReader } from '../read/budget.js'
import { createReadCache, type ReadCache } from '../read/cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    readCache: ReadCache
    /** The share of the store that reads may take (METRICS_READ_*), with its counts. */
    readBudget: ReadBudget
    /** The store for the read routes and the stream: every read goes through `readBudget`. */
    readStore: StoreReader
  }
}

/**
 * A read waits at most this long for its turn under the read budget, then gets 503. Longer than the
 * store's command timeout (2 s): reads queued behind reads that hang on a frozen store are answered
 * for what the store did (503 METRICS_STORE_UNAVAILABLE), not refused as busy.
 */
export const READ_MAX_WAIT_MS = 2500

/**
 * Decorates `readCache` (src/read/cache.ts, TTL METRICS_CACHE_TTL_MS) and `readStore`, the store as
 * reads may use it: within `readBudget`. A cache hit costs the store nothing; only the loads behind
 * misses go through the budget.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const budget = new ReadBudget({ ...opts.config.readBudget, maxWaitMs: READ_MAX_WAIT_MS })
  fastify.decorate('readBudget', budget)
  fastify.decorate('readStore', budgetedReader(fastify.metricsStore, budget))
  fastify.addHook('onClose', async () => { budget.close() })
  fastify.decorate('readCache', createReadCache(opts.config.cacheTtlMs))
}, { name: 'read-cache', dependencies: ['store'] })
