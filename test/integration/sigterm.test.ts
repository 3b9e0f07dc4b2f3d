import t from 'tap'
import { bucketName } from '../../src/metrics/buckets.js'
import { startRedis } from '../helpers/redis.js'
import { spawnServer } from '../helpers/server.js'

t.test('SIGTERM right after a 202 loses nothing', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  // A long flush interval: only the shutdown flush can write these events.
  const server = await spawnServer({ REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '60000' })
  t.teardown(() => { server.proc.kill('SIGKILL') })

  let accepted = 0
  const batch = Array.from({ length: 250 }, (_, i) => ({ model: 'sig/term', success: i % 5 !== 0, ttft_ms: 100 + i }))
  for (let i = 0; i < 8; i++) {
    const res = await fetch(`${server.baseUrl}/api/metrics/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) })
    t.equal(res.status, 202)
    accepted += ((await res.json()) as { accepted: number }).accepted
  }
  server.proc.kill('SIGTERM')
  t.equal(await server.exited, 0, 'exits 0')
  const stats = await redis.client.hgetall(`metrics:model:{sig/term}:stats:${bucketName('hour', Date.now())}`)
  const minute = await redis.client.hgetall(`metrics:provider:{sig}:stats:${bucketName('hour', Date.now())}`)
  // Near an hour boundary the events may straddle two hours: add the previous hour too.
  const prev = await redis.client.hgetall(`metrics:model:{sig/term}:stats:${bucketName('hour', Date.now() - 3_600_000)}`)
  t.equal(Number(stats.n ?? 0) + Number(prev.n ?? 0), accepted, `all ${accepted} accepted events are in Redis`)
  t.ok(Number(minute.n ?? 0) > 0, 'the provider entity too')
  t.match(server.output(), /shutdown: buffer written/)
})

t.test('a bad configuration stops start-up with one line naming the variable', async (t) => {
  await t.rejects(spawnServer({ METRICS_FLUSH_INTERVAL_MS: 'soon' }), /METRICS_FLUSH_INTERVAL_MS/)
})

t.test('without Redis the server says it uses the embedded store', async (t) => {
  const server = await spawnServer({ REDIS_URL: '', REDIS_HOST: '' })
  t.teardown(() => { server.proc.kill('SIGKILL') })
  t.match(server.output(), /embedded in-process store/)
  const res = await fetch(`${server.baseUrl}/readyz`)
  t.equal(res.status, 200)
  server.proc.kill('SIGINT')
  t.equal(await server.exited, 0, 'SIGINT exits 0 too')
})
