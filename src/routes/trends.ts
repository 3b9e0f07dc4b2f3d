import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { InvalidQueryError } from '../errors.js'
import { replyCached } from './cached-reply.js'
import { STATLESS_METRICS } from '../metrics/trends.js'
import { narrowTrends, readTrends, trendsComputation } from '../read/trends.js'
import { CacheControl, ReadErrors, response, ReadingRoute } from '../schemas/common.js'
import { TrendsQuerySchema, TrendsSchema } from '../schemas/read.js'
import { cacheKeys } from '../read/cache-keys.js'

/**
 * Trends: through the read cache, Cache-Control = its remaining life. They are computed for their
 * normalised parameters (read/params.ts) and answered from that.
 */
const trendsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/trends', {
    config: { auth: 'read' },
    schema: { ...ReadingRoute, summary: 'One point per bucket of a metric of a model, provider or gateway', description: 'Oldest first, the current bucket last, empty buckets included (count 0, value null). model=ID is short for type=model&id=ID. metric=tokens: every point carries input_tokens and output_tokens, the sums over the requests of its bucket; value is their sum, count the requests. The points are the last of trends computed over 6, 24, 72 or 168 hours (by minute: 2 hours), shared by every hours value up to it.', querystring: TrendsQuerySchema, response: { 200: response(TrendsSchema, 'The points', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    const { metric = 'ttft', hours = 6, resolution = 'hour', ...q } = request.query
    if (q.model !== undefined && (q.type !== undefined || q.id !== undefined)) throw new InvalidQueryError('querystring.model is a short form of type=model&id=ID and cannot be combined with type or id')
    const id = q.model ?? q.id
    if (id === undefined) throw new InvalidQueryError('querystring.id is required (or model=ID)')
    const type = q.model !== undefined ? 'model' : (q.type ?? 'model')
    const statless = STATLESS_METRICS.includes(metric)
    if (statless && q.stat !== undefined) throw new InvalidQueryError(`querystring.stat does not apply to metric ${metric}`)
    if (resolution === 'minute' && hours > 2) throw new InvalidQueryError('querystring.resolution minute needs hours <= 2')
    const stat = statless ? null : (q.stat ?? 'p50')
    const c = trendsComputation({ type, id, metric, stat, hours, resolution })
    return await replyCached(request, reply, cacheKeys.trends(type, id, metric, stat, c.hours, resolution), async () =>
      await readTrends(readStore, c, Date.now()), { key: String(hours), project: (v) => narrowTrends(v, hours) })
  })
}

export default trendsRoutes
