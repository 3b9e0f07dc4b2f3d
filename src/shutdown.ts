import type { FastifyInstance } from 'fastify'
import { SHUTDOWN_DRAIN_MS } from './plugins/ingest.js'

/** How long close-with-grace lets a shutdown take before it exits anyway: the delay, the drain, and room. */
export function graceMs (shutdownDelayMs: number): number {
  return shutdownDelayMs + SHUTDOWN_DRAIN_MS + 5_000
}

/**
 * What close-with-grace runs on SIGTERM/SIGINT (or an uncaught error). A deploy must lose nothing:
 * first readiness turns to 503 (`draining`) so that load balancers stop sending, while the service
 * keeps accepting and flushing for `shutdownDelayMs`; then the app closes: it stops listening, finishes
 * in-flight requests, writes the buffer and closes Redis. Clients that still arrive meet a refused
 * connection or a 503 and retry (the SDK does, with the same idempotency key). After an uncaught
 * error there is no delay.
 */
export function gracefulClose (app: Pick<FastifyInstance, 'log' | 'close' | 'lifecycle'>, shutdownDelayMs = 0) {
  return async ({ signal, err }: { signal?: string, err?: Error }): Promise<void> => {
    app.lifecycle.draining = true
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    else {
      app.log.info({ signal, delayMs: shutdownDelayMs }, 'closing: readiness is 503; still accepting until the delay ends')
      if (shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, shutdownDelayMs))
    }
    await app.close()
  }
}
