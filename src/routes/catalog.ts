import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { narrowCatalog, readCatalogComputation } from '../read/catalog.js'
import { cacheKeys } from '../read/cache-keys.js'
import { CATALOG_LIMIT_TIERS, hoursTier, tierOf } from '../read/params.js'
import { replyCached } from './cached-reply.js'
import { CacheControl, ReadErrors, response, ReadingRoute } from '../schemas/common.js'
import { CatalogQuerySchema, CatalogSchema } from '../schemas/catalog.js'

const catalogRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/gateway/catalog', {
    config: { auth: 'read' },
    schema: {
      summary: "A gateway's model catalog and its changes",
      description: 'From the model lists carried by POST /api/metrics/gateway/fetch (models): the latest list, and what appeared or disappeared between consecutive fetches. Cut from a catalog computed over 24 hours, 7, 30, 90 or 365 days (within the retention) with 20 or 100 changes, shared by every hours and limit up to them.',
      ...ReadingRoute,
      querystring: CatalogQuerySchema,
      response: { 200: response(CatalogSchema, 'The latest list and the changes', CacheControl), ...ReadErrors }
    }
  }, async (request, reply) => {
    const { gateway, hours = 24, limit = 20 } = request.query
    const { effective, computed } = hoursTier(hours, opts.config.retentionHours)
    const changes = tierOf(CATALOG_LIMIT_TIERS, limit)
    return await replyCached(request, reply, cacheKeys.catalog(computed, changes, gateway), async () =>
      await readCatalogComputation(readStore, gateway, computed, changes, Date.now()), { key: `${effective}\u0000${limit}`, project: (c) => narrowCatalog(c, effective, limit) })
  })
}

export default catalogRoutes
