import type { FastifyPluginAsync } from 'fastify'
import { Errors } from '../schemas/common.js'

/** GET /metrics for Prometheus: behind the read token when one is set, rate limited per client like the /api/ routes. */
const metricsRoutes: FastifyPluginAsync = async (fastify) => {
  const { prometheus } = fastify

  fastify.get('/metrics', {
    config: { auth: 'read' },
    schema: {
      tags: ['operating'],
      summary: "The service's own health, for Prometheus",
      description: 'Request durations by route and status; events accepted, refused, flushed and dropped; buffer, flushes, Redis errors and reconnects, read cache; process and event-loop figures. With METRICS_EXPORT_GENAI=true also the recorded model metrics as OpenTelemetry GenAI series (the METRICS_EXPORT_GENAI_TOP models with the most requests, the rest as `other`, over the last 5 minutes).',
      security: [{ readToken: [] }],
      response: {
        200: { description: 'The series, in the Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } },
        401: Errors[401],
        429: Errors[429]
      }
    }
  }, async (request, reply) => {
    const body = await prometheus.scrape(request.log)
    return await reply.type(prometheus.registry.contentType).send(body)
  })
}

export default metricsRoutes
