/**
 * The state history (`status` hashes, written by the status recorder) across an hour boundary, with
 * the sealer moving the closed hour into its block before, between or after the recorder's sweeps:
 * readStatusHistory answers exactly as without sealing, on a real Redis, and as the embedded store
 * (which never seals) answers. Everything runs at a fixed clock (StatusRecorder.sweep, Sealer.pass and
 * readStatusHistory all take `now`); expiries are moved into real time so that Redis keeps the keys.
 *
 * The last test is what made test/cluster/health.test.ts fail once at 07:1x UTC: not the seal of hour
 * 06, but a sweep at a later minute (the app's own recorder on its timer, at the minute + 2 s) landing
 * before the suite's back-dated sweeps. The recorder's marker then holds the later minute, and every
 * sweep of an earlier minute skips its writes for that entity (APPLY skips a sequence at or below the
 * marker), so the changes only those sweeps would store (06:35 unknown → healthy) are never stored.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Test } from 'tap'
import t from 'tap'
import { Aggregator } from '../../src/ingest/aggregator.js'
import { Sealer } from '../../src/jobs/sealer.js'
import { HOUR_MS, MINUTE_MS } from '../../src/metrics/buckets.js'
import type { ChatEvent, EntityType } from '../../src/metrics/events.js'
import { DEFAULT_THRESHOLDS } from '../../src/metrics/status.js'
import { readStatusHistory, type HistoryAnswer } from '../../src/read/history.js'
import { StatusRecorder } from '../../src/jobs/status-recorder.js'
import { decodeBlock, partOf } from '../../src/store/layout.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { RedisStore } from '../../src/store/redis-store.js'
import { PARTS_PER_GROUP, type MetricsStore } from '../../src/store/types.js'
import { mulberry32 } from '../helpers/random.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

/** 07:12:50: hour 06 is closed (and past the seal delay), hour 07 is open. */
const NOW = Date.UTC(2024, 4, 15, 7, 12, 50)
const SHIFT = Math.ceil((Date.now() - NOW) / HOUR_MS) * HOUR_MS + 24 * HOUR_MS
const RETENTION_HOURS = 192
const th = DEFAULT_THRESHOLDS
const log = { warn: () => {}, debug: () => {}, info: () => {} } as unknown as FastifyBaseLogger
/** The last complete minute at NOW (07:11), and the start of the minute k minutes before it. */
const L = Math.floor(NOW / MINUTE_MS) * MINUTE_MS - MINUTE_MS
const minute = (k: number): number => L - k * MINUTE_MS

/** The health suite's shapes: changes in hour 06 and in hour 07, some only in 06. */
function traffic (): ChatEvent[] {
  const r = mulberry32(0x5EA1)
  const out: ChatEvent[] = []
  const add = (k: number, n: number, model: string, ok: (i: number) => boolean, gateway = 'gw'): void => {
    for (let i = 0; i < n; i++) {
      const success = ok(i)
      out.push({ model, provider: model.split('/')[0]!, gateway, success, errorType: success ? null : 'timeout', ttftMs: success ? 300 + Math.round(r() * 200) : undefined, totalMs: success ? 2500 : 10_000, inputTokens: 10, outputTokens: 200, ts: minute(k) + 500 + i * 97 + Math.floor(r() * 50) })
    }
  }
  for (let k = 40; k >= 0; k--) add(k, 10, 'steady/model', () => true)
  // fine from 06:31, failing from 07:06: unknown → healthy in hour 06, healthy → down in hour 07
  for (let k = 40; k >= 0; k--) add(k, 10, 'outage/model', () => k > 5, 'gw-out')
  // down from 06:47 to 06:54
  for (let k = 45; k >= 0; k--) add(k, 10, 'recovered/model', () => !(k >= 17 && k <= 24))
  let failRate = 0
  for (let k = 70; k >= 0; k--) {
    if (r() < 0.2) failRate = [0, 0.02, 0.3, 0.8][Math.floor(r() * 4)]!
    add(k, Math.floor(r() * 14), 'noisy/model', () => r() < failRate, 'gw-noisy')
  }
  return out
}

const EVENTS = traffic()
const TARGETS: Array<[EntityType, string]> = [
  ...['steady/model', 'outage/model', 'recovered/model', 'noisy/model'].map((m): [EntityType, string] => ['model', m]),
  ['provider', 'outage'], ['provider', 'noisy'], ['gateway', 'gw-out'], ['gateway', 'gw-noisy'], ['gateway', 'gw']
]

/** The store with every write's expiry moved into real time. */
function shifted (store: MetricsStore): MetricsStore {
  return {
    kind: store.kind,
    applyGroups: async (seq, groups) => await store.applyGroups(seq, groups.map((g) => ({ ...g, keys: g.keys.map((kw) => ({ ...kw, expireAt: kw.expireAt + SHIFT })) }))),
    shareCounts: async (items) => await store.shareCounts(items),
    claim: async (key, member, expireAt) => await store.claim(key, member, expireAt),
    claimOnce: async (items) => await store.claimOnce(items),
    fieldNames: async (keys) => await store.fieldNames(keys),
    liveFieldNames: async (keys) => await store.liveFieldNames(keys),
    seal: async (units) => await store.seal(units),
    read: async (reads) => await store.read(reads),
    ping: async () => { await store.ping() },
    close: async () => {}
  }
}

type Step = ['sweep' | 'pass', number]

/** The suite's sweeps: every 5 minutes from 30 minutes back, then twice again at NOW. */
const SWEEPS: Step[] = [...[30, 25, 20, 15, 10, 5, 0].map((b): Step => ['sweep', NOW - b * MINUTE_MS]), ['sweep', NOW], ['sweep', NOW]]
/** The app's sealer pass on its timer (5 s past the next minute): hour 06 and 07:00–07:10 are sealed. */
const PASS: Step = ['pass', Math.floor(NOW / MINUTE_MS) * MINUTE_MS + MINUTE_MS + 5_000]

/** Writes the traffic, runs the steps, and reads every target's history of the last 2 hours at NOW. */
async function run (store: MetricsStore, steps: Step[]): Promise<HistoryAnswer[]> {
  const agg = new Aggregator()
  for (const e of EVENTS) agg.addChat(e)
  const groups = agg.seal({ now: NOW, retentionHours: RETENTION_HOURS, instanceId: 'inst' })
  if ((await store.applyGroups(1, groups)).some((e) => e !== null)) throw new Error('the traffic was not stored')
  const recorder = new StatusRecorder({ store, th, retentionHours: RETENTION_HOURS, log, member: 'rec' })
  const sealer = new Sealer({ store, retentionHours: RETENTION_HOURS, log, member: 'seal' })
  for (const [kind, at] of steps) {
    if (kind === 'sweep') {
      const res = await recorder.sweep(at)
      if (res.failedGroups > 0) throw new Error(`sweep at ${new Date(at).toISOString()}: ${res.failedGroups} groups failed`)
    } else {
      await sealer.pass(at)
    }
  }
  return await Promise.all(TARGETS.map(async ([type, id]) => await readStatusHistory(store, type, id, 2, NOW, th)))
}

const brief = (h: HistoryAnswer): string[] => h.transitions.map((x) => `${x.at.slice(11, 16)} ${x.from}→${x.to}`)

async function freshRedis (t: Test, redis: TestRedis): Promise<MetricsStore> {
  await redis.client.flushall()
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true, 'a fresh Redis')
  return shifted(store)
}

t.test('status history read after a seal across an hour boundary equals the history without sealing', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  const reference = await run(shifted(mem), SWEEPS)
  const outage = reference[1]!
  t.strictSame(brief(outage), ['07:11 healthy→down', '06:35 unknown→healthy'], 'the reference (embedded store, never sealed) holds a change in each hour')
  t.ok(reference.filter((h) => h.transitions.some((x) => x.at < '2024-05-15T07')).length >= 4, 'changes stored in hour 06 for several entities')

  t.strictSame(await run(await freshRedis(t, redis), SWEEPS), reference, 'Redis, no seal: as the embedded store')

  const scenarios: Array<[string, Step[]]> = [
    ['sealed before the sweeps', [PASS, ...SWEEPS]],
    ...SWEEPS.slice(1, 7).map((_, i): [string, Step[]] => [`sealed between sweeps ${i + 1} and ${i + 2}`, [...SWEEPS.slice(0, i + 1), PASS, ...SWEEPS.slice(i + 1)]]),
    ['sealed after the sweeps', [...SWEEPS, PASS]],
    ['sealed before, between and after', [PASS, ...SWEEPS.slice(0, 3), PASS, ...SWEEPS.slice(3), PASS]],
    ['sealed after, then hour 07 sealed an hour later', [...SWEEPS, PASS, ['pass', PASS[1] + HOUR_MS]]]
  ]
  for (const [name, steps] of scenarios) {
    t.strictSame(await run(await freshRedis(t, redis), steps), reference, `Redis, ${name}: the same history, status and since`)
  }

  // The last scenario's stores: hour 06's `status` hashes are in blocks, not live.
  const tag = 'metrics:model:{outage/model}'
  t.equal(await redis.client.exists(`${tag}:status:2024-05-15-06`), 0, 'the status hash of hour 06 was sealed')
  t.equal(await redis.client.exists(`${tag}:status:2024-05-15-07`), 0, 'and so was hour 07\'s')
  const snaps = decodeBlock((await redis.client.getBuffer(`${tag}:sealed:2024-05-15-06`))!)
  const sealed = snaps.flatMap((s) => partOf(s, 'h', 'S') ?? [])
  t.ok(sealed.some((f) => String(f).startsWith('last:')), 'the block holds its `last:` fields')
})

t.test('what failed health.test.ts: a sweep at a later minute before back-dated sweeps makes them skip, sealed or not, on either store', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  // The app's recorder on its timer: 2 s past the next minute, before the suite's sweeps.
  const timer: Step = ['sweep', Math.floor(NOW / MINUTE_MS) * MINUTE_MS + MINUTE_MS + 2_000]
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  const lost = await run(shifted(mem), [timer, ...SWEEPS])
  t.strictSame(brief(lost[1]!), ['07:11 healthy→down'], 'outage/model: the change of 06:35 is never stored')
  t.strictSame(await run(await freshRedis(t, redis), [timer, ...SWEEPS]), lost, 'Redis, no seal: the same loss')
  t.equal(await redis.client.get('metrics:model:{outage/model}:flushed:status'), String((Math.floor(NOW / MINUTE_MS) * MINUTE_MS) / MINUTE_MS * PARTS_PER_GROUP), 'the marker holds the timer\'s minute (07:12), later than every back-dated sweep')
  t.strictSame(await run(await freshRedis(t, redis), [timer, PASS, ...SWEEPS]), lost, 'Redis, hour 06 sealed: the same loss, no more')
})
