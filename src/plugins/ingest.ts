import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { CardinalityGuard } from '../ingest/cardinality.js'
import { Flusher } from '../ingest/flusher.js'

declare module 'fastify' {
  interface FastifyInstance {
    flusher: Flusher
    cardinalityGuard: CardinalityGuard
    /** Set when a shutdown has begun: readiness answers 503 while recording goes on (src/shutdown.ts). */
    lifecycle: { draining: boolean }
  }
}

/** How long shutdown keeps trying to write what is buffered before it gives up and says so. */
export const SHUTDOWN_DRAIN_MS = 10_000

/**
 * Decorates `flusher`: accepted events are aggregated here and flushed to the store every
 * METRICS_FLUSH_INTERVAL_MS. On close, everything buffered is written (bounded wait); what cannot be
 * written is logged with its count, never dropped silently.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const { maxIds, maxPairs, maxCatalogIds, retentionHours } = opts.config
  const guard = new CardinalityGuard(fastify.metricsStore, { ...maxIds, ...maxPairs, catalog: maxCatalogIds }, { retentionHours, member: fastify.instanceId })
  const flusher = new Flusher({
    onFlushed: async () => { await guard.refresh() },
    store: fastify.metricsStore,
    intervalMs: opts.config.flushIntervalMs,
    maxBufferedKeys: opts.config.maxBufferedKeys,
    retentionHours: opts.config.retentionHours,
    idempotencyWindowMs: opts.config.idempotencyWindowMs,
    log: fastify.log,
    instanceId: fastify.instanceId,
    observer: fastify.flushObserver
  })
  fastify.decorate('lifecycle', { draining: false })
  fastify.decorate('flusher', flusher)
  fastify.decorate('cardinalityGuard', guard)
  fastify.addHook('onReady', async () => {
    await guard.refresh()
    flusher.start()
  })
  fastify.addHook('onClose', async () => {
    flusher.stop()
    const left = await flusher.drain(SHUTDOWN_DRAIN_MS)
    if (left > 0) fastify.log.error({ lostEvents: flusher.abandon() }, 'shutdown: the store did not confirm the buffered events; they may be lost')
    else fastify.log.info({ flushedEvents: flusher.flushedEvents }, 'shutdown: buffer written')
  })
}, { name: 'ingest', dependencies: ['store', 'metrics-registry'] })
