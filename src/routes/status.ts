import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { narrowHistory, readStatusHistory } from '../read/history.js'
import { hoursTier, viewOf } from '../read/params.js'
import { cachedRead, sendCached } from './cached-reply.js'
import { CacheControl, ReadErrors, response } from '../schemas/common.js'
import { StatusHistoryQuerySchema, StatusHistorySchema } from '../schemas/health.js'

const statusRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/status/history', {
    config: { auth: 'read' },
    schema: {
      summary: 'Health state changes of a model, provider or gateway',
      description: 'The state now and its changes (when, from what, to what, why), kept for METRICS_RETENTION_HOURS; hours beyond the retention read only what is kept. The changes are cut from a history computed over 24 hours, 7, 30, 90 or 365 days (within the retention), shared by every hours value up to it.',
      tags: ['reading'],
      security: [{ readToken: [] }],
      querystring: StatusHistoryQuerySchema,
      response: { 200: response(StatusHistorySchema, 'The state and its changes, newest first', CacheControl), ...ReadErrors }
    }
  }, async (request, reply) => {
    const { type = 'model', id, hours = 24 } = request.query
    const { effective, computed } = hoursTier(hours, opts.config.retentionHours)
    const key = `history\u0000${type}\u0000${computed}\u0000${id}`
    const { value, maxAgeSec } = await cachedRead(request, reply, key, async () =>
      await readStatusHistory(readStore, type, id, computed, Date.now(), opts.config.health))
    return sendCached(reply, { value: viewOf(value, String(effective), (h) => narrowHistory(h, effective)), maxAgeSec })
  })
}

export default statusRoutes
