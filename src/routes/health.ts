import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { response, StringEnum } from '../schemas/common.js'

/** Liveness and readiness. Never cached, never behind a token. */
const healthRoutes: FastifyPluginAsync = async (fastify) => {
  const { metricsStore, flusher, lifecycle } = fastify

  fastify.get('/healthz', {
    schema: { tags: ['operating'], summary: 'Liveness: 200 while the process runs', response: { 200: response(Type.Object({ status: Type.Literal('ok') }), 'The process runs') } }
  }, async () => ({ status: 'ok' as const }))

  const Readiness = Type.Object({
    status: StringEnum(['ready', 'degraded', 'draining', 'unavailable'], { description: 'degraded: ready, but the store refused a group for its content within the last hour (set_aside_groups); draining: shutting down, still accepting until it stops listening' }),
    store: StringEnum(['redis', 'memory']),
    pending_events: Type.Integer({ description: 'events accepted and not yet written' }),
    set_aside_groups: Type.Integer({ description: 'groups the store refused for their content within the last day (logged whole; counted in GET /metrics)' })
  })
  fastify.get('/readyz', {
    schema: {
      tags: ['operating'],
      summary: 'Readiness: 200 when the store answers (ready or degraded), else 503 (unavailable, or draining on shutdown)',
      response: { 200: response(Readiness, 'The store answers'), 503: response(Readiness, 'The store does not answer, or the service is shutting down') }
    }
  }, async (request, reply) => {
    const body = (status: 'ready' | 'degraded' | 'draining' | 'unavailable') => ({ status, store: metricsStore.kind, pending_events: flusher.pendingEvents, set_aside_groups: flusher.setAside().length })
    if (lifecycle.draining) return await reply.code(503).send(body('draining'))
    try {
      await metricsStore.ping()
      return body(flusher.degraded ? 'degraded' : 'ready')
    } catch (err) {
      request.log.warn({ err }, 'readiness: store not answering')
      return await reply.code(503).send(body('unavailable'))
    }
  })
}

export default healthRoutes
