import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { InvalidQueryError } from '../errors.js'
import { replyCached } from './cached-reply.js'
import { leaderboardComputation, narrowLeaderboard, readLeaderboard } from '../read/leaderboard.js'
import { readProviderSummary } from '../read/provider-summary.js'
import { narrowTrends, readTrends, STATLESS_METRICS, trendsComputation } from '../read/trends.js'
import { CacheControl, ReadErrors, response } from '../schemas/common.js'
import { LeaderboardQuerySchema, LeaderboardSchema, ProviderSummaryQuerySchema, ProviderSummarySchema, TrendsQuerySchema, TrendsSchema } from '../schemas/read.js'
import { cacheKeys } from '../read/cache-keys.js'

const read = { tags: ['reading'], security: [{ readToken: [] }] }

/**
 * Leaderboard, provider summary and trends: through the read cache, Cache-Control = its remaining
 * life. Each is computed for its normalised parameters (read/params.ts) and answered from that.
 */
const readRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/health/leaderboard', {
    config: { auth: 'read' },
    schema: { ...read, summary: 'Models ranked by health score', description: 'health_score = 100 × the Wilson lower bound (z = 1.96) of successes / requests; ties by requests (more first), then model id. Each entry carries its uptime in the window and its health state now. min_requests is rounded up to 1, 2 or 5 × a power of ten (the answer says which), and every limit up to 10, 25, 50 or 100 is cut from the leaderboard of that length, so that few distinct leaderboards are ever computed.', querystring: LeaderboardQuerySchema, response: { 200: response(LeaderboardSchema, 'The ranked models', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    // The schema's defaults are applied by validation; the ?? only satisfies the optional types.
    const { window = '1h', order = 'desc', limit = 10, min_requests: minRequests = 1 } = request.query
    const c = leaderboardComputation({ window, order, limit, minRequests })
    return await replyCached(request, reply, cacheKeys.leaderboard(c.window, c.order, c.limit, c.minRequests), async () =>
      await readLeaderboard(readStore, c, Date.now(), opts.config.health), { key: String(limit), project: (b) => narrowLeaderboard(b, limit) })
  })

  fastify.get('/api/metrics/provider/summary', {
    config: { auth: 'read' },
    schema: { ...read, summary: 'Figures per provider', description: 'Every provider with traffic in the window (or just the one asked), by requests then name.', querystring: ProviderSummaryQuerySchema, response: { 200: response(ProviderSummarySchema, 'The providers', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    const { window = '1h', provider } = request.query
    return await replyCached(request, reply, cacheKeys.providers(window, provider), async () =>
      await readProviderSummary(readStore, window, provider, Date.now()))
  })

  fastify.get('/api/metrics/trends', {
    config: { auth: 'read' },
    schema: { ...read, summary: 'One point per bucket of a metric of a model, provider or gateway', description: 'Oldest first, the current bucket last, empty buckets included (count 0, value null). model=ID is short for type=model&id=ID. metric=tokens: every point carries input_tokens and output_tokens, the sums over the requests of its bucket; value is their sum, count the requests. The points are the last of trends computed over 6, 24, 72 or 168 hours (by minute: 2 hours), shared by every hours value up to it.', querystring: TrendsQuerySchema, response: { 200: response(TrendsSchema, 'The points', CacheControl), ...ReadErrors } }
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

export default readRoutes
