import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { readRealtime } from '../read/realtime.js'
import { ErrorSchema } from '../schemas/common.js'
import { RealtimeQuerySchema, RealtimeSchema } from '../schemas/realtime.js'
import { storeLoad } from '../read/store-load.js'

const realtimeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { metricsStore, readCache } = fastify

  fastify.get('/api/metrics/realtime', {
    config: { auth: 'read' },
    schema: {
      summary: 'Realtime figures of one model, provider or gateway over a window',
      querystring: RealtimeQuerySchema,
      response: { 200: RealtimeSchema, 400: ErrorSchema, 401: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema }
    }
  }, async (request, reply) => {
    const { type, id, window } = request.query
    const key = `realtime\u0000${type}\u0000${window}\u0000${id}`
    const { value, maxAgeSec } = await readCache.get(key, storeLoad(request.log, async () =>
      await readRealtime(metricsStore, type, id, window, Date.now())))
    void reply.header('cache-control', `max-age=${maxAgeSec}`)
    return value
  })
}

export default realtimeRoutes
