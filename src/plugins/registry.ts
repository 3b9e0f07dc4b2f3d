import fp from 'fastify-plugin'
import { Registry } from 'prom-client'
import type { FlushObserver } from '../ingest/flusher.js'
import { flushMetrics } from '../observability/service-metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The service's own series (GET /metrics, src/plugins/prometheus.ts). */
    metricsRegistry: Registry
    /** Times the flushes on `metricsRegistry`; handed to the Flusher when it is made. */
    flushObserver: FlushObserver
  }
}

/**
 * Decorates `metricsRegistry` and `flushObserver`, before the plugins whose objects report to them
 * are made: those take the observer in their constructor.
 */
export default fp(async (fastify) => {
  const registry = new Registry()
  fastify.decorate('metricsRegistry', registry)
  fastify.decorate('flushObserver', flushMetrics(registry))
}, { name: 'metrics-registry' })
