import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { Sealer } from '../jobs/sealer.js'
import { RedisStore } from '../store/redis-store.js'

/**
 * Seals closed buckets into compact blocks once a minute (src/jobs/sealer.ts; of the instances
 * sharing a Redis, the one that claims the minute does it). The embedded store keeps its buckets
 * live, so nothing runs for it. Stopped on close.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const store = fastify.metricsStore
  if (!(store instanceof RedisStore)) return
  const sealer = new Sealer({
    store,
    retentionHours: opts.config.retentionHours,
    log: fastify.log,
    member: fastify.instanceId,
    beforePass: async () => { await store.checkLayout() }
  })
  fastify.addHook('onReady', async () => { sealer.start() })
  fastify.addHook('onClose', async () => { await sealer.stop() })
}, { name: 'sealer', dependencies: ['store'] })
