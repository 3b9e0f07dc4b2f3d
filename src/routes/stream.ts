import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { InvalidQueryError, StreamFullError } from '../errors.js'
import { STREAM_RETRY_S } from '../plugins/stream.js'
import { ReadErrors, ReadingRoute } from '../schemas/common.js'
import { StreamQuerySchema } from '../schemas/stream.js'
import { StreamConnectionBusyError } from '../errors.js'
import { GATEWAYS_SHOWN, streamTopics } from '../stream/topics.js'

const DESCRIPTION = `Server-Sent Events. Each topic asked for is sent as the event of the same name, whose data is one line of JSON:
- \`leaderboard\`: the answer of GET /api/metrics/health/leaderboard with window, order, limit and min_requests;
- \`sparklines\`: {metric: "ttft", stat: "p50", resolution, from, step_seconds, series: {model: [value or null, …]}} for the leaderboard's models: the last hour by minute for windows up to 1h, else the last 24 hours by hour;
- \`providers\`: the answer of GET /api/metrics/provider/summary for the window;
- \`gateways\`: {window, gateways: [realtime answer of type gateway, with gateway_fetches]} for the ${GATEWAYS_SHOWN} gateways with the most requests in the window;
- \`realtime\`: the answer of GET /api/metrics/realtime for type, id and window;
- \`error\`: {topic, statusCode, code, message} when a topic could not be computed (the store is unreachable); the stream stays open.

The current snapshots come at once, then every METRICS_STREAM_INTERVAL_MS when they changed. Every distinct snapshot is computed once per interval however many streams listen: the leaderboard and sparklines for min_requests rounded up to 1, 2 or 5 × a power of ten and for 10, 25, 50 or 100 entries (each stream gets the first \`limit\`), like GET /api/metrics/health/leaderboard. The computations count against the instance's read budget (METRICS_READ_*): a snapshot the budget has no room for keeps its last frame until the next interval. A comment line (\`: ping\`) comes every METRICS_STREAM_HEARTBEAT_MS; a client that takes no bytes for two heartbeats is dropped. One stream per connection. HEAD answers the headers without opening a stream. With METRICS_READ_TOKEN set, send the token as Authorization: Bearer (browsers: read the stream with fetch, not EventSource). Beyond METRICS_STREAM_MAX_SUBSCRIBERS open streams: 503 with Retry-After.`

/** GET /api/metrics/stream: validates, opens a stream on the shared snapshots, answers with its body. */
const streamRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { readStore, readCache, metricsStream } = fastify

  fastify.get('/api/metrics/stream', {
    config: { auth: 'read' },
    schema: {
      summary: 'Live snapshots (leaderboard, providers, gateways, realtime) as Server-Sent Events',
      description: DESCRIPTION,
      ...ReadingRoute,
      querystring: StreamQuerySchema,
      response: {
        200: {
          description: 'An event stream that stays open until the client leaves or the service stops',
          content: { 'text/event-stream': { schema: { type: 'string', description: 'event: NAME / data: JSON frames and : ping comments' } } }
        },
        ...ReadErrors
      }
    }
  }, async (request, reply) => {
    // The schema's defaults are applied by validation; the defaults here only satisfy the optional types.
    const { topic: topics = ['leaderboard'], window = '1h', order = 'desc', limit = 10, min_requests: minRequests = 1, type = 'model', id } = request.query
    if (topics.includes('realtime') && id === undefined) throw new InvalidQueryError('querystring.id is required with topic realtime')
    if (metricsStream.full) {
      void reply.header('retry-after', String(STREAM_RETRY_S))
      throw new StreamFullError(metricsStream.maxSubscribers)
    }
    const socket = request.raw.socket
    // A request pipelined behind a stream on one connection could never be answered: it gets no slot.
    if (request.method !== 'HEAD' && metricsStream.carries(socket)) {
      void reply.header('retry-after', String(STREAM_RETRY_S))
      throw new StreamConnectionBusyError()
    }
    void reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache, no-transform')
      // nginx and the like would otherwise buffer the stream.
      .header('x-accel-buffering', 'no')
    // The headers a GET would get, and no stream: a HEAD has no body whose end would give a slot back.
    if (request.method === 'HEAD') return await reply.send()
    const conn = metricsStream.open(streamTopics({ topics, window, order, limit, minRequests, type, id: id ?? '' }, { store: readStore, readCache, log: request.log, health: opts.config.health }), socket, reply.raw)
    return await reply.send(conn.body)
  })
}

export default streamRoutes
