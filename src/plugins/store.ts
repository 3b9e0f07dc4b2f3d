import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { MemoryStore } from '../store/memory-store.js'
import { RedisStore } from '../store/redis-store.js'
import type { MetricsStore } from '../store/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    metricsStore: MetricsStore
    /**
     * This instance's name among those sharing the store (random per process): it marks the
     * instance's batches and its claims of shared jobs (sweeps, seals, the shared rate limit).
     */
    instanceId: string
  }
}

export interface StorePluginOptions {
  config: Config
  /** A store made by the caller (tests); closed by its maker, not here. */
  store?: MetricsStore | undefined
}

/** How long start-up waits for Redis before serving anyway (events are buffered until it answers). */
const CONNECT_WAIT_MS = 3_000

/**
 * Decorates `metricsStore`: Redis when configured, else the embedded in-process store. Closes only
 * what it created, after everything registered later has closed (so buffered events are written first).
 */
export default fp<StorePluginOptions>(async (fastify, opts) => {
  const { config } = opts
  let store: MetricsStore
  let owned = true
  if (opts.store !== undefined) {
    store = opts.store
    owned = false
  } else if (config.redis === undefined) {
    store = new MemoryStore()
    fastify.log.info('no REDIS_URL or REDIS_HOST set: using the embedded in-process store (data lives as long as this process)')
  } else {
    const redis = new RedisStore(config.redis)
    let starting = true
    redis.client.on('error', (err: Error & { lastNodeError?: Error }) => {
      // A refusal at start-up (password, database) ends it with its own line: see connect().
      if (starting && (err.name === 'ReplyError' || err.lastNodeError?.name === 'ReplyError')) return
      fastify.log.warn({ err: err.message }, 'redis connection error')
    })
    const connected = await redis.connect(CONNECT_WAIT_MS)
    starting = false
    // A store holding a layout this version does not know is never written to (a StartupError).
    if (connected) await redis.checkLayout().catch(async (err: unknown) => { await redis.close(); throw err })
    if (connected) fastify.log.info('connected to redis')
    else fastify.log.error('redis is not answering; serving anyway, events are buffered until it does')
    store = redis
  }
  fastify.decorate('metricsStore', store)
  fastify.decorate('instanceId', randomBytes(8).toString('hex'))
  fastify.addHook('onClose', async () => {
    if (owned) await store.close()
  })
}, { name: 'store' })
