import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { readRealtime } from '../read/realtime.js'
import { CacheControl, ReadErrors, response, ReadingRoute } from '../schemas/common.js'
import { RealtimeQuerySchema, RealtimeSchema } from '../schemas/realtime.js'
import { replyCached } from './cached-reply.js'
import { cacheKeys } from '../read/cache-keys.js'

const realtimeRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/realtime', {
    config: { auth: 'read' },
    schema: {
      summary: 'Realtime figures of one model, provider or gateway over a window',
      description: 'An id with no traffic answers 200 with zero counts; gateway_fetches is present exactly when type=gateway. status is the health state now, whatever the window; baselines compare the window with the period before it and the 7-day baseline of the same hours of day (docs/health.md).',
      ...ReadingRoute,
      querystring: RealtimeQuerySchema,
      response: { 200: response(RealtimeSchema, 'The figures', CacheControl), ...ReadErrors }
    }
  }, async (request, reply) => {
    const { type = 'model', id, window = '1h' } = request.query
    return await replyCached(request, reply, cacheKeys.realtime(type, window, id), async () =>
      await readRealtime(readStore, type, id, window, Date.now(), opts.config.health))
  })
}

export default realtimeRoutes
