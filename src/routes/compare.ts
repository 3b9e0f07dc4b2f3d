import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { readCompare, readRoute } from '../read/compare.js'
import { cacheKeys } from '../read/cache-keys.js'
import { replyCached } from './cached-reply.js'
import { CacheControl, ReadErrors, response, ReadingRoute } from '../schemas/common.js'
import { CompareQuerySchema, CompareSchema, RouteQuerySchema, RouteSchema } from '../schemas/compare.js'

/** One model through each gateway and provider: side by side, and ranked for routing. */
const compareRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore } = fastify
  const th = opts.config.health

  fastify.get('/api/metrics/compare', {
    config: { auth: 'read' },
    schema: { ...ReadingRoute, summary: 'One model through each gateway and by each provider, side by side', description: 'Requests, uptime, state, TTFT p50/p90, total time p50 and output tokens/s of each model × gateway and model × provider pair with traffic in the window.', querystring: CompareQuerySchema, response: { 200: response(CompareSchema, 'The pairs', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    const { model, window = '1h' } = request.query
    return await replyCached(request, reply, cacheKeys.compare(window, model), async () =>
      await readCompare(readStore, model, window, Date.now(), th))
  })

  fastify.get('/api/metrics/route', {
    config: { auth: 'read' },
    schema: { ...ReadingRoute, summary: 'Where to send a request for a model: the candidates ranked', description: 'Candidates (gateways, or providers with by=provider) that served the model in the window, ranked: not down first, then the higher uptime lower bound, then the lower TTFT p90; each with the reason for its rank. Served from the read cache: cheap enough to ask per request.', querystring: RouteQuerySchema, response: { 200: response(RouteSchema, 'The ranked candidates', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    const { model, by = 'gateway', window = '15m' } = request.query
    return await replyCached(request, reply, cacheKeys.route(by, window, model), async () =>
      await readRoute(readStore, model, by, window, Date.now(), th))
  })
}

export default compareRoutes
