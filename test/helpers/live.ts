import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { defaultConfig, type Config } from '../../src/config.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { MetricsStore } from '../../src/store/types.js'

export interface LiveApp<S extends MetricsStore> {
  app: FastifyInstance
  store: S
  /** http://127.0.0.1:PORT */
  base: string
  /** POSTs `body` to `path` (expects 202), then flushes the buffer to the store. */
  post: (path: string, body: unknown, headers?: Record<string, string>) => Promise<void>
}

/**
 * The app as the server builds it (logging off), listening on 127.0.0.1 on a free port, for tests
 * that need real connections (event streams, browsers). The store: the one given, else Redis when
 * the config names it (the app's own), else an embedded one. Closed in teardown, with the store.
 */
export async function listenApp<S extends MetricsStore = MemoryStore> (t: Test, opts: { config?: Partial<Config>, store?: S } = {}): Promise<LiveApp<S>> {
  const given = opts.store ?? (opts.config?.redis === undefined ? new MemoryStore() : undefined)
  const app = await buildApp({ config: defaultConfig({ flushIntervalMs: 20, cacheTtlMs: 0, rateLimitMax: 0, ...opts.config }), store: given, logger: false })
  const store = app.metricsStore as S
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    // Node's fetch opens a spare connection after an aborted request; a connection that never sends
    // a request would hold close() until the keep-alive timeout.
    app.server.closeAllConnections()
    await app.close()
    await given?.close()
  })
  const { port } = app.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`
  const post: LiveApp<S>['post'] = async (path, body, headers = {}) => {
    const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    if (res.status !== 202) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`)
    await app.flusher.flush()
  }
  return { app, store, base, post }
}
