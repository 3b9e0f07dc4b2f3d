import { createServer } from 'node:net'
import t from 'tap'
import { connectStore, redisConfig } from '../../src/cli/common.js'
import { formatInspection, inspect } from '../../src/cli/inspect.js'
import { main } from '../../src/cli/commands.js'
import { listenApp } from '../helpers/live.js'
import { startRedis } from '../helpers/redis.js'
import type { RedisStore } from '../../src/store/redis-store.js'

const redis = await startRedis(t)

if (redis !== null) {
  t.test('inspect prints the realtime route\'s figures for the same entity and window', async (t) => {
    const live = await listenApp<RedisStore>(t, { config: { redis: { url: redis.url } } })
    const now = Date.now()
    const events = []
    for (let i = 0; i < 40; i++) {
      events.push(i % 8 === 3
        ? { model: 'acme/m1', gateway: 'g1', success: false, error_type: ['timeout', 'rate_limit', 'network', 'other'][(i >> 3) % 4], total_time_ms: 50 + i, timestamp: now - (i % 3) * 60_000 }
        : { model: 'acme/m1', gateway: 'g1', success: true, ttft_ms: 100 + i * 13, total_time_ms: 900 + i * 31, output_tokens: 50 + i, streamed: i % 5 !== 0, timestamp: now - (i % 3) * 60_000 })
    }
    await live.post('/api/metrics/chat', events)
    for (const [type, id] of [['model', 'acme/m1'], ['provider', 'acme'], ['gateway', 'g1']] as const) {
      const x = await inspect(live.store, type, id, '15m')
      const rt = await (await fetch(`${live.base}/api/metrics/realtime?type=${type}&id=${encodeURIComponent(id)}&window=15m`)).json() as Record<string, unknown>
      t.equal(x.total.requests, rt.requests, `${type} requests`)
      t.equal(x.total.successes, rt.successes)
      t.same(x.total.errors, rt.errors)
      t.same(x.total.ttft_ms, rt.ttft_ms)
      t.same(x.total.total_time_ms, rt.total_time_ms)
      t.same(x.total.output_tokens_per_second, rt.output_tokens_per_second)
      t.equal(x.buckets.length, 15)
      t.equal(x.buckets.reduce((s, b) => s + b.requests, 0), rt.requests, 'the buckets add up to the window')
      const text = formatInspection(x)
      const ttft = rt.ttft_ms as { p50: number, p90: number, p99: number }
      t.match(text.at(-1), new RegExp(`^window +${String(rt.requests)} +${String(rt.successes)} .* ${ttft.p50}/${ttft.p90}/${ttft.p99} `))
      t.equal(text.filter((l) => /^\d{4}-/.test(l)).length, 3, 'one line per bucket with requests')
    }
    // The command itself, with the service's environment.
    const written: string[] = []
    const write = process.stdout.write
    process.stdout.write = ((s: string) => { written.push(s); return true }) as typeof process.stdout.write
    let code
    try {
      code = await main(['inspect', '--type', 'model', '--id', 'acme/m1', '--window', '15m', '--json'], { REDIS_URL: redis.url })
    } finally {
      process.stdout.write = write
    }
    t.equal(code, 0)
    t.equal(JSON.parse(written.join('')).total.requests, 40)
  })

  t.test('figures with no value (only failed requests: no TTFT) print as "-"', async (t) => {
    const live = await listenApp<RedisStore>(t, { config: { redis: { url: redis.url } } })
    await live.post('/api/metrics/chat', [{ model: 'acme/m2', gateway: 'g1', success: false, error_type: 'timeout', total_time_ms: 30_000 }])
    const text = formatInspection(await inspect(live.store, 'model', 'acme/m2', '5m'))
    t.match(text.at(-1), /^window +1 +0 +1\/0\/0\/0 +-\/-\/- /)
    // The command prints the same table (the default window: 5m).
    const written: string[] = []
    const write = process.stdout.write
    process.stdout.write = ((s: string) => { written.push(s); return true }) as typeof process.stdout.write
    let code
    try {
      code = await main(['inspect', '--type', 'model', '--id', 'acme/m2'], { REDIS_URL: redis.url })
    } finally {
      process.stdout.write = write
    }
    t.equal(code, 0)
    t.equal(written.join(''), text.join('\n') + '\n')
  })
}

t.test('a Redis that accepts the connection but never answers fails in bounded time, one line', async (t) => {
  const silent = createServer(() => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise((resolve) => silent.close(resolve)) })
  const { port } = silent.address() as { port: number }
  // Drop the connections so close() can finish.
  silent.on('connection', (socket) => { t.teardown(() => { socket.destroy() }) })
  await t.rejects(connectStore(redisConfig({ REDIS_URL: `redis://127.0.0.1:${port}` }), 200), { name: 'CliError', message: 'redis is not answering within 200 ms' })
})
