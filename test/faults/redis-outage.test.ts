/**
 * Redis outages against the real server process (src/server.ts): Redis frozen (SIGSTOP), killed
 * (SIGKILL) and restarted on the same port and append-only directory, a full buffer, reads while the
 * store is away. "Accepted means … lands, exactly once, when the store returns" (docs/api.md).
 */
import t, { type Test } from 'tap'
import { bucketName } from '../../src/metrics/buckets.js'
import { spawnServer, type ServerProcess } from '../helpers/server.js'
import {
  logLines, postChat, readyz, runLoad, sleep, startPersistentRedis, sumN, until, waitFlushed,
  type ChatEventBody, expectModelTotals
} from '../helpers/faults.js'

const T0 = Date.now() - 10_000

async function server (t: Test, env: Record<string, string>): Promise<ServerProcess> {
  const s = await spawnServer({ METRICS_CACHE_TTL_MS: '0', METRICS_RATE_LIMIT_MAX: '0', ...env })
  t.teardown(() => { if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL') })
  return s
}

/** SIGTERM by PID; the exit code, or 'timeout' if it has not exited within `ms` (a safety net). */
async function terminate (s: ServerProcess, ms = 20_000): Promise<number | null | 'timeout'> {
  s.proc.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const r = await Promise.race([s.exited, new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms) })])
  clearTimeout(timer)
  return r
}

t.test('chaos: Redis frozen, then killed and restarted, under load: every 202 lands exactly once', async (t) => {
  const redis = await startPersistentRedis(t)
  if (redis === null) return
  const s = await server(t, { REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '100' })

  const models = ['chaos/a', 'chaos/b', 'other/c']
  const timestamps = new Set<number>()
  const makeBatch = (i: number): ChatEventBody[] => {
    const size = 1 + (i % 10)
    return Array.from({ length: size }, (_, k) => {
      const timestamp = T0 - ((i + k) % 4) * 60_000
      timestamps.add(timestamp)
      return { model: models[(i + k) % models.length] as string, success: (i + k) % 5 !== 0, ttft_ms: 50 + ((i * 7 + k) % 400), timestamp }
    })
  }

  let phase = 'up'
  let stop = false
  const readiness: Array<{ phase: string, status: number | 'network-error' }> = []
  const poller = (async () => {
    for (let i = 0; i < 1000 && !stop; i++) {
      const r = await readyz(s.baseUrl, 5_000)
      readiness.push({ phase, status: r.status })
      await sleep(100)
    }
  })()
  const load = runLoad({ targets: [s.baseUrl], workers: 6, makeBatch, stop: () => stop, maxRequests: 200_000, deadlineMs: 30_000 })

  await sleep(1_000)
  phase = 'frozen'
  redis.signal('SIGSTOP')
  // Longer than twice the 2 s command timeout (a flush can first wait out the cardinality refresh
  // that follows the previous one): flush commands time out unanswered while they wait in Redis's
  // socket, and are executed when it resumes (the ambiguous case), after the flusher retried them.
  await sleep(4_500)
  redis.signal('SIGCONT')
  phase = 'thawed'
  await sleep(1_000)
  phase = 'killed'
  await redis.kill()
  await sleep(2_000)
  await redis.restart()
  phase = 'restarted'
  await sleep(1_500)
  stop = true
  const stats = await load
  await poller

  const statuses = Object.fromEntries(stats.statuses)
  t.comment(`requests ${stats.requests}, statuses ${JSON.stringify(statuses)}, accepted events ${stats.accepted}`)
  t.ok(stats.requests > 100, 'the load ran throughout')
  t.same(Object.keys(statuses).filter((k) => k !== '202' && k !== '503'), [], `every answer is 202 or 503 (${stats.samples.join('; ')})`)
  t.equal(stats.missingRetryAfter, 0, 'every 503 carries Retry-After')
  t.equal(stats.badAccepted, 0, 'every 202 accepts its whole batch')
  const down = readiness.filter((r) => (r.phase === 'frozen' || r.phase === 'killed') && r.status === 503).length
  t.comment(`readyz: ${readiness.length} polls, ${down} answered 503 while Redis was frozen or down`)
  t.ok(down >= 1, '/readyz answered 503 at least once while Redis was away')

  t.ok(await waitFlushed(s.baseUrl, 30_000), 'readyz 200 with pending_events 0 after Redis came back')
  t.equal(await terminate(s), 0, 'SIGTERM: exits 0')

  const client = redis.client()
  t.teardown(() => client.disconnect())
  const hours = new Set([...timestamps].map((ts) => bucketName('hour', ts)))
  const total = await expectModelTotals(t, client, models, hours, stats)
  t.equal(total, stats.accepted, `sum of n over the hour buckets (${total}) = events accepted (${stats.accepted})`)
  t.equal(await sumN(client, 'gateway', 'default', hours), stats.accepted, 'the gateway entity too')
  const lines = logLines(s.output())
  const failures = lines.filter((l) => l.msg === 'flush failed, will retry')
  const causes = new Set(failures.map((l) => String((l.err as { message?: unknown } | undefined)?.message ?? '?')))
  t.comment(`flush attempts failed: ${failures.length} (${[...causes].join(' | ')}); batches that landed after retries: ${lines.filter((l) => l.msg === 'flush landed after retries').length}`)
  // Not vacuous: a flush timed out while Redis was frozen, so it was retried while the original was
  // still waiting in Redis's socket (executed on SIGCONT): the repeat must have been skipped.
  t.ok([...causes].some((c) => /timed out/i.test(c)), 'a flush timed out during the freeze and was retried (ambiguous write)')
})

t.test('buffer full while Redis is down: 503 + Retry-After for new entity-buckets, 202 for held ones, all 202s land', async (t) => {
  const redis = await startPersistentRedis(t)
  if (redis === null) return
  const s = await server(t, { REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '50', METRICS_MAX_BUFFERED_KEYS: '100' })
  const ts = T0
  const one = (model: string, n = 1): ChatEventBody[] => Array.from({ length: n }, (_, i) => ({ model, success: i % 2 === 0, ttft_ms: 120, timestamp: ts }))
  const accepted = new Map<string, number>()
  const accept = (model: string, n: number): void => { accepted.set(model, (accepted.get(model) ?? 0) + n) }

  await redis.kill()
  // A first event, sealed into a batch by a flush that fails: the buffer then holds a sealed batch and a live one.
  const seed = await postChat(s.baseUrl, one('full/seed'))
  t.equal(seed.status, 202)
  accept('full/seed', 1)
  t.ok(await until(() => s.output().includes('flush failed, will retry'), 10_000), 'a flush failed while Redis is down')

  let refused: Awaited<ReturnType<typeof postChat>> | null = null
  let lastModel = ''
  let i = 0
  for (; i < 200; i++) {
    const model = `full/m${i}`
    const r = await postChat(s.baseUrl, one(model))
    if (r.status === 202) {
      accept(model, 1)
      lastModel = model
      continue
    }
    refused = r
    break
  }
  t.comment(`${accepted.size} models accepted before the buffer (100 entity-buckets) was full`)
  t.ok(refused !== null, 'new models are eventually refused')
  t.equal(refused?.status, 503, 'with 503')
  t.match(refused?.retryAfter, /^[1-9]\d*$/, `with Retry-After in whole seconds (${refused?.retryAfter})`)
  t.match(refused?.body, { statusCode: 503, code: 'METRICS_BUFFER_FULL', message: /buffer is full/ }, 'and a message saying why')
  const firstRefused = `full/m${i}`

  const again = await postChat(s.baseUrl, one(`full/m${i + 1}`))
  t.equal(again.status, 503, 'another new model: still 503')
  const known = await postChat(s.baseUrl, one(lastModel, 20))
  t.equal(known.status, 202, 'events for an entity-bucket already buffered (live batch) are still accepted')
  if (known.status === 202) accept(lastModel, 20)
  const sealedOne = await postChat(s.baseUrl, one('full/seed', 5))
  t.equal(sealedOne.status, 202, 'events for an entity-bucket held in the sealed batch are still accepted')
  if (sealedOne.status === 202) accept('full/seed', 5)
  const mixed = await postChat(s.baseUrl, [...one('full/m0', 3), ...one(firstRefused)])
  t.equal(mixed.status, 503, 'a batch naming one new model is refused as a whole')

  await redis.restart()
  t.ok(await waitFlushed(s.baseUrl, 30_000), 'everything flushed after Redis came back')
  const after = await postChat(s.baseUrl, one(firstRefused, 2))
  t.equal(after.status, 202, 'with room again, the refused model is accepted')
  if (after.status === 202) accept(firstRefused, 2)
  t.ok(await waitFlushed(s.baseUrl, 30_000), 'flushed again')
  t.equal(await terminate(s), 0, 'SIGTERM: exits 0')

  const client = redis.client()
  t.teardown(() => client.disconnect())
  const hour = [bucketName('hour', ts)]
  let total = 0
  for (const [model, n] of accepted) {
    const got = await sumN(client, 'model', model, hour)
    total += got
    if (got !== n) t.equal(got, n, `${model}: exactly its accepted events`)
  }
  let expected = 0
  for (const n of accepted.values()) expected += n
  t.equal(total, expected, `every model holds exactly its accepted events (${expected} events over ${accepted.size} models)`)
  t.equal(await sumN(client, 'model', `full/m${i + 1}`, hour), 0, 'a refused model left nothing')
  t.equal(await sumN(client, 'provider', 'full', hour), expected, 'the provider total is exact')
})

t.test('reads while Redis is frozen or down answer 503 METRICS_STORE_UNAVAILABLE, never hang', async (t) => {
  const redis = await startPersistentRedis(t)
  if (redis === null) return
  const s = await server(t, { REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '50' })
  const posted = await postChat(s.baseUrl, [{ model: 'down/a', success: true, ttft_ms: 100 }, { model: 'down/a', success: false, ttft_ms: 300 }])
  t.equal(posted.status, 202)
  t.ok(await waitFlushed(s.baseUrl, 10_000), 'flushed')

  const reads = [
    '/api/metrics/realtime?type=model&id=down/a&window=5m',
    '/api/metrics/health/leaderboard?window=1h',
    '/api/metrics/provider/summary?window=6h',
    '/api/metrics/trends?model=down/a&metric=requests&hours=2&resolution=minute'
  ]
  const get = async (path: string): Promise<{ status: number | 'hung', body: Record<string, unknown>, ms: number }> => {
    const start = Date.now()
    try {
      // The safety net: "never hang past a few seconds" (the command timeout is 2 s).
      const res = await fetch(`${s.baseUrl}${path}`, { signal: AbortSignal.timeout(8_000) })
      return { status: res.status, body: await res.json() as Record<string, unknown>, ms: Date.now() - start }
    } catch {
      return { status: 'hung', body: {}, ms: Date.now() - start }
    }
  }
  const allAnswer = async (label: string, status: number): Promise<void> => {
    const answers = await Promise.all(reads.map(get))
    answers.forEach((a, k) => {
      t.equal(a.status, status, `${label}: ${reads[k]} → ${status}`)
      if (status === 503) t.match(a.body, { statusCode: 503, code: 'METRICS_STORE_UNAVAILABLE', message: /unreachable/ }, `${label}: says the store is unreachable`)
    })
    t.comment(`${label}: answered in ${answers.map((a) => a.ms).join(', ')} ms`)
  }

  await allAnswer('Redis up', 200)
  redis.signal('SIGSTOP')
  await allAnswer('Redis frozen (SIGSTOP)', 503)
  t.equal((await readyz(s.baseUrl, 8_000)).status, 503, 'readyz 503 while frozen')
  redis.signal('SIGCONT')
  t.ok(await until(async () => (await readyz(s.baseUrl)).status === 200, 10_000, 100), 'readyz 200 after SIGCONT')
  await allAnswer('Redis thawed', 200)

  await redis.kill()
  await allAnswer('Redis killed', 503)
  t.equal((await readyz(s.baseUrl, 8_000)).status, 503, 'readyz 503 while down')
  await redis.restart()
  t.ok(await until(async () => (await readyz(s.baseUrl)).status === 200, 15_000, 100), 'readyz 200 after the restart')
  await allAnswer('Redis restarted', 200)
  const rt = await get(reads[0] as string)
  t.match(rt.body, { requests: 2, successes: 1 }, 'the data survived the SIGKILL (append-only file)')
  t.equal(await terminate(s), 0, 'SIGTERM: exits 0')
})
