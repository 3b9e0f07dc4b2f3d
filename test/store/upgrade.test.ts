/**
 * Upgrading from the previous stored layout (docs/design.md, "Keys"): version 1 wrote minute,
 * 10-minute and hour buckets, no `fetches` index for gateways and no `metrics:schema` key. An app of
 * this version started on such a Redis answers every figure as computed from the events, before and
 * after a sealer pass; the old 10-minute hashes are never read (nor sealed) and expire on their own.
 * A Redis holding a layout this version does not know is never written to: start-up fails, naming
 * the version, and `llm-gateway-metrics check` says FAIL.
 */
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { checkRedis } from '../../src/cli/check.js'
import { defaultConfig } from '../../src/config.js'
import { Sealer } from '../../src/jobs/sealer.js'
import { bucketName, HOUR_MS, MINUTE_MS, TEN_MINUTES_MS } from '../../src/metrics/buckets.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { RedisStore } from '../../src/store/redis-store.js'
import type { GroupWrite, KeyWrite } from '../../src/store/types.js'
import { build } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { HOUR, inWindow, makeFixture, matches, postEvents, refLeaderboard, tokenSums, type EntityType, type FixtureEvent } from '../read/fixture.js'

/** The embedded store, keeping every flush's groups in order (sequence, groups). */
class Recorder extends MemoryStore {
  readonly flushes: Array<[number, GroupWrite[]]> = []
  override async applyGroups (seq: number, groups: GroupWrite[]): Promise<Array<Error | null>> {
    this.flushes.push([seq, groups])
    return await super.applyGroups(seq, groups)
  }
}

/**
 * The groups as version 1 wrote them: every minute bucket of an entity (not of a pair, not of the
 * index) also added to its 10-minute bucket (`…-m0+10m`, kept 2 hours after it ends), and no
 * `fetches` index.
 */
function asVersion1 (groups: GroupWrite[]): GroupWrite[] {
  return groups.map((g) => {
    const keys: KeyWrite[] = []
    const tens = new Map<string, KeyWrite>()
    for (const kw of g.keys) {
      if (/^metrics:index:\{gateway\}:fetches:/.test(kw.key)) continue
      keys.push(kw)
      const m = /^(metrics:(?:model|provider|gateway):\{[^}]*\}:(?:stats|ttft|total|tps|models|fetch_rt)):(\d{4}-\d{2}-\d{2}-\d{2})-(\d)\d$/.exec(kw.key)
      if (m === null) continue
      const name = `${m[1]!}:${m[2]!}-${m[3]!}0+10m`
      let ten = tens.get(name)
      if (ten === undefined) {
        const start = Date.parse(`${m[2]!.slice(0, 10)}T${m[2]!.slice(11)}:${m[3]!}0:00Z`)
        tens.set(name, ten = { key: name, expireAt: start + TEN_MINUTES_MS + 2 * HOUR_MS, ops: [] })
      }
      ten.ops.push(...kw.ops)
    }
    return { marker: g.marker, keys: [...keys, ...tens.values()] }
  })
}

const WINDOWS = ['5m', '15m', '1h', '6h', '24h'] as const

/** What the app answers, checked against the events: the leaderboard of each window, and realtime figures of some entities. */
async function answersFromEvents (t: Test, app: FastifyInstance, events: FixtureEvent[], ids: Array<[EntityType, string]>, label: string): Promise<void> {
  let checked = 0
  for (const window of WINDOWS) {
    const lb = await app.inject({ method: 'GET', url: `/api/metrics/health/leaderboard?window=${window}&limit=100` })
    t.equal(lb.statusCode, 200)
    const body = lb.json<{ window: { from: string }, entries: Array<{ model: string, requests: number, success_rate: number | null, input_tokens: number, output_tokens: number }> }>()
    const want = refLeaderboard(inWindow(events, Date.parse(body.window.from)), { order: 'desc', limit: 100, minRequests: 1 })
    t.strictSame(body.entries.map((e) => [e.model, e.requests, e.success_rate, e.input_tokens, e.output_tokens]), want.map((e) => [e.model, e.requests, e.success_rate, e.input_tokens, e.output_tokens]), `${label}: leaderboard ${window}`)
    for (const [type, id] of ids) {
      const rt = await app.inject({ method: 'GET', url: `/api/metrics/realtime?type=${type}&id=${encodeURIComponent(id)}&window=${window}` })
      const r = rt.json<{ window: { from: string }, requests: number, input_tokens: number, output_tokens: number }>()
      const counted = inWindow(events, Date.parse(r.window.from)).filter((e) => matches(e, type, id))
      const x = tokenSums(counted)
      t.strictSame([r.requests, r.input_tokens, r.output_tokens], [counted.length, x.input_tokens, x.output_tokens], `${label}: realtime ${type}=${id} ${window}`)
      checked += counted.length
    }
  }
  t.ok(checked > 100, `${label}: ${checked} events counted`)
}

t.test('data written by the previous layout: read as it is, sealed by the next pass, answered alike', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return

  // The fixture's events, through the ingest path, recorded as the groups a flush writes.
  const now = Date.now()
  const events = makeFixture(now)
  const recorder = new Recorder()
  const { app: recording } = await build(t, { store: recorder })
  await postEvents(recording, events)
  const fetchOnly = { gateway: 'fetches-only', status: 'success', response_time_ms: 120, model_count: 2, models: ['a/1', 'b/2'], timestamp: now - 30 * MINUTE_MS }
  t.equal((await recording.inject({ method: 'POST', url: '/api/metrics/gateway/fetch', payload: [fetchOnly, { ...fetchOnly, timestamp: now - 3 * HOUR }] })).statusCode, 202)
  t.ok(await recording.flusher.flush())

  // Written to Redis as version 1 wrote them.
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  let tens = 0
  for (const [seq, groups] of recorder.flushes) {
    const v1 = asVersion1(groups)
    tens += v1.flatMap((g) => g.keys).filter((k) => k.key.endsWith('+10m')).length
    t.strictSame(await store.applyGroups(seq, v1), v1.map(() => null))
  }
  t.ok(tens > 0, `${tens} 10-minute hashes`)
  t.equal(await redis.client.exists('metrics:schema'), 0, 'no schema key')
  t.strictSame(await redis.client.keys('metrics:index:{gateway}:fetches:*'), [], 'no fetches index')

  // The 10-minute hashes are not read any more: what they hold changes no answer.
  const oldTens = (await redis.client.keys('metrics:*')).filter((k) => k.endsWith('+10m'))
  for (const k of oldTens.filter((k) => k.includes(':stats:'))) await redis.client.hincrby(k, 'n', 1000)

  const app = await buildApp({ config: defaultConfig({ redis: { url: redis.url }, flushIntervalMs: 20, cacheTtlMs: 0 }), logger: false })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(await redis.client.get('metrics:schema'), '2', 'the app marks the store as version 2 at start-up')
  t.ok(await redis.client.pttl('metrics:schema') > 29 * 24 * HOUR_MS)

  const ids: Array<[EntityType, string]> = [['model', 'openai/gpt-4o'], ['provider', 'openai'], ['provider', 'mistral'], ['gateway', 'default'], ['gateway', 'gw-east']]
  await answersFromEvents(t, app, events, ids, 'version-1 data')

  const sealer = new Sealer({ store: app.metricsStore, retentionHours: 168, log: app.log, member: 'upgrade' })
  const pass = await sealer.pass(Date.now())
  t.ok(pass.periods > 0 && pass.units > 0, `the pass seals version-1 buckets: ${pass.periods} periods, ${pass.units} units`)
  await answersFromEvents(t, app, events, ids, 'version-1 data, sealed')
  const left = (await redis.client.keys('metrics:*')).filter((k) => k.endsWith('+10m') && !k.includes(':sealed:'))
  t.strictSame(left.sort(), oldTens.sort(), 'the old 10-minute hashes are left as they are')
  for (const k of left) t.ok(await redis.client.pttl(k) > 0, `${k} still expires`)
  const hour = bucketName('hour', now - 30 * MINUTE_MS)
  t.equal(await redis.client.exists(`metrics:gateway:{fetches-only}:stats:${hour}`), 1, 'a gateway seen only through fetches before the upgrade has no fetches index: it stays live')
  const [[fetchStats]] = await app.metricsStore.read([{ keys: [`metrics:gateway:{fetches-only}:stats:${hour}`], slots: [0], nSlots: 1 }]) as [[Record<string, string>]]
  t.equal(fetchStats!['fetch:n'], '1', 'and is read live')
  t.strictSame(await sealer.pass(Date.now()), { periods: 0, units: 0, bytes: 0 }, 'nothing else is left to seal')
})

t.test('a store holding a layout this version does not know is never written to', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  await redis.client.set('metrics:schema', '3')
  const config = defaultConfig({ redis: { url: redis.url }, flushIntervalMs: 20, cacheTtlMs: 0 })
  let app: FastifyInstance | undefined
  await t.rejects(async () => {
    app = await buildApp({ config, logger: false })
    await app.ready()
  }, { name: 'StartupError', message: /stored-layout version 3 \(metrics:schema\).*version 2 only/ }, 'start-up fails, naming the version held and the one known')
  await app?.close().catch(() => {})
  t.equal(await redis.client.get('metrics:schema'), '3', 'the schema key is left as it is')
  t.strictSame(await redis.client.keys('metrics:*'), ['metrics:schema'], 'nothing else written')

  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  await t.rejects(store.checkLayout(), { name: 'StartupError', code: 'LAYOUT' }, 'RedisStore.checkLayout refuses it')

  const lines: string[] = []
  t.equal(await checkRedis({ REDIS_URL: redis.url }, (l) => lines.push(l)), false, 'check fails')
  t.match(lines.join('\n'), /^FAIL {2}schema: redis: the store holds stored-layout version 3/m, 'FAIL schema, naming the version')
  t.strictSame(await redis.client.keys('metrics:*'), ['metrics:schema'], 'and check writes no probe into it')
})

t.test('checkLayout: marks an empty store, keeps and refreshes its own version', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  await store.checkLayout()
  t.equal(await redis.client.get('metrics:schema'), '2', 'an empty store: version 2 from now on')
  t.ok(await redis.client.pttl('metrics:schema') > 29 * 24 * HOUR_MS, 'for 30 days')
  await redis.client.pexpire('metrics:schema', 5000)
  await store.checkLayout()
  t.equal(await redis.client.get('metrics:schema'), '2')
  t.ok(await redis.client.pttl('metrics:schema') > 29 * 24 * HOUR_MS, 'refreshed')
})
