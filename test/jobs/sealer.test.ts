/**
 * The sealer (src/jobs/sealer.ts): a pass at a fixed time finds the closed periods through the
 * activity index, seals entities then the index, and reads answer as before; a second pass does
 * nothing; late events are sealed by the next pass; a gateway seen only through fetches is found
 * through the `fetches` index. On a timer, the instance that claims the minute runs the pass, errors
 * are logged and the next pass catches up. On the embedded store nothing happens.
 *
 * Bucket names are at a fixed clock; the expiries are moved into real time so that Redis keeps the
 * keys. The reference for every read is the embedded store given the same writes (it never seals).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Test } from 'tap'
import t from 'tap'
import { Aggregator } from '../../src/ingest/aggregator.js'
import { SEAL_CHUNK, Sealer, SEAL_DELAY_MS, type SealResult } from '../../src/jobs/sealer.js'
import { bucketName, HOUR_MS, MINUTE_MS } from '../../src/metrics/buckets.js'
import type { ChatEvent, FetchEvent } from '../../src/metrics/events.js'
import { decodeBlock, type SealUnit } from '../../src/store/layout.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { RedisStore } from '../../src/store/redis-store.js'
import type { Fields, GroupWrite, MergeRead, MetricsStore } from '../../src/store/types.js'
import { build } from '../helpers/app.js'
import { PeekStore } from '../helpers/memory-store-peek.js'
import { mulberry32 } from '../helpers/random.js'
import { startRedis } from '../helpers/redis.js'

const NOW = Date.UTC(2024, 4, 15, 12, 30, 15)
const at = (h: number, m: number, s = 0): number => Date.UTC(2024, 4, 15, h, m, s)
const SHIFT = Math.ceil((Date.now() - NOW) / HOUR_MS) * HOUR_MS

function logger (): { log: FastifyBaseLogger, warnings: Array<[unknown, string]>, debug: Array<[unknown, string]> } {
  const warnings: Array<[unknown, string]> = []
  const debug: Array<[unknown, string]> = []
  const log = { warn: (obj: unknown, msg: string) => { warnings.push([obj, msg]) }, debug: (obj: unknown, msg: string) => { debug.push([obj, msg]) } }
  return { log: log as unknown as FastifyBaseLogger, warnings, debug }
}

interface Data { chats: ChatEvent[], fetches: FetchEvent[] }

/** Chats over the 40 minutes before `now` and 3–5 hours before; fetches, some only from a gateway that serves nothing. */
function traffic (seed: number, n: number, now: number, models: string[]): Data {
  const rnd = mulberry32(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const chats: ChatEvent[] = []
  for (let i = 0; i < n; i++) {
    const model = pick(models)
    const ttftMs = rnd() < 0.9 ? Math.round(rnd() * 2_000_000) / 1000 : undefined
    const success = rnd() < 0.8
    chats.push({
      model,
      provider: rnd() < 0.8 ? model.split('/')[0]! : 'other',
      gateway: pick(['gw1', 'gw2']),
      success,
      errorType: success ? null : 'timeout',
      ttftMs,
      totalMs: ttftMs === undefined ? undefined : ttftMs + Math.round(rnd() * 5_000_000) / 1000,
      inputTokens: Math.floor(rnd() * 1000),
      outputTokens: Math.floor(rnd() * 1000),
      ts: rnd() < 0.7 ? now - Math.floor(rnd() * 40 * MINUTE_MS) : now - 3 * HOUR_MS - Math.floor(rnd() * 2 * HOUR_MS)
    })
  }
  const fetches: FetchEvent[] = Array.from({ length: n / 10 }, (_, i) => ({
    gateway: i % 2 === 0 ? 'fetch-only' : 'gw1',
    success: true,
    errorType: null,
    modelCount: 3,
    responseTimeMs: 10 + i,
    ts: now - Math.floor(rnd() * 40 * MINUTE_MS),
    ...(i % 5 === 0 ? { models: ['a/1', 'b/2'] } : {})
  }))
  return { chats, fetches }
}

function groupsOf (data: Data, now: number, shift: number): GroupWrite[] {
  const a = new Aggregator()
  for (const e of data.chats) a.addChat(e)
  for (const e of data.fetches) a.addFetch(e)
  return a.seal({ now, retentionHours: 168, instanceId: 'inst' }).map((g) => ({ marker: g.marker, keys: g.keys.map((kw) => ({ ...kw, expireAt: kw.expireAt + shift })) }))
}

/** Every key written, each read in a slot of its own, one read per hash tag (as the read side does). */
function readsOf (groups: GroupWrite[]): MergeRead[] {
  const byTag = new Map<string, Set<string>>()
  for (const g of groups) {
    for (const kw of g.keys) {
      const tag = kw.key.slice(0, kw.key.indexOf('}') + 1)
      if (!byTag.has(tag)) byTag.set(tag, new Set())
      byTag.get(tag)!.add(kw.key)
      // The 10-minute keys the read side asks for: the sum of their minutes.
      const minute = /-(\d{2}-\d{2}-\d{2})-(\d)\d$/.exec(kw.key)
      if (minute !== null) byTag.get(tag)!.add(kw.key.slice(0, -1) + '0+10m')
    }
  }
  const counters = /:(ttft|total|tps|fetch_rt|models|gateways|providers|dists|requests|successes|fetches):[^:]+$/
  return [...byTag.values()].map((set) => {
    const keys = [...set]
    return { keys, slots: keys.map((_, i) => i), nSlots: keys.length, counters: keys.map((k) => counters.test(k)) }
  })
}

async function same (t: Test, store: MetricsStore, mem: MemoryStore, reads: MergeRead[], label: string): Promise<void> {
  const got = await store.read(reads)
  const want = await mem.read(reads)
  const norm = (f: Fields): string => JSON.stringify(Object.entries(f).sort(([a], [b]) => (a < b ? -1 : 1)))
  const differ: string[] = []
  reads.forEach((r, i) => r.keys.forEach((k, j) => { if (norm(got[i]![j]!) !== norm(want[i]![j]!)) differ.push(k) }))
  t.strictSame(differ.slice(0, 5), [], `${label}: ${reads.reduce((n, r) => n + r.keys.length, 0)} keys read as the embedded store reads them`)
}

/** Records the units of each seal call; `fail` makes the next call reject. */
function spy (store: RedisStore): { store: MetricsStore, calls: SealUnit[][], fail: { next: boolean } } {
  const calls: SealUnit[][] = []
  const fail = { next: false }
  const wrapped: MetricsStore = {
    kind: 'redis',
    applyGroups: async (seq, groups) => await store.applyGroups(seq, groups),
    shareCounts: async (items) => await store.shareCounts(items),
    claim: async (key, member, expireAt) => await store.claim(key, member, expireAt),
    claimOnce: async (items) => await store.claimOnce(items),
    fieldNames: async (keys) => await store.fieldNames(keys),
    liveFieldNames: async (keys) => await store.liveFieldNames(keys),
    seal: async (units) => {
      if (fail.next) {
        fail.next = false
        throw new Error('connection lost')
      }
      calls.push(units)
      return await store.seal(units)
    },
    read: async (reads) => await store.read(reads),
    ping: async () => { await store.ping() },
    close: async () => {}
  }
  return { store: wrapped, calls, fail }
}

t.test('Sealer.pass on Redis at a fixed time', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  const { store: watched, calls } = spy(store)
  let before = 0
  const sealer = new Sealer({ store: watched, retentionHours: 168, log: logger().log, member: 'a', beforePass: async () => { before++ } })

  const data = traffic(1, 1500, NOW, ['acme/a', 'acme/b', 'beta/c', 'solo/d', 'x/{y}'])
  // A fetch in a 10 minutes without any chat: only the `fetches` index lists it.
  data.fetches.push({ gateway: 'fetch-only', success: false, errorType: 'timeout', modelCount: undefined, responseTimeMs: 5000, ts: at(11, 44) })
  const groups = groupsOf(data, NOW, SHIFT)
  t.strictSame(await store.applyGroups(1, groups), groups.map(() => null))
  await mem.applyGroups(1, groups)
  const reads = readsOf(groups)
  await same(t, store, mem, reads, 'live')

  const first = await sealer.pass(NOW)
  t.equal(before, 1, 'beforePass ran first')
  // Closed at 12:30:15 with a 2-minute delay: every 10 minutes up to 12:20 and every hour up to 12:00.
  const closedTen = ['2024-05-15-11-40', '2024-05-15-11-50', '2024-05-15-12-00', '2024-05-15-12-10']
  const closedHours = ['2024-05-15-07', '2024-05-15-08', '2024-05-15-09', '2024-05-15-10', '2024-05-15-11']
  const withData = new Set(groups.flatMap((g) => g.keys.map((kw) => /:(\d{4}-\d{2}-\d{2}-\d{2}(?:-\d)?)\d?$/.exec(kw.key)?.[1] ?? '')))
  t.equal(first.periods, [...closedTen.map((m) => m.slice(0, -1)), ...closedHours].filter((p) => withData.has(p)).length, `${first.periods} periods with live data, found through the index`)
  t.ok(first.units > SEAL_CHUNK, `${first.units} units`)
  t.ok(first.bytes > 0)
  t.ok(calls.every((c) => c.length <= SEAL_CHUNK), `${calls.length} seal calls of at most ${SEAL_CHUNK} units`)
  t.equal(calls.flat().length, first.units)

  // Entities first, then the index, period by period.
  const order = calls.flat().map((u) => [u.period, u.block.startsWith('metrics:index:') ? 'index' : 'entity'] as const)
  const periodsSealed = [...new Set(order.map(([p]) => p))]
  for (const p of periodsSealed) {
    const kinds = order.filter(([q]) => q === p).map(([, k]) => k)
    t.equal(kinds.indexOf('index'), kinds.length - 5, `${p}: its entities, then the five indexes`)
  }

  const live = (await redis.client.keys('metrics:*')).filter((k) => /:\d{4}-\d{2}-\d{2}-\d{2}(-\d{2})?$/.test(k) && !k.includes(':sealed:'))
  const closed = (k: string): boolean => closedHours.some((h) => k.endsWith(`:${h}`)) || closedTen.some((m) => new RegExp(`:${m.slice(0, -1)}\\d$`).test(k))
  t.strictSame(live.filter(closed), [], 'nothing of a closed period is left live')
  t.ok(live.some((k) => k.endsWith(':2024-05-15-12')) && live.some((k) => k.endsWith(':2024-05-15-12-25')), 'the open hour and the open 10 minutes stay live')
  t.equal(await redis.client.exists('metrics:gateway:{fetch-only}:sealed:2024-05-15-11-40+10m'), 1, 'a gateway that only fetches is sealed: the `fetches` index lists it')
  t.equal(await redis.client.exists('metrics:gateway:{fetch-only}:sealed:2024-05-15-11'), 1)
  t.equal(await redis.client.exists('metrics:model:{x/%7By%7D}:sealed:2024-05-15-12-10+10m'), 1, 'ids are encoded in block keys as in every key')
  await same(t, store, mem, reads, 'after the pass')

  calls.length = 0
  t.strictSame(await sealer.pass(NOW), { periods: 0, units: 0, bytes: 0 }, 'a second pass finds nothing live')
  t.equal(calls.length, 0, 'and seals nothing')

  // Late events into closed buckets: the next pass appends them to the blocks.
  const late = traffic(2, 300, NOW, ['acme/a', 'late/z'])
  const lateGroups = groupsOf(late, NOW, SHIFT)
  t.strictSame(await store.applyGroups(2, lateGroups), lateGroups.map(() => null))
  await mem.applyGroups(2, lateGroups)
  const reads2 = readsOf([...groups, ...lateGroups])
  await same(t, store, mem, reads2, 'late writes beside the blocks')
  const second = await sealer.pass(NOW)
  t.ok(second.periods > 0 && second.units > 0, `the next pass seals them (${second.periods} periods)`)
  const snaps = decodeBlock((await redis.client.getBuffer('metrics:model:{acme/a}:sealed:2024-05-15-11'))!)
  t.equal(snaps.length, 2, 'as a second snapshot')
  t.equal((await redis.client.keys('metrics:*')).filter((k) => !k.includes(':sealed:') && closed(k) && /:\d{4}-\d{2}-\d{2}-\d{2}(-\d{2})?$/.test(k)).length, 0, 'nothing closed is left live')
  await same(t, store, mem, reads2, 'after the second pass')
  t.strictSame(await sealer.pass(NOW), { periods: 0, units: 0, bytes: 0 })

  // Later: the hour and the 10 minutes that were open are closed now; periods past the retention leave the seal indexes.
  const short = new Sealer({ store, retentionHours: 3, log: logger().log, member: 'a' })
  const later = await short.pass(at(13, 2, 30))
  t.ok(later.periods >= 2, 'hour 12 and the 10 minutes from 12:20 are sealed at 13:02:30')
  t.strictSame((await redis.client.keys('metrics:*')).filter((k) => /:\d{4}-\d{2}-\d{2}-\d{2}(-\d{2})?$/.test(k) && !k.includes(':sealed:')), [], 'nothing is left live')
  const seals = await redis.client.hkeys('metrics:model:{acme/a}:seals')
  t.ok(seals.length > 0 && seals.every((p) => p >= '2024-05-15-10'), `hours before 10:00 (retention 3 h at 13:02) leave the index: ${seals.sort().join(' ')}`)
  t.ok(seals.includes('2024-05-15-12') && seals.includes('2024-05-15-11:late'), 'the periods kept stay, late marks included')
  await same(t, store, mem, reads2, 'after the hour is sealed and the index pruned')
})

t.test('Sealer.pass on the embedded store: nothing changes', async (t) => {
  const store = new PeekStore()
  t.teardown(() => store.close())
  const now = Date.now()
  const groups = groupsOf(traffic(3, 300, now, ['acme/a', 'beta/b']), now, 0)
  await store.applyGroups(1, groups)
  const keys = (await store.keys()).sort()
  const reads = readsOf(groups)
  const before = await store.read(reads)
  const result: SealResult = await new Sealer({ store, retentionHours: 168, log: logger().log, member: 'm' }).pass(now)
  t.equal(result.bytes, 0, 'no byte written')
  t.strictSame((await store.keys()).sort(), keys, 'the same keys, all live')
  t.strictSame(await store.read(reads), before)
})

t.test('the sealer on a timer: the instance that claims the minute passes; errors are logged; the next pass catches up', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const stores = [new RedisStore({ url: redis.url }), new RedisStore({ url: redis.url })]
  for (const s of stores) {
    t.teardown(() => s.close())
    t.equal(await s.connect(2000), true)
  }
  // Real time: the timer passes at Date.now().
  const now = Date.now()
  // Events from 55 to 15 minutes ago: no period holding any closes while the test runs.
  const groups = groupsOf(traffic(4, 400, now - 15 * MINUTE_MS, ['acme/a', 'beta/b']), now, 0)
  await stores[0]!.applyGroups(1, groups)
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  await mem.applyGroups(1, groups)

  const a = spy(stores[0]!)
  const b = spy(stores[1]!)
  const logs = [logger(), logger()]
  // B asks for each minute's claim after A has: A takes every minute.
  const claimedByA = new Map<string, () => void>()
  const aClaimed = (key: string): Promise<void> => new Promise((resolve) => { claimedByA.set(key, resolve) })
  const waits = new Map<string, Promise<void>>()
  const claims: Array<[string, string, boolean]> = []
  // A pass of A that outlasts its interval (under load) makes A's next pass a later second: the
  // second A passed over is then nobody's to wait for, and B leaves it too.
  const second = (key: string): number => Number(key.slice(key.lastIndexOf(':') + 1))
  let aLatest = -Infinity
  a.store.claim = async (key, member, expireAt) => {
    const won = await stores[0]!.claim(key, member, expireAt)
    claims.push(['a', key, won])
    aLatest = Math.max(aLatest, second(key))
    for (const [k, resolve] of claimedByA) if (second(k) <= aLatest) resolve()
    return won
  }
  b.store.claim = async (key, member, expireAt) => {
    if (!waits.has(key)) waits.set(key, aClaimed(key))
    if (second(key) <= aLatest) claimedByA.get(key)?.()
    await Promise.race([waits.get(key), new Promise((resolve) => setTimeout(resolve, 10_000))])
    if (!claims.some(([who, k]) => who === 'a' && k === key)) return false
    const won = await stores[1]!.claim(key, member, expireAt)
    claims.push(['b', key, won])
    return won
  }
  for (const key of Array.from({ length: 60 }, (_, i) => `metrics:job:{seal}:${Math.floor(now / 1000) + i}`)) waits.set(key, aClaimed(key))
  const sealers = [
    new Sealer({ store: a.store, retentionHours: 168, log: logs[0]!.log, member: 'a', intervalMs: 1000 }),
    new Sealer({ store: b.store, retentionHours: 168, log: logs[1]!.log, member: 'b', intervalMs: 1000 })
  ]
  a.fail.next = true
  for (const s of sealers) {
    s.start()
    s.start()
  }
  t.teardown(async () => { for (const s of sealers) await s.stop() })
  for (let i = 0; i < 300 && claims.filter(([who, , won]) => who === 'a' && won).length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  // B first: a pass of B waiting for A's claim is never left without it.
  for (const s of [sealers[1]!, sealers[0]!]) {
    await s.stop()
    await s.stop()
  }
  const aWon = claims.filter(([who, , won]) => who === 'a' && won).map(([, key]) => key)
  t.ok(aWon.length >= 3, `A claimed ${aWon.length} minutes`)
  t.ok(claims.filter(([who]) => who === 'b').every(([, key, won]) => !won && aWon.includes(key)), 'B asked for the same minutes and got none: one pass per minute')
  t.equal(b.calls.length, 0, 'B never sealed')
  t.equal(logs[0]!.warnings.length, 1, 'the failed pass is logged')
  t.match(logs[0]!.warnings[0], [{ err: { message: 'connection lost' } }, /sealing closed buckets failed; the next pass catches up/])
  t.ok(a.calls.length > 0, 'the next pass sealed')
  t.equal(logs[0]!.debug.length, 1, 'a pass that sealed something says so once; the passes after it found nothing')
  t.match(logs[0]!.debug[0], [{ units: Number }, 'sealed closed buckets'])
  t.equal(logs[1]!.warnings.length + logs[1]!.debug.length, 0, 'B logged nothing')
  const closedTen = bucketName('tenmin', now - SEAL_DELAY_MS - 30 * MINUTE_MS)
  t.equal(await redis.client.exists(`metrics:model:{acme/a}:sealed:${closedTen}`), 1, `blocks written (the 10 minutes from ${closedTen} among them)`)
  await same(t, stores[1]!, mem, readsOf(groups), 'reads answer as before')
})

t.test('the app runs the sealer on Redis only, and each pass refreshes the schema key', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const started: Array<Promise<SealResult>> = []
  const start = Sealer.prototype.start
  // The timer's first pass comes up to a minute later: here the pass runs as the sealer starts.
  Sealer.prototype.start = function (this: Sealer) {
    started.push(this.pass(Date.now()))
    start.call(this)
  }
  t.teardown(() => { Sealer.prototype.start = start })

  await build(t)
  t.equal(started.length, 0, 'the embedded store: no sealer')

  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  await build(t, { store })
  t.equal(started.length, 1, 'Redis: the sealer starts with the app')
  await started[0]
  t.equal(await redis.client.get('metrics:schema'), '2', 'the pass wrote the schema key')
  await redis.client.pexpire('metrics:schema', 1000)
  const { app } = await build(t, { store })
  await started[1]
  t.ok(await redis.client.pttl('metrics:schema') > 29 * 24 * HOUR_MS, 'and each pass refreshes its TTL')
  t.equal(app.metricsStore, store)
})
