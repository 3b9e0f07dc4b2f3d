import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { replyCached } from './cached-reply.js'
import { readProviderSummary } from '../read/provider-summary.js'
import { CacheControl, ReadErrors, response, ReadingRoute } from '../schemas/common.js'
import { ProviderSummaryQuerySchema, ProviderSummarySchema } from '../schemas/read.js'
import { cacheKeys } from '../read/cache-keys.js'

/** The provider summary: through the read cache, Cache-Control = its remaining life. */
const providerSummaryRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/provider/summary', {
    config: { auth: 'read' },
    schema: { ...ReadingRoute, summary: 'Figures per provider', description: 'Every provider with traffic in the window (or just the one asked), by requests then name.', querystring: ProviderSummaryQuerySchema, response: { 200: response(ProviderSummarySchema, 'The providers', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    const { window = '1h', provider } = request.query
    return await replyCached(request, reply, cacheKeys.providers(window, provider), async () =>
      await readProviderSummary(readStore, window, provider, Date.now()))
  })
}

export default providerSummaryRoutes
