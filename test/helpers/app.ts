import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { defaultConfig, type Config } from '../../src/config.js'
import type { MetricsStore } from '../../src/store/types.js'
import { PeekStore } from './memory-store-peek.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * Builds the app exactly as the server does (same Fastify options), on the embedded store unless a
 * store is given, logging off, closed in teardown. The store is returned so tests can look inside
 * (the embedded one lists the keys it holds: test/helpers/memory-store-peek.ts).
 */
export async function build<S extends MetricsStore = PeekStore> (
  t: Teardown,
  opts: { config?: Partial<Config>, store?: S } = {}
): Promise<{ app: FastifyInstance, store: S }> {
  const store = (opts.store ?? new PeekStore()) as S
  const config = defaultConfig({ flushIntervalMs: 20, cacheTtlMs: 0, ...opts.config })
  const app = await buildApp({ config, store, logger: false })
  await app.ready()
  t.teardown(async () => {
    await app.close()
    if (opts.store === undefined) await store.close()
  })
  return { app, store }
}
