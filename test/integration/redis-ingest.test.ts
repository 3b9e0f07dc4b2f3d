import t from 'tap'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { startRedis } from '../helpers/redis.js'
import { SCHEMA_KEY } from '../../src/store/layout.js'

interface Expected { n: number, ok: number, ttftSumUs: number, timeouts: number }

t.test('events posted to a Redis-backed service land exactly, once, with TTLs', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const config = defaultConfig({ redis: { url: redis.url }, flushIntervalMs: 50, cacheTtlMs: 0 })
  const app = await buildApp({ config, logger: false })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.metricsStore.kind, 'redis')

  const rejected = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: [{ model: 'm/a', success: true }, { model: 'm/b', success: 'yes' }] })
  t.equal(rejected.statusCode, 400)
  await app.flusher.flush()
  t.same((await redis.client.keys('metrics:*')).filter((k) => k !== SCHEMA_KEY), [], 'a rejected request leaves no metrics key')

  const models = ['openai/gpt-4o', 'anthropic/claude-3.5-sonnet', 'mistral/large']
  const expected = new Map<string, Expected>()
  const now = Date.now()
  const events = []
  for (let i = 0; i < 1000; i++) {
    const model = models[i % 3] as string
    const success = i % 7 !== 0
    const ttft = 50 + (i * 37) % 900 + (i % 3) * 0.25
    const e = expected.get(model) ?? { n: 0, ok: 0, ttftSumUs: 0, timeouts: 0 }
    e.n++
    if (success) e.ok++
    else if (i % 2 === 0) e.timeouts++
    e.ttftSumUs += Math.round(ttft * 1000)
    expected.set(model, e)
    events.push({ model, success, ttft_ms: ttft, total_time_ms: ttft * 3, output_tokens: 50, timestamp: now - (i % 60) * 1000, ...(success ? {} : { error_type: i % 2 === 0 ? 'timeout' : 'network' }) })
  }
  const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: events })
  t.same(res.json(), { accepted: 1000 })
  t.ok(await app.flusher.flush(), 'everything flushed')

  for (const [model, e] of expected) {
    const hours = new Set(events.filter((x) => x.model === model).map((x) => bucketName('hour', x.timestamp)))
    let n = 0
    let sum = 0
    for (const h of hours) {
      const stats = await redis.client.hgetall(`metrics:model:{${model}}:stats:${h}`)
      n += Number(stats.n)
      sum += Number(stats['ttft:sum'])
    }
    t.equal(n, e.n, `${model}: exact count in Redis`)
    t.equal(sum, e.ttftSumUs, `${model}: exact ttft sum (µs) in Redis`)
    const rt = (await app.inject({ url: `/api/metrics/realtime?id=${encodeURIComponent(model)}&window=5m` })).json()
    t.match(rt, { requests: e.n, successes: e.ok, failures: e.n - e.ok, errors: { timeout: e.timeouts } }, `${model}: realtime`)
    t.equal(rt.ttft_ms.avg, Math.round(e.ttftSumUs / e.n) / 1000, `${model}: exact average`)
  }
  const provider = (await app.inject({ url: '/api/metrics/realtime?type=provider&id=openai&window=5m' })).json()
  t.equal(provider.requests, expected.get('openai/gpt-4o')?.n)
  const gateway = (await app.inject({ url: '/api/metrics/realtime?type=gateway&id=default&window=5m' })).json()
  t.equal(gateway.requests, 1000, 'every event counts towards its gateway')

  for (const key of await redis.client.keys('metrics-ratelimit:*')) t.ok(await redis.client.pttl(key) > 0, `${key} has a TTL`)
  const keys = await redis.client.keys('metrics:*')
  t.ok(keys.length > 0)
  for (const key of keys) {
    t.ok(key.startsWith('metrics:'), `${key} is under metrics:`)
    const ttl = await redis.client.pttl(key)
    t.ok(ttl > 0, `${key} has a TTL (${ttl})`)
  }
  // Layout version 2: minute and hour buckets only; 10-minute reads add up minute buckets.
  t.same(keys.filter((k) => k.endsWith('+10m')), [], 'no 10-minute bucket is written')
  t.equal(await redis.client.get('metrics:schema'), '2', 'the schema key names the layout')
  const encodings = await Promise.all(keys.filter((k) => !k.includes(':flushed:') && k !== 'metrics:schema').map(async (k) => await redis.client.object('ENCODING', k)))
  t.same([...new Set(encodings)], ['listpack'], 'every hash stays compact')

  const again = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model: 'openai/gpt-4o', success: true } })
  t.equal(again.statusCode, 202)
  await app.flusher.flush()
  const rt = (await app.inject({ url: '/api/metrics/realtime?id=openai/gpt-4o&window=5m' })).json()
  t.equal(rt.requests, (expected.get('openai/gpt-4o')?.n ?? 0) + 1, 'a second flush adds, once')
})

t.test('a flush whose reply was lost is not applied twice', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const config = defaultConfig({ redis: { url: redis.url }, flushIntervalMs: 60_000, cacheTtlMs: 0 })
  const app = await buildApp({ config, logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const store = app.metricsStore
  // Seal a batch as the flusher would, apply it, then apply it again as a retry or an ioredis re-send would.
  let sealed: Parameters<typeof store.applyGroups> | undefined
  const apply = store.applyGroups.bind(store)
  store.applyGroups = async (seq, groups) => {
    sealed = [seq, groups]
    return await apply(seq, groups)
  }
  await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: [{ model: 'x/y', success: true }, { model: 'x/y', success: false }] })
  await app.flusher.flush()
  t.ok(sealed)
  if (sealed !== undefined) t.same(await apply(...sealed), sealed[1].map(() => null), 'the repeat is accepted')
  const rt = (await app.inject({ url: '/api/metrics/realtime?id=x/y&window=5m' })).json()
  t.equal(rt.requests, 2, 'and counted once')
})
