/**
 * Shutdown of the real server process under faults: SIGTERM in the middle of concurrent posting, and
 * SIGTERM while Redis is down. "On SIGTERM … writes everything it buffered, and exits 0: an event
 * answered with 202 before the signal is in the store afterwards"; what cannot be written is logged
 * with its count, never dropped silently.
 */
import t from 'tap'
import { bucketName } from '../../src/metrics/buckets.js'
import { startRedis } from '../helpers/redis.js'
import { spawnServer, type ServerProcess } from '../helpers/server.js'
import { logLines, postChat, runLoad, sleep, startPersistentRedis, sumN, until, waitFlushed, type ChatEventBody, expectModelTotals } from '../helpers/faults.js'

const T0 = Date.now() - 10_000
// The subtests are independent (own Redis, own server) and two of them mostly wait out the 10 s
// shutdown drain: run them side by side to keep the file short.
t.jobs = 3

async function exitWithin (s: ServerProcess, ms: number): Promise<number | null | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const r = await Promise.race([s.exited, new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms) })])
  clearTimeout(timer)
  return r
}

t.test('SIGTERM under concurrent load: exits 0 and every 202 is in Redis, exactly', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  // A long flush interval: only the shutdown drain writes.
  const s = await spawnServer({ REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '60000', METRICS_RATE_LIMIT_MAX: '0' })
  t.teardown(() => { if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL') })

  const models = ['term/a', 'term/b', 'other/c']
  const timestamps = new Set<number>()
  const makeBatch = (i: number): ChatEventBody[] => Array.from({ length: 1 + (i % 20) }, (_, k) => {
    const timestamp = T0 - ((i + k) % 3) * 60_000
    timestamps.add(timestamp)
    return { model: models[(i + k) % 3] as string, success: k % 4 !== 0, ttft_ms: 80 + k, timestamp }
  })
  let exited = false
  void s.exited.then(() => { exited = true })
  // Posting continues through the signal until the process is gone (bounded in count and time).
  const load = runLoad({ targets: [s.baseUrl], workers: 8, makeBatch, stop: () => exited, maxRequests: 200_000, deadlineMs: 30_000 })
  await sleep(1_500)
  s.proc.kill('SIGTERM')
  const code = await exitWithin(s, 25_000)
  exited = true
  const stats = await load
  t.equal(code, 0, 'exits 0')
  t.comment(`requests ${stats.requests}, statuses ${JSON.stringify(Object.fromEntries(stats.statuses))}, accepted events ${stats.accepted}; failures after the signal: ${stats.samples.slice(0, 2).join(' / ')}`)
  t.ok(stats.accepted > 0, 'events were accepted')
  t.same([...stats.statuses.keys()].filter((k) => k !== '202' && k !== '503' && k !== 'network-error'), [], 'every answer is 202, 503 (closing) or a refused connection')
  t.equal(stats.badAccepted, 0)

  const hours = new Set([...timestamps].map((ts) => bucketName('hour', ts)))
  const total = await expectModelTotals(t, redis.client, models, hours, stats)
  t.equal(total, stats.accepted, `Redis holds ${total} events = the sum of accepted over the 202s`)
  const written = logLines(s.output()).find((l) => l.msg === 'shutdown: buffer written')
  t.ok(written, 'the shutdown log says the buffer was written')
  t.equal(written?.flushedEvents, stats.accepted, 'and how many events it wrote')
})

t.test('SIGTERM while Redis is down: the process still exits and logs exactly how many events it lost', async (t) => {
  const redis = await startPersistentRedis(t)
  if (redis === null) return
  const s = await spawnServer({ REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '100', METRICS_RATE_LIMIT_MAX: '0' })
  t.teardown(() => { if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL') })

  await redis.kill()
  let accepted = 0
  for (let i = 0; i < 5; i++) {
    const batch: ChatEventBody[] = Array.from({ length: 40 + i }, (_, k) => ({ model: `lost/m${k % 3}`, success: true, ttft_ms: 100, timestamp: T0 }))
    const r = await postChat(s.baseUrl, batch)
    t.equal(r.status, 202, `batch ${i}: accepted while Redis is down`)
    accepted += r.accepted
  }
  s.proc.kill('SIGTERM')
  // The drain gives up after 10 s (SHUTDOWN_DRAIN_MS); close-with-grace's own limit is 15 s.
  const code = await exitWithin(s, 25_000)
  t.not(code, 'timeout', `the process exited (code ${String(code)})`)
  const lost = logLines(s.output()).find((l) => typeof l.lostEvents === 'number')
  t.ok(lost, 'a log line reports lost events')
  t.equal(lost?.lostEvents, accepted, `lostEvents = ${accepted}, the events accepted`)
  t.equal(lost?.level, 50, 'at error level')
  t.notMatch(s.output(), /shutdown: buffer written/, 'it does not claim the buffer was written')

  // Nothing landed behind the log's back: the store holds none of them.
  await redis.restart()
  const client = redis.client()
  t.teardown(() => client.disconnect())
  t.equal(await sumN(client, 'gateway', 'default', [bucketName('hour', T0)]), 0, 'Redis holds none of the lost events')
})

t.test('SIGTERM while Redis is frozen: exits within bounds; the "lost" events may still land later, never twice', async (t) => {
  const redis = await startPersistentRedis(t)
  if (redis === null) return
  const s = await spawnServer({ REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '100', METRICS_RATE_LIMIT_MAX: '0' })
  t.teardown(() => { if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL') })
  const ts = T0
  const warm = await postChat(s.baseUrl, [{ model: 'frozen/a', success: true, timestamp: ts }])
  t.equal(warm.status, 202)
  t.ok(await waitFlushed(s.baseUrl, 10_000), 'the warm-up event landed')

  redis.signal('SIGSTOP')
  let accepted = 0
  for (let i = 0; i < 5; i++) {
    const r = await postChat(s.baseUrl, Array.from({ length: 30 }, () => ({ model: 'frozen/a', success: true, timestamp: ts })))
    t.equal(r.status, 202, `batch ${i}: accepted while Redis is frozen`)
    accepted += r.accepted
  }
  s.proc.kill('SIGTERM')
  // Each drain attempt waits out the 2 s command timeout; the drain stops after 10 s, close-with-grace at 15 s.
  const code = await exitWithin(s, 25_000)
  t.not(code, 'timeout', `the process exited (code ${String(code)})`)
  const lost = logLines(s.output()).find((l) => typeof l.lostEvents === 'number')
  t.equal(lost?.lostEvents, accepted, `lostEvents = ${accepted}`)

  // The unanswered flush commands still sit in the frozen Redis's socket: on SIGCONT it may run them.
  redis.signal('SIGCONT')
  const client = redis.client()
  t.teardown(() => client.disconnect())
  const hour = [bucketName('hour', ts)]
  await until(async () => await sumN(client, 'model', 'frozen/a', hour) === 1 + accepted, 2_000, 100)
  const n = await sumN(client, 'model', 'frozen/a', hour) - 1
  t.comment(`after SIGCONT Redis holds ${n} of the ${accepted} events logged as lost`)
  // Only the sealed batch was ever sent (the events that came after it wait behind it); its repeated
  // attempts must count once: without the APPLY skip this would be a multiple of the batch.
  t.ok(n >= 0 && n <= accepted, `none counted twice: ${n} <= ${accepted}`)
})
