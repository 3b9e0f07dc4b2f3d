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

t.test('SIGTERM drains: readiness turns 503 at once while events are still accepted, then all of them are written', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const server = await spawnServer({ REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '60000', METRICS_SHUTDOWN_DELAY_MS: '3000' })
  t.teardown(() => { server.proc.kill('SIGKILL') })
  const post = async (): Promise<number> => (await fetch(`${server.baseUrl}/api/metrics/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'drain/m', success: true }) })).status
  t.equal(await post(), 202)
  server.proc.kill('SIGTERM')
  // Bounded: the delay is 3 s, readiness must say draining well within it.
  let ready: { status: number, body: { status?: string } } = { status: 0, body: {} }
  for (let i = 0; i < 40 && ready.status !== 503; i++) {
    const res = await fetch(`${server.baseUrl}/readyz`)
    ready = { status: res.status, body: await res.json() as { status?: string } }
    if (ready.status !== 503) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.equal(ready.status, 503, 'readiness 503 during the drain')
  t.equal(ready.body.status, 'draining')
  t.equal(await post(), 202, 'a request during the drain is still accepted')
  t.equal(await server.exited, 0, 'exits 0 after the delay')
  const hours = [bucketName('hour', Date.now()), bucketName('hour', Date.now() - 3_600_000)]
  let n = 0
  for (const h of hours) n += Number(await redis.client.hget(`metrics:model:{drain/m}:stats:${h}`, 'n') ?? 0)
  t.equal(n, 2, 'both events written')
})

t.test('a port already in use stops start-up with the error and its stack', async (t) => {
  const { createServer } = await import('node:net')
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => busy.close())
  const port = (busy.address() as { port: number }).port
  const err = await spawnServer({ REDIS_URL: '', REDIS_HOST: '' }, port).then(() => null, (e: Error) => e)
  t.match(err?.message, /start-up error: Error: listen EADDRINUSE[^\n]*\n\s+at /, 'one error line, then where it came from')
})
