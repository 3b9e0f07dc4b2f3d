import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { InvalidQueryError } from '../errors.js'
import { storeLoad } from '../read/store-load.js'
import { sendCached } from './cached-reply.js'
import { readLeaderboard } from '../read/leaderboard.js'
import { readProviderSummary } from '../read/provider-summary.js'
import { readTrends, RATE_METRICS } from '../read/trends.js'
import { CacheControl, ReadErrors, response } from '../schemas/common.js'
import { LeaderboardQuerySchema, LeaderboardSchema, ProviderSummaryQuerySchema, ProviderSummarySchema, TrendsQuerySchema, TrendsSchema } from '../schemas/read.js'
import { cacheKeys } from '../read/cache-keys.js'

const read = { tags: ['reading'], security: [{ readToken: [] }] }

/** Leaderboard, provider summary and trends: through the read cache, Cache-Control = its remaining life. */
const readRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { metricsStore, readCache } = fastify

  fastify.get('/api/metrics/health/leaderboard', {
    config: { auth: 'read' },
    schema: { ...read, summary: 'Models ranked by health score', description: 'health_score = 100 × the Wilson lower bound (z = 1.96) of successes / requests; ties by requests (more first), then model id. Each entry carries its uptime in the window and its health state now.', querystring: LeaderboardQuerySchema, response: { 200: response(LeaderboardSchema, 'The ranked models', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    // The schema's defaults are applied by validation; the ?? only satisfies the optional types.
    const { window = '1h', order = 'desc', limit = 10, min_requests: minRequests = 1 } = request.query
    const key = cacheKeys.leaderboard(window, order, limit, minRequests)
    return sendCached(reply, await readCache.get(key, storeLoad(request.log, async () =>
      await readLeaderboard(metricsStore, { window, order, limit, minRequests }, Date.now(), opts.config.health))))
  })

  fastify.get('/api/metrics/provider/summary', {
    config: { auth: 'read' },
    schema: { ...read, summary: 'Figures per provider', description: 'Every provider with traffic in the window (or just the one asked), by requests then name.', querystring: ProviderSummaryQuerySchema, response: { 200: response(ProviderSummarySchema, 'The providers', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    const { window = '1h', provider } = request.query
    const key = cacheKeys.providers(window, provider)
    return sendCached(reply, await readCache.get(key, storeLoad(request.log, async () =>
      await readProviderSummary(metricsStore, window, provider, Date.now()))))
  })

  fastify.get('/api/metrics/trends', {
    config: { auth: 'read' },
    schema: { ...read, summary: 'One point per bucket of a metric of a model, provider or gateway', description: 'Oldest first, the current bucket last, empty buckets included (count 0, value null). model=ID is short for type=model&id=ID.', querystring: TrendsQuerySchema, response: { 200: response(TrendsSchema, 'The points', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    const { metric = 'ttft', hours = 6, resolution = 'hour', ...q } = request.query
    if (q.model !== undefined && (q.type !== undefined || q.id !== undefined)) throw new InvalidQueryError('querystring.model is a short form of type=model&id=ID and cannot be combined with type or id')
    const id = q.model ?? q.id
    if (id === undefined) throw new InvalidQueryError('querystring.id is required (or model=ID)')
    const type = q.model !== undefined ? 'model' : (q.type ?? 'model')
    const isRate = (RATE_METRICS as readonly string[]).includes(metric)
    if (isRate && q.stat !== undefined) throw new InvalidQueryError(`querystring.stat does not apply to metric ${metric}`)
    if (resolution === 'minute' && hours > 2) throw new InvalidQueryError('querystring.resolution minute needs hours <= 2')
    const stat = isRate ? null : (q.stat ?? 'p50')
    const key = cacheKeys.trends(type, id, metric, stat, hours, resolution)
    return sendCached(reply, await readCache.get(key, storeLoad(request.log, async () =>
      await readTrends(metricsStore, { type, id, metric, stat, hours, resolution }, Date.now()))))
  })
}

export default readRoutes
