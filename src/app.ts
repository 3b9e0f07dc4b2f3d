import { STATUS_CODES, type Server } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { type ConnectionError, type FastifyHttpOptions, type FastifyInstance, type FastifyLoggerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import type { Config } from './config.js'
import authPlugin from './plugins/auth.js'
import ingestPlugin from './plugins/ingest.js'
import limitsPlugin from './plugins/limits.js'
import prometheusPlugin from './plugins/prometheus.js'
import readCachePlugin from './plugins/read-cache.js'
import registryPlugin from './plugins/registry.js'
import sealerPlugin from './plugins/sealer.js'
import statusHistoryPlugin from './plugins/status-history.js'
import storePlugin from './plugins/store.js'
import streamPlugin from './plugins/stream.js'
import swaggerPlugin from './plugins/swagger.js'
import catalogRoutes from './routes/catalog.js'
import compareRoutes from './routes/compare.js'
import healthRoutes from './routes/health.js'
import ingestRoutes from './routes/ingest.js'
import leaderboardRoutes from './routes/leaderboard.js'
import metricsRoutes from './routes/metrics.js'
import providerSummaryRoutes from './routes/provider-summary.js'
import realtimeRoutes from './routes/realtime.js'
import trendsRoutes from './routes/trends.js'
import streamRoutes from './routes/stream.js'
import dashboardRoutes from './routes/dashboard.js'
import statusRoutes from './routes/status.js'
import { SharedSchemas } from './schemas/common.js'
import { ChatEventSchema, FetchEventSchema } from './schemas/ingest.js'
import type { MetricsStore } from './store/types.js'
import { describeErrors, refuseMediaType, rejectNonFiniteQuery } from './validation.js'
import { withHook } from './plugins/route-hooks.js'

export interface AppOptions {
  config: Config
  /** Use this store instead of creating one from the config (tests). */
  store?: MetricsStore | undefined
}

/** A request (headers and body) must arrive whole within this long; Node answers 408 after it. */
export const REQUEST_TIMEOUT_MS = 15_000

/**
 * How often Node looks for requests past the timeout: a slow body is cut between REQUEST_TIMEOUT_MS
 * and REQUEST_TIMEOUT_MS plus this (Node's default is 30 s).
 */
export const TIMEOUT_CHECK_MS = 1_000

/** Seconds a client is told to wait (Retry-After) when a read found the store unreachable. */
export const STORE_RETRY_AFTER_S = 2

/**
 * Node's own refusals before any route (431 for oversized headers, 400 for a bad Content-Length, 408
 * for a slow request), answered as Fastify answers them. Fastify's handler logs the error whole, and
 * Node's parse errors carry `rawPacket`, the request's raw bytes with the Authorization header: only
 * the error's code is logged here.
 */
export function clientErrorHandler (this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  // A reset, or a peer that can no longer be answered, gets no answer.
  if (err.code !== 'ECONNRESET' && socket.writable) {
    const [status, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Client Timeout']
      : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Exceeded maximum allowed HTTP header size'] : [400, 'Client Error']
    this.log.trace({ code: err.code, status }, 'client error')
    const body = JSON.stringify({ error: STATUS_CODES[status], message, statusCode: status })
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]!}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/**
 * Fastify's own options: one function for the server and the tests, so both validate and log alike.
 * Request bodies are limited to 1 MiB; the Authorization header never reaches the logs.
 */
export function serverOptions (config: Config, logger: false | FastifyLoggerOptions = { level: config.logLevel }): FastifyHttpOptions<Server> {
  return {
    // LOG_LEVEL=silent: no logger at all, rather than a child logger per request that writes nothing.
    logger: logger === false || logger.level === 'silent' ? false : { ...logger, redact: ['req.headers.authorization'] },
    bodyLimit: 1_048_576,
    // A slow client cannot hold a connection open for long (the handler itself never waits on Redis).
    // Node 20 enforces it only when the server is created with it: Fastify's own option, set on the
    // server afterwards, let a trickled body run 60 to 90 s.
    requestTimeout: REQUEST_TIMEOUT_MS,
    http: { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: TIMEOUT_CHECK_MS },
    clientErrorHandler,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    schemaErrorFormatter: (errors, dataVar) => new Error(describeErrors(errors as Parameters<typeof describeErrors>[0], dataVar))
  }
}

/** The service as a plugin: stores and buffers first, then routes. Nothing runs at import. */
export const app = fp(async (fastify: FastifyInstance, opts: AppOptions): Promise<void> => {
  for (const schema of [...SharedSchemas, ChatEventSchema, FetchEventSchema]) fastify.addSchema(schema)
  // Bodies are JSON only: anything else (text/plain included, which Fastify parses by default) is 415.
  fastify.removeContentTypeParser('text/plain')
  fastify.addContentTypeParser('*', refuseMediaType)
  // A read that found the store unreachable says when to try again.
  fastify.addHook('onError', (_request, reply, error, done) => {
    if (error.code === 'METRICS_STORE_UNAVAILABLE') void reply.header('retry-after', String(STORE_RETRY_AFTER_S))
    done()
  })
  // Only routes with a query schema can receive a coerced non-finite number.
  fastify.addHook('onRoute', (route) => {
    if (route.schema?.querystring !== undefined) route.preHandler = withHook(route.preHandler, rejectNonFiniteQuery, 'first')
  })
  await fastify.register(storePlugin, { config: opts.config, store: opts.store })
  await fastify.register(registryPlugin)
  await fastify.register(ingestPlugin, { config: opts.config })
  await fastify.register(readCachePlugin, { config: opts.config })
  // Before every route: it times the routes registered after it.
  await fastify.register(prometheusPlugin, { config: opts.config })
  await fastify.register(streamPlugin, { config: opts.config })
  await fastify.register(statusHistoryPlugin, { config: opts.config })
  await fastify.register(sealerPlugin, { config: opts.config })
  await fastify.register(authPlugin, { config: opts.config })
  await fastify.register(swaggerPlugin)
  await fastify.register(limitsPlugin, { config: opts.config })
  await fastify.register(healthRoutes)
  await fastify.register(ingestRoutes, { config: opts.config })
  await fastify.register(realtimeRoutes, { config: opts.config })
  await fastify.register(leaderboardRoutes, { config: opts.config })
  await fastify.register(providerSummaryRoutes)
  await fastify.register(trendsRoutes)
  await fastify.register(compareRoutes, { config: opts.config })
  await fastify.register(statusRoutes, { config: opts.config })
  await fastify.register(catalogRoutes, { config: opts.config })
  await fastify.register(metricsRoutes)
  await fastify.register(streamRoutes, { config: opts.config })
  await fastify.register(dashboardRoutes)
}, { name: 'metrics-service' })

/** Builds the whole service from a config object; the server entry and every test use this. */
export async function buildApp (opts: AppOptions & { logger?: false | FastifyLoggerOptions }): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(opts.config, opts.logger)).withTypeProvider<TypeBoxTypeProvider>()
  await fastify.register(app, opts)
  return fastify
}
