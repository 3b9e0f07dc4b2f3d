import Fastify, { type FastifyInstance, type FastifyLoggerOptions, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import type { Config } from './config.js'
import authPlugin from './plugins/auth.js'
import ingestPlugin from './plugins/ingest.js'
import limitsPlugin from './plugins/limits.js'
import prometheusPlugin from './plugins/prometheus.js'
import readCachePlugin from './plugins/read-cache.js'
import statusHistoryPlugin from './plugins/status-history.js'
import storePlugin from './plugins/store.js'
import streamPlugin from './plugins/stream.js'
import swaggerPlugin from './plugins/swagger.js'
import catalogRoutes from './routes/catalog.js'
import compareRoutes from './routes/compare.js'
import healthRoutes from './routes/health.js'
import ingestRoutes from './routes/ingest.js'
import metricsRoutes from './routes/metrics.js'
import readRoutes from './routes/read.js'
import realtimeRoutes from './routes/realtime.js'
import streamRoutes from './routes/stream.js'
import dashboardRoutes from './routes/dashboard.js'
import statusRoutes from './routes/status.js'
import { SharedSchemas } from './schemas/common.js'
import { ChatEventSchema, FetchEventSchema } from './schemas/ingest.js'
import type { MetricsStore } from './store/types.js'
import { describeErrors, rejectNonFiniteQuery } from './validation.js'
import { withHook } from './plugins/route-hooks.js'

export interface AppOptions {
  config: Config
  /** Use this store instead of creating one from the config (tests). */
  store?: MetricsStore | undefined
}

/**
 * Fastify's own options: one function for the server and the tests, so both validate and log alike.
 * Request bodies are limited to 1 MiB; the Authorization header never reaches the logs.
 */
export function serverOptions (config: Config, logger: false | FastifyLoggerOptions = { level: config.logLevel }): FastifyServerOptions {
  return {
    // LOG_LEVEL=silent: no logger at all, rather than a child logger per request that writes nothing.
    logger: logger === false || logger.level === 'silent' ? false : { ...logger, redact: ['req.headers.authorization'] },
    bodyLimit: 1_048_576,
    // A slow client cannot hold a connection open forever (the handler itself never waits on Redis).
    requestTimeout: 15_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    schemaErrorFormatter: (errors, dataVar) => new Error(describeErrors(errors as Parameters<typeof describeErrors>[0], dataVar))
  }
}

/** The service as a plugin: stores and buffers first, then routes. Nothing runs at import. */
export const app = fp(async (fastify: FastifyInstance, opts: AppOptions): Promise<void> => {
  for (const schema of [...SharedSchemas, ChatEventSchema, FetchEventSchema]) fastify.addSchema(schema)
  // Only routes with a query schema can receive a coerced non-finite number.
  fastify.addHook('onRoute', (route) => {
    if (route.schema?.querystring !== undefined) route.preHandler = withHook(route.preHandler, rejectNonFiniteQuery, 'first')
  })
  await fastify.register(storePlugin, { config: opts.config, store: opts.store })
  await fastify.register(ingestPlugin, { config: opts.config })
  await fastify.register(readCachePlugin, { config: opts.config })
  // Before every route: it times the routes registered after it.
  await fastify.register(prometheusPlugin, { config: opts.config })
  await fastify.register(streamPlugin, { config: opts.config })
  await fastify.register(statusHistoryPlugin, { config: opts.config })
  await fastify.register(authPlugin, { config: opts.config })
  await fastify.register(swaggerPlugin)
  await fastify.register(limitsPlugin, { config: opts.config })
  await fastify.register(healthRoutes)
  await fastify.register(ingestRoutes, { config: opts.config })
  await fastify.register(realtimeRoutes, { config: opts.config })
  await fastify.register(readRoutes, { config: opts.config })
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
