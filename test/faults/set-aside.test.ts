import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { MAX_SUM } from '../../src/store/types.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { SCHEMA_KEY } from '../../src/store/layout.js'

const chat = (payload: unknown) => ({ method: 'POST' as const, url: '/api/metrics/chat', payload: payload as object })

/** The service on a Redis of its own, flushing every 50 ms, its read cache off; null when Redis is missing outside CI. */
async function appOnRedis (t: Test): Promise<{ redis: TestRedis, app: FastifyInstance } | null> {
  const redis = await startRedis(t)
  if (redis === null) return null
  const app = await buildApp({ config: defaultConfig({ redis: { url: redis.url }, flushIntervalMs: 50, cacheTtlMs: 0 }), logger: false })
  t.teardown(() => app.close())
  await app.ready()
  return { redis, app }
}

/** Keys under `metrics:` that have no expiry (PTTL -1). */
async function keysWithoutTtl (redis: TestRedis): Promise<string[]> {
  const keys = await redis.client.keys('metrics:*')
  const ttls = await Promise.all(keys.map(async (k) => await redis.client.pttl(k)))
  return keys.filter((_, i) => ttls[i] === -1)
}

t.test('Redis-backed: extreme accepted events are stored exactly and never block later ones', async (t) => {
  const started = await appOnRedis(t)
  if (started === null) return
  const { redis, app } = started

  // The batch that once overflowed the tokens-per-second sum and stopped all recording.
  const extreme = { model: 'fast/m', success: true, ttft_ms: 0, total_time_ms: 0.001, output_tokens: 10_000_000 }
  const res = await app.inject(chat(Array.from({ length: 1000 }, () => extreme)))
  t.equal(res.statusCode, 202)
  t.ok(await app.flusher.flush(), 'flushed')
  t.equal((await app.inject(chat({ model: 'slow/m', success: true, ttft_ms: 10 }))).statusCode, 202)
  t.ok(await app.flusher.flush(), 'a later event of another model lands')

  const hour = bucketName('hour', Date.now())
  const stats = await redis.client.hgetall(`metrics:model:{fast/m}:stats:${hour}`)
  t.equal(stats.n, '1000')
  t.equal(stats['tokens:out'], String(1000 * 10_000_000), 'token sum exact')
  t.equal(stats['tps:n'], undefined, 'a 0.001 ms generation gives no tokens-per-second sample')
  const rt = (await app.inject({ url: '/api/metrics/realtime?id=slow/m&window=5m' })).json() as { requests: number }
  t.equal(rt.requests, 1)
  t.same(await keysWithoutTtl(redis), [], 'every key has a TTL')
  t.equal(app.flusher.setAsideGroups, 0)
})

t.test('Redis-backed: a group the store refuses is set aside, reported, and every other group lands', async (t) => {
  const started = await appOnRedis(t)
  if (started === null) return
  const { redis, app } = started

  // A sum already at the largest storable value (long accumulation, or written by hand).
  const hour = bucketName('hour', Date.now())
  const full = `metrics:model:{full/m}:stats:${hour}`
  await redis.client.hset(full, 'n', '1', 'ttft:sum', MAX_SUM)
  await redis.client.pexpire(full, 3_600_000)

  t.equal((await app.inject(chat([{ model: 'full/m', success: true, ttft_ms: 1 }, { model: 'other/m', success: true, ttft_ms: 5 }]))).statusCode, 202)
  t.ok(await app.flusher.flush(), 'the flush completes: nothing is left pending')
  t.equal(app.flusher.setAsideGroups, 1, 'one group set aside')
  t.equal(await redis.client.hget(full, 'n'), '1', 'nothing of it written')
  t.same(await keysWithoutTtl(redis), [], 'no key left without a TTL')

  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200, 'still ready: recording goes on')
  t.match(ready.json(), { status: 'degraded', set_aside_groups: 1 })
  const [entry] = app.flusher.setAside()
  t.match(entry, { marker: /full\/m/, reason: /METRICS_REFUSED .*ttft:sum/ })
  const scrape = (await app.inject({ url: '/metrics' })).body
  t.match(scrape, /llm_gateway_metrics_flush_groups_set_aside_total 1/)
  t.match(scrape, /llm_gateway_metrics_degraded 1/)

  // Every later batch lands, for other models and for the same provider and gateway.
  for (let i = 0; i < 3; i++) {
    t.equal((await app.inject(chat({ model: 'other/m', success: true, ttft_ms: 5 }))).statusCode, 202)
    t.ok(await app.flusher.flush())
  }
  const other = (await app.inject({ url: '/api/metrics/realtime?id=other/m&window=5m' })).json() as { requests: number }
  t.equal(other.requests, 4)
  const provider = (await app.inject({ url: '/api/metrics/realtime?type=provider&id=full&window=5m' })).json() as { requests: number }
  t.equal(provider.requests, 1, "the refused model's provider group landed")
  t.equal(app.flusher.setAsideGroups, 1)
})

t.test('Redis-backed: out of memory refuses the whole script up front; nothing is half written', async (t) => {
  const started = await appOnRedis(t)
  if (started === null) return
  const { redis, app } = started
  await redis.client.config('SET', 'maxmemory-policy', 'noeviction')
  await redis.client.config('SET', 'maxmemory', '1')
  t.equal((await app.inject(chat(Array.from({ length: 50 }, (_, i) => ({ model: `oom/m${i}`, success: true, ttft_ms: i + 1 }))))).statusCode, 202)
  t.equal(await app.flusher.flush(), false, 'not written while Redis is out of memory')
  t.same((await redis.client.keys('metrics:*')).filter((k) => k !== SCHEMA_KEY), [], 'and nothing half written')
  t.equal(app.flusher.setAsideGroups, 0, 'out of memory is not a refusal of the content: retried')
  await redis.client.config('SET', 'maxmemory', '0')
  t.equal(await app.flusher.drain(10_000), 0, 'lands once Redis has room')
  const rt = (await app.inject({ url: '/api/metrics/realtime?type=provider&id=oom&window=5m' })).json() as { requests: number }
  t.equal(rt.requests, 50)
  t.same(await keysWithoutTtl(redis), [])
})
