import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Registry } from 'prom-client'
import type { Config } from '../config.js'
import { GenAiSeries, readGenAiRows } from '../observability/genai.js'
import { processRegistry } from '../observability/process-metrics.js'
import type { DurationHistogram, DurationSeries } from '../observability/request-durations.js'
import { REJECT_REASONS, rejectReason, serviceMetrics, type ServiceMetrics } from '../observability/service-metrics.js'
import { cacheKeys } from '../read/cache-keys.js'
import { storeLoad } from '../read/store-load.js'
import { withHook } from './route-hooks.js'

declare module 'fastify' {
  interface FastifyInstance {
    prometheus: {
      /** This app's own registry (never prom-client's global one: a process may hold many apps). */
      registry: Registry
      /**
       * What GET /metrics answers (content type `registry.contentType`): this app's series, then the
       * process's default metrics. `log` receives the store error when the GenAI series cannot be read.
       */
      scrape: (log?: FastifyBaseLogger) => Promise<string>
    }
  }
}

/** The `route` label of requests that matched no route: one label, whatever the URL. */
export const UNMATCHED_ROUTE = 'unmatched'

type Done = () => void

/**
 * Observes request durations of one route. A series is made once per method and status and kept,
 * so a request costs two map look-ups and a few array writes.
 */
class RouteTimer {
  readonly #series = new Map<string, Map<number, DurationSeries>>()
  readonly #histogram: DurationHistogram
  readonly #route: string

  constructor (histogram: DurationHistogram, route: string) {
    this.#histogram = histogram
    this.#route = route
  }

  observe (request: FastifyRequest, reply: FastifyReply): void {
    const method = request.method
    let byStatus = this.#series.get(method)
    if (byStatus === undefined) this.#series.set(method, byStatus = new Map())
    let series = byStatus.get(reply.statusCode)
    if (series === undefined) {
      series = this.#histogram.series({ method, route: this.#route, status_code: String(reply.statusCode) })
      byStatus.set(reply.statusCode, series)
    }
    series.observe(reply.elapsedTime / 1000)
  }
}

interface Emitter {
  on: (event: string, listener: () => void) => unknown
  off: (event: string, listener: () => void) => unknown
}

/**
 * Counts the Redis client's `error` and `reconnecting` events. Duck-typed: any store exposing an
 * event-emitting `client` (an ioredis Redis or Cluster) is watched; the embedded store has none.
 * Returns the function that stops watching.
 */
function watchRedis (store: object, m: ServiceMetrics): () => void {
  const client = (store as { client?: Partial<Emitter> }).client
  if (typeof client?.on !== 'function') return () => {}
  const emitter = client as Emitter
  const onError = (): void => { m.redisErrors.inc() }
  const onReconnecting = (): void => { m.redisReconnects.inc() }
  emitter.on('error', onError)
  emitter.on('reconnecting', onReconnecting)
  return () => {
    emitter.off('error', onError)
    emitter.off('reconnecting', onReconnecting)
  }
}

/**
 * Decorates `prometheus`: the service's own health in the Prometheus text format (README,
 * "Prometheus metrics"), served by GET /metrics (src/routes/metrics.ts). Request durations are observed by a hook added
 * to every route registered after this plugin (so register it before the routes), refusals of the
 * recording routes by their error hooks; the buffer and cache figures are plain numbers kept by
 * their owners and read at scrape time. With METRICS_EXPORT_GENAI=true, the recorded model metrics
 * are exported too, as OpenTelemetry GenAI series, through the read cache.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const { flusher, readCache, metricsStore, metricsRegistry: registry } = fastify
  // Made now rather than at the first scrape, so the event-loop delay monitor has samples by then.
  const processMetrics = processRegistry()
  const m = serviceMetrics(registry, { buffer: flusher, cache: readCache, reads: fastify.readBudget })
  const unwatch = watchRedis(metricsStore, m)
  fastify.addHook('onClose', async () => { unwatch() })

  fastify.addHook('onRoute', (route) => {
    const timer = new RouteTimer(m.httpDuration, route.url)
    route.onResponse = withHook(route.onResponse, (request: FastifyRequest, reply: FastifyReply, done: Done) => {
      timer.observe(request, reply)
      done()
    })
    const scope = route.config?.auth
    if (scope === 'ingest') {
      // Every reason from the start, so that rate() and alerts see a series before its first refusal.
      for (const reason of REJECT_REASONS) m.rejected.inc({ route: route.url, reason }, 0)
      route.onError = withHook(route.onError, (_request: FastifyRequest, _reply: FastifyReply, error: FastifyError, done: Done) => {
        m.rejected.inc({ route: route.url, reason: rejectReason(error) })
        done()
      })
    } else if (scope === 'read') {
      route.onError = withHook(route.onError, (_request: FastifyRequest, _reply: FastifyReply, error: FastifyError, done: Done) => {
        if (error.code === 'METRICS_STORE_UNAVAILABLE') m.readErrors.inc()
        done()
      })
    }
  })
  // Requests no route matched get Fastify's 404 handler, which carries only the app-wide hooks.
  const unmatched = new RouteTimer(m.httpDuration, UNMATCHED_ROUTE)
  fastify.addHook('onResponse', (request, reply, done) => {
    if (request.is404) unmatched.observe(request, reply)
    done()
  })

  const { enabled, topModels } = opts.config.genAiExport
  const genAi = enabled ? new GenAiSeries(registry) : null
  const refreshGenAi = async (genAi: GenAiSeries, log: FastifyBaseLogger): Promise<void> => {
    const load = storeLoad(log, async () => await readGenAiRows(metricsStore, topModels, Date.now()))
    genAi.update(await readCache.get(cacheKeys.genAi(topModels), load).then((cached) => cached.value, () => null))
  }
  const scrape = async (log: FastifyBaseLogger = fastify.log): Promise<string> => {
    if (genAi !== null) await refreshGenAi(genAi, log)
    return (await registry.metrics()) + (await processMetrics.metrics())
  }
  fastify.decorate('prometheus', { registry, scrape })
}, { name: 'prometheus', dependencies: ['store', 'metrics-registry', 'ingest', 'read-cache'] })
