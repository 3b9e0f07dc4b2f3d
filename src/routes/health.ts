import type { FastifyPluginAsync } from 'fastify'

/** Liveness and readiness. Never cached, never behind a token. */
const healthRoutes: FastifyPluginAsync = async (fastify) => {
  const { metricsStore, ingestBuffer } = fastify

  fastify.get('/healthz', async () => ({ status: 'ok' }))

  fastify.get('/readyz', async (request, reply) => {
    try {
      await metricsStore.ping()
      return { status: 'ready', store: metricsStore.kind, pending_events: ingestBuffer.pendingEvents }
    } catch (err) {
      request.log.warn({ err }, 'readiness: store not answering')
      return await reply.code(503).send({ status: 'unavailable', store: metricsStore.kind, pending_events: ingestBuffer.pendingEvents })
    }
  })
}

export default healthRoutes
