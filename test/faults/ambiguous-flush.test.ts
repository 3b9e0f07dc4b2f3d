/**
 * Ambiguous flush failures: Redis applies a flush group, but its reply never reaches the service (the
 * connection is cut right then). ioredis reconnects and re-sends the unanswered commands, and the
 * flusher retries failed groups with the same sequence; the APPLY script's per-instance marker must
 * make every repeat a no-op, so Redis ends with exactly the events that were answered 202.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { startRedis } from '../helpers/redis.js'
import { RedisCutProxy, sleep, sumN, until, type ChatEventBody } from '../helpers/faults.js'

/**
 * In every APPLY call, whatever form ioredis gives it (EVAL with the script on a fresh socket,
 * EVALSHA afterwards): the group's marker key `…:flushed:<instance>`. Reads and rate-limit syncs never
 * carry it.
 */
const MARKER = ':flushed:'
const T0 = Date.now() - 5_000

interface Rig {
  app: FastifyInstance
  proxy: RedisCutProxy
  /** Straight to Redis, not through the proxy. */
  client: Redis
  accepted: Map<string, number>
  timestamps: Set<number>
  post: (model: string, n: number) => Promise<void>
  /** Log lines at warn and above. */
  warnings: Array<Record<string, unknown>>
}

async function rig (t: Test): Promise<Rig | null> {
  const redis = await startRedis(t)
  if (redis === null) return null
  const proxy = await RedisCutProxy.start(redis.port)
  const config = defaultConfig({ redis: { url: proxy.url }, flushIntervalMs: 50, cacheTtlMs: 0 })
  const warnings: Array<Record<string, unknown>> = []
  // Logging kept off the console; warnings are captured so a test can see the flusher's retries.
  const logger = { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line) as Record<string, unknown>) } } }
  const app = await buildApp({ config, logger })
  t.teardown(async () => {
    proxy.disarm()
    await app.close()
    await proxy.close()
  })
  await app.ready()
  t.equal(app.metricsStore.kind, 'redis')
  const accepted = new Map<string, number>()
  const timestamps = new Set<number>()
  let seq = 0
  const post = async (model: string, n: number): Promise<void> => {
    const events: ChatEventBody[] = Array.from({ length: n }, () => {
      const i = seq++
      // Three minute buckets, so each group writes several keys.
      const timestamp = T0 - (i % 3) * 60_000
      timestamps.add(timestamp)
      return { model, success: i % 4 !== 0, ttft_ms: 100 + (i % 50), total_time_ms: 900 + (i % 70), timestamp }
    })
    const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: events })
    if (res.statusCode !== 202) throw new Error(`POST answered ${res.statusCode}: ${res.body}`)
    const got = (res.json() as { accepted: number }).accepted
    accepted.set(model, (accepted.get(model) ?? 0) + got)
  }
  return { app, proxy, client: redis.client, accepted, timestamps, post, warnings }
}

async function flushed (t: Test, r: Rig): Promise<void> {
  const done = await until(() => r.app.flusher.pendingEvents === 0, 30_000, 20)
  t.ok(done, `everything flushed (pending events: ${r.app.flusher.pendingEvents})`)
}

/** Compares Redis (read directly) with the 202 answers: models, their providers, the gateway, the index. */
async function totalsExact (t: Test, r: Rig): Promise<void> {
  const hours = new Set([...r.timestamps].map((ts) => bucketName('hour', ts)))
  const minutes = new Set([...r.timestamps].map((ts) => bucketName('minute', ts)))
  let all = 0
  const byProvider = new Map<string, number>()
  for (const [model, n] of r.accepted) {
    all += n
    const provider = model.split('/')[0] as string
    byProvider.set(provider, (byProvider.get(provider) ?? 0) + n)
    t.equal(await sumN(r.client, 'model', model, hours), n, `${model}: hour buckets hold exactly the ${n} accepted events`)
    t.equal(await sumN(r.client, 'model', model, minutes), n, `${model}: minute buckets hold exactly ${n}`)
    let indexed = 0
    for (const h of hours) indexed += Number(await r.client.hget(`metrics:index:{model}:requests:${h}`, model) ?? 0)
    t.equal(indexed, n, `${model}: the activity index counts ${n}`)
  }
  for (const [provider, n] of byProvider) t.equal(await sumN(r.client, 'provider', provider, hours), n, `provider ${provider}: ${n}`)
  t.equal(await sumN(r.client, 'gateway', 'default', hours), all, `gateway default: ${all}`)
  t.comment(`accepted ${all} events; Redis holds ${await sumN(r.client, 'gateway', 'default', hours)}`)
}

t.test('a flush whose reply is lost after Redis applied it is not counted twice', async (t) => {
  const r = await rig(t)
  if (r === null) return
  // Warm up: the scripts are known and a first sequence has landed.
  await r.post('cut/one', 1)
  await flushed(t, r)
  const connectionsBefore = r.proxy.connections

  r.proxy.armCut(MARKER, 1)
  for (let i = 0; i < 3; i++) await r.post(i % 2 === 0 ? 'cut/one' : 'cut/two', 200)
  t.ok(await until(() => r.proxy.cuts >= 1, 10_000), 'the proxy cut the connection on a flush reply')
  await flushed(t, r)

  t.equal(r.proxy.cuts, 1, 'exactly one cut')
  t.match(r.proxy.cutRecords[0]?.reply, /^:1\r\n$/, 'the dropped reply says the group was applied: the write landed, the reply was lost')
  t.ok(r.proxy.connections > connectionsBefore, `ioredis reconnected (${r.proxy.connections} connections in all)`)
  const replies = Object.fromEntries(r.proxy.markedReplies)
  t.comment(`APPLY replies that got through: ${JSON.stringify(replies)}; flush retries logged: ${r.warnings.filter((w) => w.msg === 'flush failed, will retry').length}`)
  t.ok((replies[':0'] ?? 0) >= 1, 'the group whose reply was lost was sent again and skipped by Redis')
  await totalsExact(t, r)
})

t.test('a cut in the middle of a flush pipeline: the flusher retries the unanswered groups with the same sequence', async (t) => {
  const r = await rig(t)
  if (r === null) return
  await r.post('mid/a', 1)
  await flushed(t, r)

  // Two groups answered, the third one's reply dropped: ioredis aborts the rest of the pipeline
  // instead of re-sending it, so the flusher's own retry has to do the work.
  r.proxy.armCut(MARKER, 1, { skip: 2 })
  await r.post('mid/a', 150)
  await r.post('mid/b', 150)
  await r.post('other/c', 150)
  t.ok(await until(() => r.proxy.cuts >= 1, 10_000), 'cut')
  await flushed(t, r)
  t.match(r.proxy.cutRecords[0]?.reply, /^:1\r\n$/, 'the dropped reply was an applied write')
  const retries = r.warnings.filter((w) => w.msg === 'flush failed, will retry')
  t.comment(`flush retries: ${retries.map((w) => `${String(w.groups)} groups (${String((w.err as { message?: unknown } | undefined)?.message)})`).join('; ')}; APPLY replies: ${JSON.stringify(Object.fromEntries(r.proxy.markedReplies))}`)
  t.ok(retries.length >= 1, 'the flusher saw the failure and retried')
  t.ok((r.proxy.markedReplies.get(':0') ?? 0) >= 1, 'the retry of the applied group was skipped by Redis')
  await totalsExact(t, r)
})

t.test('several cuts in a row (the re-sent commands cut again) still count every event once', async (t) => {
  const r = await rig(t)
  if (r === null) return
  await r.post('row/a', 1)
  await flushed(t, r)

  const CUTS = 5
  r.proxy.armCut(MARKER, CUTS)
  // Keep events coming (bounded) until every armed cut has happened.
  for (let i = 0; i < 300 && r.proxy.cuts < CUTS; i++) {
    await r.post(i % 3 === 0 ? 'row/a' : i % 3 === 1 ? 'row/b' : 'other/c', 25)
    await sleep(20)
  }
  t.equal(r.proxy.cuts, CUTS, `${CUTS} cuts happened`)
  r.proxy.disarm()
  await flushed(t, r)

  const replies = r.proxy.cutRecords.map((c) => c.reply.trim())
  t.comment(`dropped replies: ${replies.join(' ')}; connections: ${r.proxy.connections}`)
  t.ok(replies.includes(':1'), 'at least one dropped reply was an applied write')
  t.ok(r.proxy.connections >= CUTS + 1, 'each cut forced a reconnect')
  await totalsExact(t, r)
})

t.test('one cut per batch, batch after batch: totals stay exact after each', async (t) => {
  const r = await rig(t)
  if (r === null) return
  await r.post('seq/a', 1)
  await flushed(t, r)
  for (let round = 1; round <= 3; round++) {
    r.proxy.armCut(MARKER, 1)
    await r.post('seq/a', 100 * round)
    await r.post('seq/b', 50)
    t.ok(await until(() => r.proxy.cuts >= round, 10_000), `round ${round}: cut`)
    await flushed(t, r)
    t.equal(r.proxy.cuts, round, `round ${round}: ${round} cuts so far`)
    t.match(r.proxy.cutRecords[round - 1]?.reply, /^:1\r\n$/, `round ${round}: the dropped reply was an applied write`)
    await totalsExact(t, r)
  }
})

t.test('a stalled connection (proxy paused past the command timeout): late commands and their retries count once', async (t) => {
  const r = await rig(t)
  if (r === null) return
  await r.post('stall/a', 1)
  await flushed(t, r)

  r.proxy.watch(MARKER)
  r.proxy.pause()
  await r.post('stall/a', 300)
  await r.post('stall/b', 100)
  const timedOut = (): number => r.warnings.filter((w) => w.msg === 'flush failed, will retry' && /timed out/i.test(String((w.err as { message?: unknown } | undefined)?.message))).length
  // Two attempts timed out: the first one and a retry with the same sequence both wait in the stalled socket.
  t.ok(await until(() => timedOut() >= 2, 15_000, 50), `flush attempts timed out while stalled (${timedOut()})`)
  r.proxy.resume()
  await flushed(t, r)
  const replies = Object.fromEntries(r.proxy.markedReplies)
  t.comment(`APPLY commands delivered after the stall: ${r.proxy.markedCommands}, their replies: ${JSON.stringify(replies)}`)
  t.ok((replies[':1'] ?? 0) > 0, 'the stalled originals were applied when they finally arrived')
  t.ok((replies[':0'] ?? 0) > 0, 'and the retries behind them reached Redis and were skipped')
  t.equal(r.proxy.cuts, 0, 'no cut in this test')
  await totalsExact(t, r)
})

// ioredis re-sends the rate-limit sync after a reconnect when its reply was lost: the sync writes
// each instance's absolute count (HSET), so the re-send cannot count the requests twice.
t.test('a lost reply to a rate-limit sync does not count requests twice', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const proxy = await RedisCutProxy.start(redis.port)
  const app = await buildApp({ config: defaultConfig({ redis: { url: proxy.url }, flushIntervalMs: 50, cacheTtlMs: 0, rateLimitMax: 1000, rateLimitWindowMs: 60_000 }), logger: false })
  t.teardown(async () => {
    await app.close()
    await proxy.close()
  })
  await app.ready()
  proxy.armCut('metrics-ratelimit:', 1)
  let sent = 0
  let admitted = 0
  // Requests spread over several 250 ms syncs; bounded.
  for (let i = 0; i < 40 && (proxy.cuts === 0 || i < 30); i++) {
    const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model: 'rl/a', success: true } })
    if (res.statusCode === 202) admitted++
    sent++
    await sleep(30)
  }
  t.equal(admitted, sent, `all ${sent} requests admitted (limit 1000)`)
  t.equal(proxy.cuts, 1, 'a sync reply was cut')
  const keys = await redis.client.keys('metrics-ratelimit:*')
  const sharedTotal = async (key: string): Promise<number> => (await redis.client.hvals(key)).reduce((sum, c) => sum + Number(c), 0)
  // Wait (bounded) until the last local counts are synced: the counter has reached the requests made
  // and stays put over more than one sync period (250 ms).
  let previous = -1
  await until(async () => {
    const now = await sharedTotal(keys[0] as string)
    const settled = now === previous && now >= sent
    previous = now
    return settled
  }, 5_000, 400)
  const counted = await sharedTotal(keys[0] as string)
  t.comment(`requests ${sent}; shared counter ${counted}; dropped reply ${quoted(proxy.cutRecords[0]?.reply)}; replies that got through ${JSON.stringify(Object.fromEntries(proxy.markedReplies))}`)
  t.equal(counted, sent, 'the shared counter equals the requests made')
})

function quoted (s: string | undefined): string {
  return JSON.stringify(s)
}
