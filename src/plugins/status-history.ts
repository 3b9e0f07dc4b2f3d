import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { StatusRecorder } from '../jobs/status-recorder.js'

declare module 'fastify' {
  interface FastifyInstance {
    statusRecorder: StatusRecorder
  }
}

/**
 * Decorates `statusRecorder`: once a minute, the health state changes of every active model,
 * provider and gateway are stored (idempotently; of the instances sharing the store, the first to
 * start a minute's sweep does it). Stopped on close.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const { health: th, retentionHours } = opts.config
  const recorder = new StatusRecorder({ store: fastify.metricsStore, th, retentionHours, log: fastify.log, member: fastify.instanceId })
  fastify.decorate('statusRecorder', recorder)
  fastify.addHook('onReady', async () => { recorder.start() })
  fastify.addHook('onClose', async () => { await recorder.stop() })
}, { name: 'status-history', dependencies: ['store'] })
