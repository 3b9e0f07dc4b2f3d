import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { readCatalog } from '../read/catalog.js'
import { storeLoad } from '../read/store-load.js'
import { CacheControl, ReadErrors, response } from '../schemas/common.js'
import { CatalogQuerySchema, CatalogSchema } from '../schemas/health.js'

const catalogRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { metricsStore, readCache } = fastify

  fastify.get('/api/metrics/gateway/catalog', {
    config: { auth: 'read' },
    schema: {
      summary: "A gateway's model catalog and its changes",
      description: 'From the model lists carried by POST /api/metrics/gateway/fetch (models): the latest list, and what appeared or disappeared between consecutive fetches.',
      tags: ['reading'],
      security: [{ readToken: [] }],
      querystring: CatalogQuerySchema,
      response: { 200: response(CatalogSchema, 'The latest list and the changes', CacheControl), ...ReadErrors }
    }
  }, async (request, reply) => {
    const { gateway, hours = 24, limit = 20 } = request.query
    const effective = Math.min(hours, opts.config.retentionHours)
    const key = `catalog\u0000${effective}\u0000${limit}\u0000${gateway}`
    const { value, maxAgeSec } = await readCache.get(key, storeLoad(request.log, async () =>
      await readCatalog(metricsStore, gateway, effective, limit, Date.now())))
    void reply.header('cache-control', `max-age=${maxAgeSec}`)
    return value
  })
}

export default catalogRoutes
