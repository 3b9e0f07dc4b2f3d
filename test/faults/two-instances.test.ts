/**
 * Two real server processes sharing one Redis: exact totals under concurrent load on both, and a
 * rate limit shared through Redis (each instance syncs its counts every RATE_LIMIT_SYNC_MS).
 */
import t, { type Test } from 'tap'
import { bucketName } from '../../src/metrics/buckets.js'
import { RATE_LIMIT_SYNC_MS } from '../../src/limits/shared-rate-limit.js'
import { startRedis } from '../helpers/redis.js'
import { spawnServer, type ServerProcess } from '../helpers/server.js'
import { logLines, postChat, runLoad, sleep, sumN, waitFlushed, type ChatEventBody, expectModelTotals } from '../helpers/faults.js'

const T0 = Date.now() - 10_000
const TOKEN = 'two-instances-token-0123456789'

async function exitWithin (s: ServerProcess, ms: number): Promise<number | null | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const r = await Promise.race([s.exited, new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms) })])
  clearTimeout(timer)
  return r
}

async function two (t: Test, env: Record<string, string>): Promise<[ServerProcess, ServerProcess]> {
  const servers = await Promise.all([spawnServer(env), spawnServer(env)])
  for (const s of servers) t.teardown(() => { if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL') })
  return servers
}

t.test('two instances on one Redis under concurrent load: totals exact', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const [a, b] = await two(t, { REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '100', METRICS_RATE_LIMIT_MAX: '0', METRICS_INGEST_TOKEN: TOKEN })

  const models = ['pair/a', 'pair/b', 'solo/c']
  const timestamps = new Set<number>()
  const makeBatch = (i: number): ChatEventBody[] => Array.from({ length: 1 + (i % 15) }, (_, k) => {
    const timestamp = T0 - ((i + k) % 3) * 60_000
    timestamps.add(timestamp)
    return { model: models[(i + k) % 3] as string, success: (i + k) % 6 !== 0, ttft_ms: 70 + k, timestamp }
  })
  const started = Date.now()
  // Both instances at once (round robin over the two), bounded by ~3 s and a request cap.
  const stats = await runLoad({ targets: [a.baseUrl, b.baseUrl], workers: 8, makeBatch, stop: () => Date.now() - started > 3_000, maxRequests: 100_000, deadlineMs: 20_000, token: TOKEN })
  t.comment(`requests ${stats.requests}, statuses ${JSON.stringify(Object.fromEntries(stats.statuses))}, accepted events ${stats.accepted}`)
  t.same([...stats.statuses.keys()], ['202'], 'every request answered 202')
  t.equal(stats.badAccepted, 0)

  t.ok(await waitFlushed(a.baseUrl, 20_000), 'instance A flushed')
  t.ok(await waitFlushed(b.baseUrl, 20_000), 'instance B flushed')
  a.proc.kill('SIGTERM')
  b.proc.kill('SIGTERM')
  t.equal(await exitWithin(a, 20_000), 0, 'A exits 0')
  t.equal(await exitWithin(b, 20_000), 0, 'B exits 0')

  const hours = new Set([...timestamps].map((ts) => bucketName('hour', ts)))
  const total = await expectModelTotals(t, redis.client, models, hours, stats)
  t.equal(total, stats.accepted, `Redis holds ${total} = the 202s' accepted summed over both instances`)
  t.equal(await sumN(redis.client, 'gateway', 'default', hours), stats.accepted, 'the gateway entity too')
  const flushed = [a, b].map((s) => logLines(s.output()).find((l) => l.msg === 'shutdown: buffer written')?.flushedEvents)
  t.comment(`events written per instance: ${flushed.join(' + ')}`)
  t.equal(Number(flushed[0]) + Number(flushed[1]), stats.accepted, 'the instances wrote the accepted events between them')
  const markers = await redis.client.keys('metrics:model:{pair/a}:flushed:*')
  t.equal(markers.length, 2, 'each instance keeps its own flush marker per entity')
})

t.test('a rate limit shared by two instances: about N requests in all, then 429 with Retry-After on both', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const N = 200
  // A long fixed window, so the test does not straddle two windows (checked below).
  const WINDOW_MS = 600_000
  const untilWindowEnd = WINDOW_MS - (Date.now() % WINDOW_MS)
  // The test takes up to ≈ 45 s on a loaded machine.
  if (untilWindowEnd < 75_000) {
    t.comment(`waiting ${untilWindowEnd} ms for the next rate-limit window`)
    await sleep(untilWindowEnd + 100)
  }
  const windowStart = Math.floor(Date.now() / WINDOW_MS)
  const [a, b] = await two(t, {
    REDIS_URL: redis.url,
    METRICS_FLUSH_INTERVAL_MS: '100',
    METRICS_INGEST_TOKEN: TOKEN,
    METRICS_RATE_LIMIT_MAX: String(N),
    METRICS_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS)
  })

  // One client, one token, alternating between the instances, one request every >= PAUSE_MS.
  const PAUSE_MS = 10
  // Instance A can only admit beyond N what B admitted since A's last sync (and vice versa). Allowing
  // two sync periods for a sync's own round trip: each instance gets at most one request per
  // 2 × PAUSE_MS, so it admits at most 2 × SYNC / (2 × PAUSE) requests the other has not yet seen.
  const SLACK = 2 * Math.ceil((2 * RATE_LIMIT_SYNC_MS) / (2 * PAUSE_MS))
  let admitted = 0
  const limited = { a: 0, b: 0 }
  let missingRetryAfter = 0
  let other = 0
  let sent = 0
  const deadline = Date.now() + 30_000
  let consecutive429 = 0
  // Until both instances have refused for well over two sync periods (bounded in count and time).
  for (; sent < 4 * N && Date.now() < deadline && consecutive429 < 60; sent++) {
    const which = sent % 2 === 0 ? 'a' : 'b'
    const r = await postChat(which === 'a' ? a.baseUrl : b.baseUrl, [{ model: 'limited/x', success: true }], { token: TOKEN })
    if (r.status === 202) {
      admitted++
      consecutive429 = 0
    } else if (r.status === 429) {
      limited[which]++
      consecutive429++
      if (r.retryAfter === null || !/^\d+$/.test(r.retryAfter)) missingRetryAfter++
      if (limited.a + limited.b === 1) t.match(r.body, { statusCode: 429, code: 'METRICS_RATE_LIMITED' }, 'a 429 says the rate limit was hit')
    } else {
      other++
    }
    await sleep(PAUSE_MS)
  }
  t.equal(Math.floor(Date.now() / WINDOW_MS), windowStart, 'the test stayed in one rate-limit window')
  t.comment(`sent ${sent}: ${admitted} admitted (N = ${N}, slack ${SLACK}), 429 from A ${limited.a}, from B ${limited.b}, other ${other}`)
  t.equal(other, 0, 'every answer is 202 or 429')
  t.ok(admitted >= N, `at least N (${N}) admitted: ${admitted}`)
  t.ok(admitted <= N + SLACK, `at most N + slack (${N + SLACK}) admitted: ${admitted} (two independent limits would admit ${2 * N})`)
  t.ok(limited.a > 0 && limited.b > 0, 'both instances answer 429')
  t.equal(consecutive429, 60, 'once over the limit, both keep refusing')
  t.equal(missingRetryAfter, 0, 'every 429 carries Retry-After')
  const shared = await redis.client.keys('metrics-ratelimit:*')
  t.equal(shared.length, 1, 'one shared counter for the token')
  const counted = (await redis.client.hvals(shared[0] as string)).reduce((sum, c) => sum + Number(c), 0)
  t.comment(`shared counter in Redis: ${counted}`)
  t.ok(counted <= sent, 'the shared counter never counts more requests than were sent')
})

t.test('a read cached by one instance sees another instance\'s events once METRICS_CACHE_TTL_MS has passed', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const ttl = 1_000
  const [a, b] = await two(t, { REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '50', METRICS_CACHE_TTL_MS: String(ttl), METRICS_INGEST_TOKEN: TOKEN })
  const url = `${a.baseUrl}/api/metrics/realtime?id=cache/x&window=5m`
  const first = await fetch(url)
  t.equal((await first.json() as { requests: number }).requests, 0)
  const maxAge = Number(first.headers.get('cache-control')?.match(/max-age=(\d+)/)?.[1])
  t.ok(maxAge >= 0 && maxAge <= ttl / 1000, `Cache-Control max-age ${maxAge} s is within the TTL`)
  t.equal((await postChat(b.baseUrl, [{ model: 'cache/x', success: true }], { token: TOKEN })).status, 202, 'instance B accepts an event')
  t.ok(await waitFlushed(b.baseUrl, 10_000), 'B flushed it')
  // A may still answer from its cache, but never past the TTL
  await sleep(ttl + 100)
  t.equal((await (await fetch(url)).json() as { requests: number }).requests, 1, 'A sees B\'s event after the TTL')
})
