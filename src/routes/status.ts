import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { narrowHistory, readStatusHistory } from '../read/history.js'
import { cacheKeys } from '../read/cache-keys.js'
import { hoursTier } from '../read/params.js'
import { replyCached } from './cached-reply.js'
import { CacheControl, ReadErrors, response, ReadingRoute } from '../schemas/common.js'
import { StatusHistoryQuerySchema, StatusHistorySchema } from '../schemas/status.js'

const statusRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/status/history', {
    config: { auth: 'read' },
    schema: {
      summary: 'Health state changes of a model, provider or gateway',
      description: 'The state now and its changes (when, from what, to what, why), kept for METRICS_RETENTION_HOURS; hours beyond the retention read only what is kept. The changes are cut from a history computed over 24 hours, 7, 30, 90 or 365 days (within the retention), shared by every hours value up to it.',
      ...ReadingRoute,
      querystring: StatusHistoryQuerySchema,
      response: { 200: response(StatusHistorySchema, 'The state and its changes, newest first', CacheControl), ...ReadErrors }
    }
  }, async (request, reply) => {
    const { type = 'model', id, hours = 24 } = request.query
    const { effective, computed } = hoursTier(hours, opts.config.retentionHours)
    return await replyCached(request, reply, cacheKeys.statusHistory(type, computed, id), async () =>
      await readStatusHistory(readStore, type, id, computed, Date.now(), opts.config.health),
    { key: String(effective), project: (h) => narrowHistory(h, effective) })
  })
}

export default statusRoutes
