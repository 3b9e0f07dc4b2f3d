import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import type { Config } from '../config.js'
import { RATE_LIMIT_SYNC_MS, SharedRateLimit } from '../limits/shared-rate-limit.js'

/** A window as the messages state it: `1 s`, `60 s`, `1500 ms`. */
export function describeWindow (ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}

/** The @fastify/rate-limit store over a SharedRateLimit: one counter per key for every route. */
export function rateLimitStore (shared: Pick<SharedRateLimit, 'incr'>) {
  return class Store {
    incr (key: string, cb: (err: Error | null, res?: { current: number, ttl: number }) => void): void {
      cb(null, shared.incr(key))
    }

    child (): Store {
      return this
    }
  }
}

/** The routes under the rate limit: the /api/ routes and GET /metrics. */
export function isLimited (url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/metrics')
}

/**
 * CORS from the CORS_ORIGINS allow-list (none: no CORS headers), and a rate limit per bearer token
 * (else per IP) on the /api/ routes and GET /metrics, shared by all instances through the store
 * without a round trip per request (see SharedRateLimit). Health and docs routes are never limited.
 * Requests refused for their token are limited apart, per IP, by the auth plugin.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const { config } = opts
  if (config.corsOrigins.length > 0) {
    await fastify.register(cors, { origin: config.corsOrigins, methods: ['GET', 'POST'], allowedHeaders: ['authorization', 'content-type', 'idempotency-key'] })
  }
  if (config.rateLimitMax === 0) return
  const member = fastify.instanceId
  const shared = new SharedRateLimit(fastify.metricsStore, { windowMs: config.rateLimitWindowMs, syncMs: RATE_LIMIT_SYNC_MS, member })
  fastify.addHook('onClose', async () => { shared.close() })
  // Which routes are limited is decided once per route, here, rather than by an allow-list asked on
  // every request: the rate-limit plugin (whose onRoute hook runs after this one) then adds no hook at
  // all to the others, and a limited request is spared the allow-list call and its await.
  fastify.addHook('onRoute', (route) => {
    if (!isLimited(route.url)) route.config = { ...route.config, rateLimit: false }
  })
  await fastify.register(rateLimit, {
    global: true,
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    store: rateLimitStore(shared),
    keyGenerator: (request) => request.tokenId !== undefined ? `t:${request.tokenId}` : `ip:${request.ip}`,
    // Headers only on a 429 (with Retry-After): an admitted request carries none, which keeps the
    // hot ingest answer as small as it would be without a limit.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    errorResponseBuilder: (_request, ctx) => ({
      statusCode: ctx.statusCode,
      code: 'METRICS_RATE_LIMITED',
      error: 'Too Many Requests',
      // The configured window (ctx.after is what is left of the current one).
      message: `rate limit of ${ctx.max} requests per ${describeWindow(config.rateLimitWindowMs)} exceeded; retry after the Retry-After delay`
    })
  })
}, { name: 'limits', dependencies: ['store', 'auth'] })
