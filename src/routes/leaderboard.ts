import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { replyCached } from './cached-reply.js'
import { leaderboardComputation, narrowLeaderboard, readLeaderboard } from '../read/leaderboard.js'
import { CacheControl, ReadErrors, response, ReadingRoute } from '../schemas/common.js'
import { LeaderboardQuerySchema, LeaderboardSchema } from '../schemas/read.js'
import { cacheKeys } from '../read/cache-keys.js'

/**
 * The leaderboard: through the read cache, Cache-Control = its remaining life. It is computed for its
 * normalised parameters (read/params.ts) and answered from that.
 */
const leaderboardRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore } = fastify

  fastify.get('/api/metrics/health/leaderboard', {
    config: { auth: 'read' },
    schema: { ...ReadingRoute, summary: 'Models ranked by health score', description: 'health_score = 100 × the Wilson lower bound (z = 1.96) of successes / requests; ties by requests (more first), then model id. Each entry carries its uptime in the window and its health state now. min_requests is rounded up to 1, 2 or 5 × a power of ten (the answer says which), and every limit up to 10, 25, 50 or 100 is cut from the leaderboard of that length, so that few distinct leaderboards are ever computed.', querystring: LeaderboardQuerySchema, response: { 200: response(LeaderboardSchema, 'The ranked models', CacheControl), ...ReadErrors } }
  }, async (request, reply) => {
    // The schema's defaults are applied by validation; the ?? only satisfies the optional types.
    const { window = '1h', order = 'desc', limit = 10, min_requests: minRequests = 1 } = request.query
    const c = leaderboardComputation({ window, order, limit, minRequests })
    return await replyCached(request, reply, cacheKeys.leaderboard(c.window, c.order, c.limit, c.minRequests), async () =>
      await readLeaderboard(readStore, c, Date.now(), opts.config.health), { key: String(limit), project: (b) => narrowLeaderboard(b, limit) })
  })
}

export default leaderboardRoutes
