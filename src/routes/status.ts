import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { readStatusHistory } from '../read/history.js'
import { storeLoad } from '../read/store-load.js'
import { CacheControl, ReadErrors, response } from '../schemas/common.js'
import { StatusHistoryQuerySchema, StatusHistorySchema } from '../schemas/health.js'

const statusRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { metricsStore, readCache } = fastify

  fastify.get('/api/metrics/status/history', {
    config: { auth: 'read' },
    schema: {
      summary: 'Health state changes of a model, provider or gateway',
      description: 'The state now and its changes (when, from what, to what, why), kept for METRICS_RETENTION_HOURS; hours beyond the retention read only what is kept.',
      tags: ['reading'],
      security: [{ readToken: [] }],
      querystring: StatusHistoryQuerySchema,
      response: { 200: response(StatusHistorySchema, 'The state and its changes, newest first', CacheControl), ...ReadErrors }
    }
  }, async (request, reply) => {
    const { type = 'model', id, hours = 24 } = request.query
    const effective = Math.min(hours, opts.config.retentionHours)
    const key = `history\u0000${type}\u0000${effective}\u0000${id}`
    const { value, maxAgeSec } = await readCache.get(key, storeLoad(request.log, async () =>
      await readStatusHistory(metricsStore, type, id, effective, Date.now(), opts.config.health)))
    void reply.header('cache-control', `max-age=${maxAgeSec}`)
    return value
  })
}

export default statusRoutes
