/**
 * GET /metrics with a real Redis that goes away and comes back: the client's errors and reconnects
 * are counted (equal to what a listener of the test saw on the same client), flushes fail while it
 * is away, and every accepted event is flushed once it returns.
 */
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import type { RedisStore } from '../../src/store/redis-store.js'
import { startPersistentRedis, until } from '../helpers/faults.js'
import { histogram, sample, scrape } from '../helpers/prometheus.js'

const NS = 'llm_gateway_metrics_'

t.test('Redis stopped and restarted: errors, reconnects and failed flushes are counted', async (t) => {
  const redis = await startPersistentRedis(t)
  if (redis === null) return
  const app = await buildApp({ config: defaultConfig({ redis: { url: redis.url }, flushIntervalMs: 50, cacheTtlMs: 0, rateLimitMax: 0 }), logger: false })
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  await app.ready()

  const client = (app.metricsStore as RedisStore).client
  let errors = 0
  let reconnects = 0
  client.on('error', () => { errors++ })
  client.on('reconnecting', () => { reconnects++ })
  const base = await scrape(app)
  const counter = (m: typeof base, name: string): number => sample(m, `${NS}${name}`, 'counter') ?? NaN
  t.equal(counter(base, 'redis_errors_total'), 0, 'no errors while Redis is up')
  t.equal(counter(base, 'redis_reconnects_total'), 0)

  let accepted = 0
  const post = async (model: string): Promise<void> => {
    const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: [{ model, success: true, ttft_ms: 120 }, { model, success: false, error_type: 'network' }] })
    t.equal(res.statusCode, 202)
    accepted += 2
  }
  await post('acme/before')
  t.ok(await until(() => app.flusher.pendingEvents === 0, 10_000), 'flushed while Redis is up')

  await redis.kill()
  await post('acme/during')
  t.ok(await until(() => reconnects >= 3 && errors >= 2, 20_000), `the client saw the loss (${errors} errors, ${reconnects} reconnects so far)`)
  t.ok(await until(() => app.flusher.pendingEvents === 2, 1_000), 'the events posted meanwhile wait in the buffer')
  const down = await scrape(app)
  t.ok(counter(down, 'flush_errors_total') >= 1, `failed flushes counted while Redis is away (${counter(down, 'flush_errors_total')})`)
  t.equal(sample(down, `${NS}buffer_pending_events`, 'gauge'), 2)
  t.ok(sample(down, `${NS}buffer_entity_buckets`, 'gauge')! > 0, 'the buffer holds their entity-buckets')

  await redis.restart()
  t.ok(await until(() => client.status === 'ready' && app.flusher.pendingEvents === 0, 20_000), 'reconnected, and the buffer landed')
  const after = await scrape(app)
  t.equal(counter(after, 'redis_errors_total'), errors, `redis_errors_total = the ${errors} errors the client reported`)
  t.equal(counter(after, 'redis_reconnects_total'), reconnects, `redis_reconnects_total = the ${reconnects} reconnects the client reported`)
  t.equal(counter(after, 'events_flushed_total'), accepted, `every accepted event flushed (${accepted})`)
  t.equal(counter(after, 'events_dropped_total'), 0)
  const flushes = histogram(after, `${NS}flush_duration_seconds`)
  t.ok(flushes !== undefined && flushes.count > counter(after, 'flush_errors_total'), 'flush durations include the failed and the landed flushes')

  closed = true
  await app.close()
  const listeners = client.listenerCount('reconnecting')
  t.equal(listeners, 1, 'on close the plugin stopped listening (only the test listener is left)')
})
