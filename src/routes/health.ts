import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { response, StringEnum } from '../schemas/common.js'

/** Liveness and readiness. Never cached, never behind a token. */
const healthRoutes: FastifyPluginAsync = async (fastify) => {
  const { metricsStore, ingestBuffer } = fastify

  fastify.get('/healthz', {
    schema: { tags: ['operating'], summary: 'Liveness: 200 while the process runs', response: { 200: response(Type.Object({ status: Type.Literal('ok') }), 'The process runs') } }
  }, async () => ({ status: 'ok' as const }))

  const Readiness = Type.Object({ status: StringEnum(['ready', 'unavailable']), store: StringEnum(['redis', 'memory']), pending_events: Type.Integer({ description: 'events accepted and not yet written' }) })
  fastify.get('/readyz', {
    schema: {
      tags: ['operating'],
      summary: 'Readiness: 200 when the store answers, else 503',
      response: { 200: response(Readiness, 'The store answers'), 503: response(Readiness, 'The store does not answer') }
    }
  }, async (request, reply) => {
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
