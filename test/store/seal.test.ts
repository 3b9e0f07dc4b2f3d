/**
 * Sealing on a real Redis and on a 3-master cluster (docs/design.md, "Sealed blocks"): reads answer
 * the same before and after a seal, with late writes beside the block and after a second seal; and
 * what a block holds (pairs as 1, coded stats names, delta-coded bins, ids and latest values as they
 * were), TTLs, the seal index, and sums past 2^53.
 *
 * The reference for every read is the embedded store given the same writes: it never seals, and the
 * store contract says both stores answer alike.
 */
import type { Test } from 'tap'
import t from 'tap'
import { Aggregator } from '../../src/ingest/aggregator.js'
import { bucketName, HOUR_MS, MINUTE_MS } from '../../src/metrics/buckets.js'
import type { ChatErrorType, ChatEvent, EntityType, FetchEvent, IndexedType } from '../../src/metrics/events.js'
import { BlockCache, fetchArgs, planFetch, unpack } from '../../src/store/fetch.js'
import { decodeBlock, entitySealUnits, indexSealUnit, partOf, type Period, type SealUnit, type Snapshot } from '../../src/store/layout.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { RedisStore } from '../../src/store/redis-store.js'
import type { Fields, GroupWrite, MergeRead } from '../../src/store/types.js'
import { mulberry32 } from '../helpers/random.js'
import { startCluster, startRedis } from '../helpers/redis.js'

// ---------------------------------------------------------------------------------------------
// Data: bucket names at a fixed clock; expiries moved into real time, so that Redis keeps the keys.

const NOW = Date.UTC(2024, 4, 15, 12, 30, 15)
const at = (h: number, m: number, s = 0): number => Date.UTC(2024, 4, 15, h, m, s)
const SHIFT = Math.ceil((Date.now() - NOW) / HOUR_MS) * HOUR_MS
const HOURS = ['2024-05-15-07', '2024-05-15-08', '2024-05-15-09', '2024-05-15-10', '2024-05-15-11', '2024-05-15-12']
const MINUTES = Array.from({ length: 46 }, (_, i) => bucketName('minute', at(11, 50) + i * MINUTE_MS)) // 11:50 … 12:35
const TENS = ['2024-05-15-11-50+10m', '2024-05-15-12-00+10m', '2024-05-15-12-10+10m', '2024-05-15-12-20+10m', '2024-05-15-12-30+10m']
/** Every period holding the data's buckets, the open ones (12:30, hour 12) included: a store seals what it is given. */
const PERIODS: Period[] = [
  ...[7, 8, 9, 10, 11, 12].map((h): Period => ({ kind: 'hour', start: at(h, 0) })),
  ...[at(11, 50), at(12, 0), at(12, 10), at(12, 20), at(12, 30)].map((start): Period => ({ kind: 'tenmin', start }))
]

const ERRORS: ChatErrorType[] = ['timeout', 'rate_limit', 'network', 'other']

interface Data { chats: ChatEvent[], fetches: FetchEvent[] }

/** Seeded traffic: chats over the last 40 minutes and 3–5 hours ago, fetches, a fetch-only gateway. */
function traffic (seed: number, n: number, models: string[], gateways: string[]): Data {
  const rnd = mulberry32(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const chats: ChatEvent[] = []
  for (let i = 0; i < n; i++) {
    const model = pick(models)
    const success = rnd() < 0.8
    const ttftMs = rnd() < 0.9 ? (rnd() < 0.05 ? 0 : Math.round(rnd() * 3_000_000) / 1000) : undefined
    const recent = rnd() < 0.7
    chats.push({
      model,
      provider: rnd() < 0.8 ? model.split('/')[0]! : 'other',
      gateway: pick(gateways),
      success,
      errorType: success ? null : pick(ERRORS),
      ttftMs,
      totalMs: ttftMs === undefined ? undefined : ttftMs + Math.round(rnd() * 9_000_000) / 1000,
      inputTokens: rnd() < 0.9 ? Math.floor(rnd() * 4000) : undefined,
      outputTokens: rnd() < 0.9 ? Math.floor(rnd() * 2000) : undefined,
      ts: recent ? NOW - Math.floor(rnd() * 40 * MINUTE_MS) : NOW - 3 * HOUR_MS - Math.floor(rnd() * 2 * HOUR_MS)
    })
  }
  const fetches: FetchEvent[] = []
  for (let i = 0; i < n / 10; i++) {
    const success = rnd() < 0.9
    fetches.push({
      gateway: i % 3 === 0 ? 'fetch-only' : pick(gateways),
      success,
      errorType: success ? null : (rnd() < 0.5 ? 'timeout' : 'error'),
      modelCount: success ? Math.floor(rnd() * 300) : undefined,
      responseTimeMs: Math.round(rnd() * 5_000_000) / 1000,
      ts: NOW - Math.floor(rnd() * 40 * MINUTE_MS),
      ...(i % 7 === 0 ? { models: models.slice(0, 1 + (i % models.length)) } : {})
    })
  }
  return { chats, fetches }
}

/** The groups a flush of `data` writes, with their expiries in real time. */
function groupsOf (data: Data, instanceId = 'inst-1'): GroupWrite[] {
  const a = new Aggregator()
  for (const e of data.chats) a.addChat(e)
  for (const e of data.fetches) a.addFetch(e)
  return shift(a.seal({ now: NOW, retentionHours: 168, instanceId }))
}

function shift (groups: GroupWrite[]): GroupWrite[] {
  return groups.map((g) => ({ marker: g.marker, keys: g.keys.map((kw) => ({ ...kw, expireAt: kw.expireAt + SHIFT })) }))
}

/** One hand-made group of `tag`, every key expiring an hour from now. */
function group (tag: string, keys: Array<[string, Array<['i' | 's' | 'm' | 'M' | 'l', string, string]>]>, expireAt = Date.now() + HOUR_MS): GroupWrite {
  return { marker: `${tag}:flushed:hand`, keys: keys.map(([key, ops]) => ({ key, expireAt, ops })) }
}

interface Ids { model: Set<string>, provider: Set<string>, gateway: Set<string>, pairs: Map<string, { gateway: Set<string>, provider: Set<string> }> }

function idsOf (...datas: Data[]): Ids {
  const ids: Ids = { model: new Set(), provider: new Set(), gateway: new Set(), pairs: new Map() }
  for (const d of datas) {
    for (const e of d.chats) {
      ids.model.add(e.model)
      ids.provider.add(e.provider)
      ids.gateway.add(e.gateway)
      let p = ids.pairs.get(e.model)
      if (p === undefined) ids.pairs.set(e.model, p = { gateway: new Set(), provider: new Set() })
      p.gateway.add(e.gateway)
      p.provider.add(e.provider)
    }
    for (const e of d.fetches) ids.gateway.add(e.gateway)
  }
  return ids
}

const enc = (id: string): string => id.replace(/[%{}]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
const ek = (type: EntityType, id: string, family: string, bucket: string): string => `metrics:${type}:{${enc(id)}}:${family}:${bucket}`
const pk = (model: string, kind: 'gateway' | 'provider', other: string, family: string, bucket: string): string => `metrics:model:{${enc(model)}}:${kind}:${enc(other)}:${family}:${bucket}`
const ik = (type: IndexedType, field: string, bucket: string): string => `metrics:index:{${type}}:${field}:${bucket}`
const FAMILIES: Record<EntityType, string[]> = {
  model: ['stats', 'ttft', 'total', 'tps', 'gateways', 'providers', 'status'],
  provider: ['stats', 'ttft', 'total', 'tps', 'models', 'status'],
  gateway: ['stats', 'ttft', 'total', 'tps', 'fetch_rt', 'catalog_fetches', 'status']
}
/** Hashes of counters only (ids, bins): read with the `counters` hint, as the read side does. */
const COUNTERS = /:(ttft|total|tps|fetch_rt|models|gateways|providers|dists|requests|successes|fetches):[^:]+$/
const BUCKETS = [...HOURS, ...MINUTES, ...TENS]

/**
 * Every key the data may have written, each in a slot of its own (one read per entity), and the
 * same keys merged: an entity's hours in one slot, its minutes in another (blocks and live hashes
 * merged together).
 */
function readsOf (ids: Ids, extra: string[] = []): MergeRead[] {
  const reads: MergeRead[] = []
  const add = (keys: string[]): void => {
    const counters = keys.map((k) => COUNTERS.test(k))
    reads.push({ keys, slots: keys.map((_, i) => i), nSlots: keys.length, counters })
    for (const res of [HOURS, MINUTES]) {
      for (const family of ['stats', 'ttft', 'dists', 'requests']) {
        const merged = keys.filter((k) => k.includes(`:${family}:`) && res.some((b) => k.endsWith(`:${b}`)))
        if (merged.length > 0) reads.push({ keys: merged, slots: merged.map(() => 0), nSlots: 1, counters: merged.map((k) => COUNTERS.test(k)) })
      }
    }
  }
  for (const type of ['model', 'provider', 'gateway'] as const) {
    for (const id of ids[type]) {
      const keys = FAMILIES[type].flatMap((f) => BUCKETS.map((b) => ek(type, id, f, b)))
      for (const [kind, others] of Object.entries(type === 'model' ? ids.pairs.get(id) ?? {} : {})) {
        for (const other of others as Set<string>) for (const f of ['stats', 'dists']) for (const b of BUCKETS) keys.push(pk(id, kind as 'gateway', other, f, b))
      }
      add(keys)
    }
  }
  for (const type of ['model', 'provider', 'gateway', 'model_gateway', 'model_provider'] as const) {
    add(['requests', 'successes', 'fetches'].flatMap((f) => BUCKETS.map((b) => ik(type, f, b))))
  }
  if (extra.length > 0) add(extra)
  return reads
}

/** Units sealing every bucket of the data's entities and indexes, in `periods`. */
function unitsOf (ids: Ids, periods = PERIODS): SealUnit[] {
  const units: SealUnit[] = []
  const none = { gateway: new Set<string>(), provider: new Set<string>() }
  for (const p of periods) {
    for (const type of ['model', 'provider', 'gateway'] as const) {
      for (const id of ids[type]) units.push(...entitySealUnits(type, id, p, type === 'model' ? ids.pairs.get(id) ?? none : none))
    }
    for (const type of ['model', 'provider', 'gateway', 'model_gateway', 'model_provider'] as const) units.push(indexSealUnit(type, p))
  }
  return units
}

// ---------------------------------------------------------------------------------------------
// The stores under test

interface Raw {
  getBuffer: (key: string) => Promise<Buffer | null>
  exists: (key: string) => Promise<number>
  pexpiretime: (key: string) => Promise<number>
  hget: (key: string, field: string) => Promise<string | null>
  hset: (key: string, field: string, value: string) => Promise<number>
  set: (key: string, value: string) => Promise<unknown>
}

interface Ctx {
  store: RedisStore
  raw: Raw
  /** On the cluster: checks the blocks are spread over the masters. */
  spread?: (t: Test) => Promise<void>
  /** Every key under `metrics:`. */
  keys: () => Promise<string[]>
  /** Script calls (EVALSHA) Redis has run, on every node. */
  evalCalls: () => Promise<number>
  flush: () => Promise<void>
}

async function evalCalls (node: { info: (section: string) => Promise<string> }): Promise<number> {
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(await node.info('commandstats'))?.[1] ?? 0)
}

async function pexpiretime (raw: { call: (...args: string[]) => Promise<unknown> }, key: string): Promise<number> {
  return Number(await raw.call('PEXPIRETIME', key))
}

async function snapshots (ctx: Ctx, block: string): Promise<Snapshot[]> {
  const raw = await ctx.raw.getBuffer(block)
  return raw === null ? [] : decodeBlock(raw)
}

/** Redis's answer to `reads`, and the embedded store's given the same writes: equal. */
async function same (t: Test, ctx: Ctx, mem: MemoryStore, reads: MergeRead[], label: string): Promise<void> {
  const got = await ctx.store.read(reads)
  const want = await mem.read(reads)
  let differ = 0
  reads.forEach((r, i) => {
    r.keys.forEach((key, j) => {
      const slot = r.slots[j]!
      if (JSON.stringify(sorted(got[i]![slot]!)) !== JSON.stringify(sorted(want[i]![slot]!)) && differ++ < 5) {
        t.strictSame(sorted(got[i]![slot]!), sorted(want[i]![slot]!), `${label}: ${key} (slot ${slot})`)
      }
    })
  })
  t.equal(differ, 0, `${label}: ${reads.length} reads of ${reads.reduce((n, r) => n + r.keys.length, 0)} keys answer as the embedded store does`)
  t.ok(want.flat().filter((f) => Object.keys(f).length > 0).length > reads.length / 2, `${label}: most slots hold figures`)
}

/** One read per hash tag (a read never spans slots), each key in a slot of its own. */
function bySlot (keys: string[]): MergeRead[] {
  const byTag = new Map<string, string[]>()
  for (const k of keys) {
    const tag = k.slice(0, k.indexOf('}') + 1)
    byTag.set(tag, [...(byTag.get(tag) ?? []), k])
  }
  return [...byTag.values()].map((ks) => ({ keys: ks, slots: ks.map((_, i) => i), nSlots: ks.length, counters: ks.map((k) => COUNTERS.test(k)) }))
}

function sorted (f: Fields): Array<[string, string]> {
  return Object.entries(f).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * Applies a flush as the flusher does: a group that reports an error is sent again with the same
 * sequence (on a cluster, the parts of a large group may have to wait for one another).
 */
async function apply (t: Test, ctx: Ctx, mem: MemoryStore, seq: number, groups: GroupWrite[]): Promise<void> {
  let pending = groups
  for (let attempt = 0; attempt < 5 && pending.length > 0; attempt++) {
    const errors = await ctx.store.applyGroups(seq, pending)
    if (attempt > 0) t.comment(`flush ${seq}: ${pending.length} groups sent again`)
    pending = pending.filter((_, i) => errors[i] !== null)
  }
  t.equal(pending.length, 0, `flush ${seq}: every group applied`)
  await mem.applyGroups(seq, groups)
}

// ---------------------------------------------------------------------------------------------
// Scenarios, run on one Redis and on the cluster

async function sealAndRead (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  const first = traffic(1, 1500, ['acme/a', 'acme/b', 'beta/c', 'solo/d', 'x/{br}%'], ['gw1', 'gw2', 'gw:3'])
  const ids = idsOf(first)
  const catalogs = groupsOf(first).flatMap((g) => g.keys.map((kw) => kw.key)).filter((k) => k.includes(':catalog:') && k.startsWith('metrics:gateway:{gw1}:'))
  t.ok(catalogs.length > 0, 'model lists written (never sealed: read live)')
  const reads = readsOf(ids, catalogs)
  await apply(t, ctx, mem, 1, groupsOf(first))
  await same(t, ctx, mem, reads, 'live')

  const units = unitsOf(ids)
  const bytes = await ctx.store.seal(units)
  t.ok(bytes > 0, `sealed: ${bytes} bytes`)
  const left = (await ctx.keys()).filter((k) => !k.includes(':sealed:') && /:\d{4}-\d{2}-\d{2}-\d{2}(-\d{2})?$/.test(k))
  t.strictSame(left, [], 'no live hash of a sealed bucket is left')
  const blocks = (await ctx.keys()).filter((k) => k.includes(':sealed:'))
  t.ok(blocks.length >= ids.model.size + ids.provider.size + ids.gateway.size, `${blocks.length} blocks`)
  await same(t, ctx, mem, reads, 'sealed')
  t.equal(await ctx.raw.hget('metrics:model:{acme/a}:seals', '2024-05-15-12-10+10m'), '0123456789', 'the seal index lists the 10 minutes sealed')
  t.equal(await ctx.raw.hget('metrics:model:{acme/a}:seals', '2024-05-15-11'), 'h', 'and the hour')
  t.equal(await ctx.raw.hget('metrics:model:{acme/a}:seals', '2024-05-15-11:late'), null, 'no late write yet')
  t.equal(await ctx.store.seal(units), 0, 'sealing again what is sealed moves nothing')
  const shapes = await Promise.all(blocks.map(async (b) => (await snapshots(ctx, b)).map((s) => Object.keys(s))))
  t.ok(shapes.every((snaps) => new Set(snaps.flat()).size === snaps.flat().length), 'each bucket in one snapshot (an entity\'s minutes in one each, an index\'s 10 minutes in one)')
  t.ok(blocks.every((b, i) => b.endsWith('+10m') || shapes[i]!.flat().join() === 'h'), 'an hour block: one snapshot')
  await ctx.spread?.(t)

  // Late events: new ids, pairs and buckets, and more of the same, after the seal.
  const late = traffic(2, 600, ['acme/a', 'beta/c', 'late/e', '123'], ['gw2', 'gw:3', 'gw4'])
  const both = idsOf(first, late)
  const reads2 = readsOf(both, catalogs)
  await apply(t, ctx, mem, 2, groupsOf(late))
  t.equal(await ctx.raw.hget('metrics:model:{acme/a}:seals', '2024-05-15-12:late'), '1', 'a flush into a sealed bucket marks its period late')
  t.equal(await ctx.raw.hget('metrics:model:{late/e}:seals', '2024-05-15-12'), null, 'an entity never sealed has no seal index')
  await same(t, ctx, mem, reads2, 'late writes beside the blocks')

  t.ok(await ctx.store.seal(unitsOf(both)) > 0, 'the second seal moves the late writes')
  const counts = await Promise.all(blocks.map(async (b) => (await snapshots(ctx, b)).length))
  t.ok(blocks.some((b, i) => !b.endsWith('+10m') && counts[i] === 2), 'hour blocks that took late writes hold a second snapshot')
  await same(t, ctx, mem, reads2, 'after a second seal')

  // A third flush and a read through the cached blocks: the cache never hides a new snapshot.
  const third = traffic(3, 200, ['acme/a', 'late/e'], ['gw1'])
  await apply(t, ctx, mem, 3, groupsOf(third))
  await ctx.store.seal(unitsOf(idsOf(third)))
  await same(t, ctx, mem, readsOf(idsOf(first, late, third), catalogs), 'after a third flush and seal')
}

async function pairs (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  const chat = (model: string, gateway: string, ts: number, ttftMs: number | undefined, over: Partial<ChatEvent> = {}): ChatEvent => ({
    model, provider: model.split('/')[0]!, gateway, success: true, errorType: null, ttftMs, totalMs: ttftMs === undefined ? undefined : ttftMs + 900, inputTokens: 10, outputTokens: 90, ts, ...over
  })
  const data: Data = {
    chats: [
      chat('solo/m', 'gw', at(11, 10), 0), // the zero bin
      chat('solo/m', 'gw', at(11, 20), 250.5),
      chat('solo/m', 'gw', at(11, 30), undefined, { success: false, errorType: 'timeout' }),
      chat('solo/m', 'gw', at(12, 21, 5), 40),
      chat('duo/m', 'g1', at(11, 10), 100),
      chat('duo/m', 'g2', at(11, 12), 300, { provider: 'elsewhere' }),
      chat('duo/m', 'g1', at(12, 21), 100)
    ],
    fetches: []
  }
  const ids = idsOf(data)
  await apply(t, ctx, mem, 1, groupsOf(data))
  t.ok(await ctx.store.seal(unitsOf(ids)) > 0)
  const [solo] = await snapshots(ctx, 'metrics:model:{solo/m}:sealed:2024-05-15-11') as [Snapshot]
  t.strictSame([solo.h!['g:gw:s'], solo.h!['g:gw:d'], solo.h!['p:solo:s'], solo.h!['p:solo:d']], [1, 1, 1, 1], 'a model served by one gateway and one provider: its pairs are stored as 1')
  const [soloMin] = await snapshots(ctx, 'metrics:model:{solo/m}:sealed:2024-05-15-12-20+10m') as [Snapshot]
  t.strictSame(Object.keys(soloMin), ['1'], 'the 10-minute block holds the minute with events')
  t.equal(soloMin['1']!['g:gw:s'], 1, 'and its pairs as 1 too')
  const [duo] = await snapshots(ctx, 'metrics:model:{duo/m}:sealed:2024-05-15-11') as [Snapshot]
  t.ok(Array.isArray(duo.h!['g:g1:s']) && Array.isArray(duo.h!['g:g1:d']), 'a pair holding part of its model\'s requests stays whole')
  t.ok(Array.isArray(duo.h!['p:duo:s']) && Array.isArray(duo.h!['p:elsewhere:s']), 'so do its providers')
  const [duoMin] = await snapshots(ctx, 'metrics:model:{duo/m}:sealed:2024-05-15-12-20+10m') as [Snapshot]
  t.equal(duoMin['1']!['g:g1:s'], 1, 'in a minute where one gateway served all of it, the pair is 1')

  const keys = ['2024-05-15-11', '2024-05-15-12-21', '2024-05-15-12-20+10m'].flatMap((b) => [
    pk('solo/m', 'gateway', 'gw', 'stats', b), pk('solo/m', 'gateway', 'gw', 'dists', b), pk('solo/m', 'provider', 'solo', 'stats', b), pk('solo/m', 'provider', 'solo', 'dists', b),
    pk('duo/m', 'gateway', 'g1', 'stats', b), pk('duo/m', 'gateway', 'g1', 'dists', b), pk('duo/m', 'gateway', 'g2', 'dists', b), pk('duo/m', 'provider', 'elsewhere', 'stats', b),
    ek('model', 'solo/m', 'stats', b), ek('model', 'solo/m', 'ttft', b)
  ])
  await same(t, ctx, mem, bySlot(keys), 'pairs rebuilt from their model: stats without the latest provider, bins with their offsets')
  const [[pairStats, pairDists]] = await ctx.store.read([{ keys: keys.slice(0, 2), slots: [0, 1], nSlots: 2, counters: [false, true] }]) as [[Fields, Fields]]
  t.notOk('last:provider' in pairStats, 'a pair has no latest provider')
  t.equal(pairStats.n, '3')
  t.ok('9999' in pairDists && Object.keys(pairDists).some((k) => Number(k) >= 10_000 && Number(k) < 20_000) && Object.keys(pairDists).some((k) => Number(k) >= 20_000), 'the zero bin as 9999; total time + 10 000; tokens/s + 20 000')

  // A late event through another gateway: the live model hash and a new pair are sealed together.
  const late: Data = { chats: [chat('solo/m', 'gw-late', at(11, 40), 70)], fetches: [] }
  await apply(t, ctx, mem, 2, groupsOf(late))
  await ctx.store.seal(unitsOf(idsOf(data, late)))
  const [, second] = await snapshots(ctx, 'metrics:model:{solo/m}:sealed:2024-05-15-11') as [Snapshot, Snapshot]
  t.equal(second.h!['g:gw-late:s'], 1, 'the late snapshot: the new pair holds all of the model\'s late requests')
  t.equal(second.h!['g:gw:s'], undefined, 'the first pair took no late write')
  keys.push(pk('solo/m', 'gateway', 'gw-late', 'stats', '2024-05-15-11'), pk('solo/m', 'gateway', 'gw-late', 'dists', '2024-05-15-11'))
  await same(t, ctx, mem, bySlot(keys), 'after the late pair is sealed')
}

async function samePairCount (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  // As many requests as its model, other figures: a pair whose events are not its model's live ones
  // (its model's were sealed before the pair's were written, e.g. a large flush group applied in
  // parts with a seal between them). Stored as it is, it reads back as it was.
  const tag = 'metrics:model:{same-n/m}'
  const H = '2024-05-15-11'
  await apply(t, ctx, mem, 1, [group(tag, [
    [`${tag}:stats:${H}`, [['i', 'n', '2'], ['i', 'ok', '2'], ['i', 'ttft:n', '2'], ['s', 'ttft:sum', '300000'], ['m', 'ttft:min', '100000'], ['M', 'ttft:max', '200000'], ['l', 'last:provider', '001715770000000p']]],
    [`${tag}:ttft:${H}`, [['i', '250', '1'], ['i', '265', '1']]],
    [`${tag}:gateway:g:stats:${H}`, [['i', 'n', '2'], ['i', 'err:timeout', '2'], ['i', 'ttft:n', '1'], ['s', 'ttft:sum', '5000000'], ['m', 'ttft:min', '5000000'], ['M', 'ttft:max', '5000000']]],
    [`${tag}:gateway:g:dists:${H}`, [['i', '335', '1']]]
  ])])
  await ctx.store.seal(entitySealUnits('model', 'same-n/m', { kind: 'hour', start: at(11, 0) }, { gateway: new Set(['g']), provider: new Set() }))
  const [snap] = await snapshots(ctx, `${tag}:sealed:${H}`) as [Snapshot]
  t.not(snap.h!['g:g:s'], 1, 'not stored as its model\'s')
  await same(t, ctx, mem, bySlot([`${tag}:gateway:g:stats:${H}`, `${tag}:gateway:g:dists:${H}`, `${tag}:stats:${H}`]), 'the pair reads back as it was written')
}

async function encodings (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  const H = '2024-05-15-11'
  const tag = 'metrics:model:{enc/m}'
  const looksLikeInts = ['123', '007', '-0', '-5', '0', '00', '-01', '1e3', '+7', '999999999999999', '9999999999999999', '12345678901234567890', '1.5', ' 8']
  const groups = [
    group(tag, [
      [`${tag}:stats:${H}`, [['i', 'n', '3'], ['i', 'ok', '2'], ['s', 'tokens:in', '12'], ['m', 'ttft:min', '500'], ['M', 'ttft:max', '9000'], ['l', 'last:provider', '123456789012345'], ['i', 'unnamed', '4']]],
      [`${tag}:ttft:${H}`, [['i', '40', '1'], ['i', '3', '5'], ['i', '300', '2'], ['i', '41', '1']]],
      [`${tag}:total:${H}`, [['i', 'z', '1'], ['i', '7', '2']]],
      [`${tag}:tps:${H}`, [['i', '12', '1']]],
      [`${tag}:gateways:${H}`, looksLikeInts.map((id): ['i', string, string] => ['i', id, '1'])],
      [`${tag}:status:${H}`, [['l', 'last:000001715770000000', '000001715770000000100'], ['l', 'last:2', '007']]]
    ]),
    group('metrics:index:{model}', [[ik('model', 'requests', H), looksLikeInts.map((id, i): ['i', string, string] => ['i', id, String(i + 1)])]])
  ]
  await apply(t, ctx, mem, 1, groups)
  await ctx.store.seal([...entitySealUnits('model', 'enc/m', { kind: 'hour', start: at(11, 0) }, { gateway: new Set(), provider: new Set() }), indexSealUnit('model', { kind: 'hour', start: at(11, 0) })])

  const [snap] = await snapshots(ctx, `${tag}:sealed:${H}`) as [Snapshot]
  const raw = snap.h!
  t.strictSame(raw.t, [true, 3, 5, 37, 1, 1, 1, 259, 2], 'bins sorted by field, each field as its difference from the one before')
  t.strictSame(raw.T, ['z', 1, 7, 2], 'a histogram with the zero bin is kept as fields and values')
  t.strictSame(raw.p, [12, 1], 'a one-field hash as it is')
  const stats = raw.s as Array<string | number>
  const pairsOf = new Map<string | number, string | number>()
  for (let i = 0; i < stats.length; i += 2) pairsOf.set(stats[i]!, stats[i + 1]!)
  t.strictSame([pairsOf.get(1), pairsOf.get(2), pairsOf.get(7), pairsOf.get(11), pairsOf.get(12)], [3, 2, 12, 500, 9000], 'stats names as their codes (n 1, ok 2, tokens:in 7, ttft:min 11, ttft:max 12), values as integers')
  t.equal(pairsOf.get(28), '123456789012345', 'last:provider (code 28): a latest value stays a string, even one that reads as an integer')
  t.equal(pairsOf.get('unnamed'), 4, 'a name with no code stays a name')
  const status = raw.S as string[]
  t.ok(status.every((x) => typeof x === 'string'), '`last:` fields and their values are never turned into numbers')

  const reads = bySlot([`${tag}:stats:${H}`, `${tag}:ttft:${H}`, `${tag}:total:${H}`, `${tag}:gateways:${H}`, `${tag}:status:${H}`, ik('model', 'requests', H)])
  await same(t, ctx, mem, reads, 'integers, ids and latest values read back as they were written')
  const [[, , , gateways], [requests]] = await ctx.store.read(reads) as [Fields[], Fields[]]
  t.strictSame(Object.keys(gateways!).sort(), [...looksLikeInts].sort(), 'ids that look like integers come back as written')
  t.strictSame(requests, Object.fromEntries(looksLikeInts.map((id, i) => [id, String(i + 1)])))
  const [names] = await ctx.store.fieldNames([ik('model', 'requests', H)])
  t.strictSame(names!.sort(), [...looksLikeInts].sort(), 'fieldNames too')
}

async function names (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  const key = ik('gateway', 'requests', '2024-05-15-10-07')
  const put = async (seq: number, ids: string[]): Promise<void> => {
    t.strictSame(await ctx.store.applyGroups(seq, [group('metrics:index:{gateway}', [[key, ids.map((id): ['i', string, string] => ['i', id, '1'])]])]), [null])
  }
  await put(1, ['a', 'b', '7'])
  t.strictSame((await ctx.store.liveFieldNames([key]))[0]!.sort(), ['7', 'a', 'b'], 'live: what the hash holds')
  t.strictSame((await ctx.store.fieldNames([key]))[0]!.sort(), ['7', 'a', 'b'])
  await ctx.store.seal([indexSealUnit('gateway', { kind: 'tenmin', start: at(10, 0) })])
  t.strictSame(await ctx.store.liveFieldNames([key]), [[]], 'sealed: nothing live')
  t.strictSame((await ctx.store.fieldNames([key]))[0]!.sort(), ['7', 'a', 'b'], 'fieldNames reads the block')
  await put(2, ['b', 'c'])
  t.strictSame((await ctx.store.liveFieldNames([key]))[0]!.sort(), ['b', 'c'], 'a late write: live holds only it')
  t.strictSame((await ctx.store.fieldNames([key]))[0]!.sort(), ['7', 'a', 'b', 'c'], 'fieldNames: both, each name once')
  t.strictSame(await ctx.store.fieldNames([]), [], 'no keys, no names')
  t.strictSame(await ctx.store.read([]), [], 'no reads, no answers')
  const several = await ctx.store.fieldNames([key, ik('gateway', 'requests', '2024-05-15-10-08'), 'metrics:gateway:{g}:catalog:0123456789abcdef'])
  t.strictSame(several.map((n) => n.sort()), [['7', 'a', 'b', 'c'], [], []], 'keys of several slots: sealed, absent, never sealed')
}

async function ttls (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  const tag = 'metrics:provider:{ttl}'
  const H = '2024-05-15-09'
  const soon = Date.now() + HOUR_MS
  const later = soon + 5 * HOUR_MS
  const hour = { kind: 'hour', start: at(9, 0) } as const
  const units = entitySealUnits('provider', 'ttl', hour, { gateway: new Set(), provider: new Set() })
  const block = `${tag}:sealed:${H}`
  const seals = `${tag}:seals`

  t.equal(await ctx.store.seal([]), 0, 'no unit: nothing')
  t.equal(await ctx.store.seal(units), 0, 'nothing live: nothing sealed')
  t.equal(await ctx.raw.exists(block), 0, 'no block')
  t.equal(await ctx.raw.exists(seals), 0, 'and no seal index')

  const two = group(tag, [[`${tag}:stats:${H}`, [['i', 'n', '1']]], [`${tag}:ttft:${H}`, [['i', '4', '1']]]], soon)
  two.keys[1]!.expireAt = later
  t.strictSame(await ctx.store.applyGroups(1, [two]), [null])
  t.ok(await ctx.store.seal(units) > 0)
  t.equal(await ctx.raw.pexpiretime(block), later, 'the block expires with the latest hash it took')
  t.ok(await ctx.raw.pexpiretime(seals) >= later, 'the seal index outlives every block it describes')

  await ctx.store.applyGroups(2, [group(tag, [[`${tag}:stats:${H}`, [['i', 'n', '1']]]], soon)])
  await ctx.store.seal(units)
  t.equal(await ctx.raw.pexpiretime(block), later, 'a second seal of an earlier-expiring hash keeps the block\'s expiry')
  await ctx.store.applyGroups(3, [group(tag, [[`${tag}:models:${H}`, [['i', 'x/y', '1']]]], later + HOUR_MS)])
  await ctx.store.seal(units)
  t.equal(await ctx.raw.pexpiretime(block), later + HOUR_MS, 'a later one extends it')
  t.ok(await ctx.raw.pexpiretime(seals) >= later + HOUR_MS)
  t.equal((await snapshots(ctx, block)).length, 3)

  // Nothing live, but the block exists: the unit's sub-buckets are recorded, nothing is written.
  const ten = entitySealUnits('provider', 'ttl', { kind: 'tenmin', start: at(9, 10) }, { gateway: new Set(), provider: new Set() })
  await ctx.store.applyGroups(4, [group(tag, [[`${tag}:stats:2024-05-15-09-13`, [['i', 'n', '1']]]])])
  await ctx.store.seal(ten.slice(3, 4))
  t.equal(await ctx.raw.hget(seals, '2024-05-15-09-10+10m'), '3')
  t.equal(await ctx.store.seal(ten.slice(0, 3)), 0, 'minutes 0–2 held nothing')
  t.equal(await ctx.raw.hget(seals, '2024-05-15-09-10+10m'), '3012', 'but are sealed from now on')

  // Periods past the retention leave the seal index with the next hour sealed.
  await ctx.raw.hset(seals, '2024-05-15-01', 'h')
  await ctx.raw.hset(seals, '2024-05-15-01:late', '1')
  await ctx.raw.hset(seals, '2024-05-15-06-50+10m', '0')
  await ctx.store.applyGroups(5, [group(tag, [[`${tag}:stats:2024-05-15-10`, [['i', 'n', '1']]]])])
  const pruned = entitySealUnits('provider', 'ttl', { kind: 'hour', start: at(10, 0) }, { gateway: new Set(), provider: new Set() }).map((u) => ({ ...u, prune: { hours: '2024-05-15-02', spans: '2024-05-15-07-00+10m' } }))
  await ctx.store.seal(pruned)
  t.strictSame([await ctx.raw.hget(seals, '2024-05-15-01'), await ctx.raw.hget(seals, '2024-05-15-01:late'), await ctx.raw.hget(seals, '2024-05-15-06-50+10m')], [null, null, null], 'older hours, their late marks and older 10 minutes leave')
  t.strictSame([await ctx.raw.hget(seals, H), await ctx.raw.hget(seals, '2024-05-15-10'), await ctx.raw.hget(seals, '2024-05-15-09-10+10m')], ['h', 'h', '3012'], 'the rest stays')

  for (const key of await ctx.keys()) t.ok(await ctx.raw.pexpiretime(key) > Date.now(), `${key} expires`)
}

async function trust (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  // A read of a sealed sub-bucket costs one GET: its live hash is fetched only when a flush marked
  // its period late (every seal unit takes all of its bucket's live hashes, so nothing else can be
  // live there). A hash written behind the flush script's back is therefore not read.
  const tag = 'metrics:gateway:{trust}'
  const key = `${tag}:stats:2024-05-15-11`
  await ctx.store.applyGroups(1, [group(tag, [[key, [['i', 'n', '2']]]])])
  await ctx.store.seal(entitySealUnits('gateway', 'trust', { kind: 'hour', start: at(11, 0) }, { gateway: new Set(), provider: new Set() }))
  await ctx.raw.hset(key, 'n', '100')
  const read = async (): Promise<string | undefined> => (await ctx.store.read([{ keys: [key], slots: [0], nSlots: 1 }]))[0]![0]!.n
  t.equal(await read(), '2', 'not written by a flush: not read')
  // The store now holds the tag's seal index: the next read leaves the sealed hour's live hash out
  // and claims it sealed, in one call; a late write since makes the claim fail, and the read asks again.
  let calls = await ctx.evalCalls()
  t.equal(await read(), '2')
  t.equal(await ctx.evalCalls() - calls, 1, 'the seal index held: one call')
  await ctx.store.applyGroups(2, [group(tag, [[key, [['i', 'n', '1']]]])])
  calls = await ctx.evalCalls()
  t.equal(await read(), '103', 'a flush marks the period late: the live hash is read again')
  t.equal(await ctx.evalCalls() - calls, 2, 'the claim no longer held: asked again with the index as it is')
  calls = await ctx.evalCalls()
  t.equal(await read(), '103')
  t.equal(await ctx.evalCalls() - calls, 1, 'the late period known: no claim, one call')
}

async function bigSums (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  const tag = 'metrics:model:{big}'
  const hours = ['2024-05-15-07', '2024-05-15-08', '2024-05-15-09', '2024-05-15-10', '2024-05-15-11']
  const beyond = '9007199254740993' // 2^53 + 1: not a double
  const groups = hours.map((h, i) => group(tag, [
    [`${tag}:stats:${h}`, [['s', 'tokens:in', i === 0 ? beyond : '999999999999999'], ['s', 'tokens:out', '999999999999999'], ['i', 'n', '1']]],
    [`${tag}:ttft:${h}`, [['i', '5', '999999999999999']]]
  ]))
  for (const [i, g] of groups.entries()) await apply(t, ctx, mem, i + 1, [g])
  await ctx.store.seal(hours.flatMap((h, i) => entitySealUnits('model', 'big', { kind: 'hour', start: at(7 + i, 0) }, { gateway: new Set(), provider: new Set() })))
  await apply(t, ctx, mem, 10, [group(tag, [[`${tag}:stats:2024-05-15-11`, [['s', 'tokens:in', '999999999999999']]]])])
  const reads: MergeRead[] = [{
    keys: [...hours.map((h) => `${tag}:stats:${h}`), ...hours.map((h) => `${tag}:ttft:${h}`)],
    slots: [...hours.map(() => 0), ...hours.map(() => 1)],
    nSlots: 2,
    counters: [...hours.map(() => false), ...hours.map(() => true)]
  }]
  const [[stats, ttft]] = await ctx.store.read(reads) as [[Fields, Fields]]
  t.equal(stats['tokens:in'], String(BigInt(beyond) + 5n * 999999999999999n), 'a sum past 2^53, merged from a block and a live hash: exact')
  t.equal(stats['tokens:out'], String(5n * 999999999999999n))
  t.equal(ttft['5'], String(5n * 999999999999999n), 'counters too')
  await same(t, ctx, mem, reads, 'big sums')

  // A field that is no counter, summed past 2^53 with values that are no integers: a double, as
  // exact as it can be (the embedded store refuses it: see the report).
  await ctx.store.applyGroups(20, [group(tag, [[`${tag}:stats:2024-05-15-06`, [['m', 'odd', '1e300']]], [`${tag}:stats:2024-05-15-05`, [['m', 'odd', '1e300']]]])])
  const [[odd]] = await ctx.store.read([{ keys: [`${tag}:stats:2024-05-15-06`, `${tag}:stats:2024-05-15-05`], slots: [0, 0], nSlots: 1 }]) as [[Fields]]
  t.equal(odd.odd, '2e+300')
}

async function errors (t: Test, ctx: Ctx): Promise<void> {
  await ctx.flush()
  await ctx.raw.set('metrics:model:{err}:stats:2024-05-15-11', 'a string')
  await t.rejects(ctx.store.liveFieldNames(['metrics:model:{err}:stats:2024-05-15-11']), /WRONGTYPE/, 'liveFieldNames: a key holding another type rejects')
  await t.rejects(ctx.store.read([{ keys: ['metrics:model:{err}:stats:2024-05-15-11'], slots: [0], nSlots: 1 }]), /WRONGTYPE/, 'read rejects')
  await t.rejects(ctx.store.seal(entitySealUnits('model', 'err', { kind: 'hour', start: at(11, 0) }, { gateway: new Set(), provider: new Set() })), /WRONGTYPE|METRICS_REFUSED/, 'seal rejects')
  await ctx.raw.hset('metrics:model:{err2}:sealed:2024-05-15-11', 'f', 'v')
  await ctx.store.applyGroups(1, [group('metrics:model:{err2}', [['metrics:model:{err2}:stats:2024-05-15-11', [['i', 'n', '1']]]])])
  await t.rejects(ctx.store.seal(entitySealUnits('model', 'err2', { kind: 'hour', start: at(11, 0) }, { gateway: new Set(), provider: new Set() })), /WRONGTYPE|METRICS_REFUSED/, 'a block key holding a hash: seal rejects')
  t.strictSame(await ctx.store.liveFieldNames(['metrics:model:{err2}:stats:2024-05-15-11']), [['n']], 'and leaves the live hash as it was (the script checks before it writes)')
}

const SCENARIOS: Array<[string, (t: Test, ctx: Ctx) => Promise<void>]> = [
  ['write, seal, read: the same figures; late writes beside the block; second and third seals', sealAndRead],
  ['a pair equal to its model is stored as 1 and rebuilt exactly; a pair that differs stays whole', pairs],
  ['a pair with as many requests as its model but other figures stays whole', samePairCount],
  ['delta-coded bins, coded stats names; ids that look like integers and latest values survive', encodings],
  ['fieldNames: live and sealed; liveFieldNames: live only', names],
  ['every key keeps a TTL; blocks expire with the latest hash they took; sealing nothing is a no-op; the seal index is pruned', ttls],
  ['reads trust the seal index', trust],
  ['sums past 2^53 stay exact', bigSums],
  ['errors from Redis reject', errors]
]

t.test('one Redis', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  const c = redis.client
  const ctx: Ctx = {
    store,
    raw: { getBuffer: async (k) => await c.getBuffer(k), exists: async (k) => await c.exists(k), pexpiretime: async (k) => await pexpiretime(c, k), hget: async (k, f) => await c.hget(k, f), hset: async (k, f, v) => await c.hset(k, f, v), set: async (k, v) => await c.set(k, v) },
    keys: async () => await c.keys('metrics:*'),
    evalCalls: async () => await evalCalls(c),
    flush: async () => { await c.flushall() }
  }
  for (const [name, fn] of SCENARIOS) await t.test(name, async (t) => { await fn(t, ctx) })
})

t.test('a 3-master cluster', async (t) => {
  const cluster = await startCluster(t)
  if (cluster === null) return
  const store = new RedisStore({ cluster: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) })
  t.teardown(() => store.close())
  t.equal(await store.connect(5000), true)
  const c = cluster.client
  const ctx: Ctx = {
    store,
    raw: { getBuffer: async (k) => await c.getBuffer(k), exists: async (k) => await c.exists(k), pexpiretime: async (k) => await pexpiretime(c, k), hget: async (k, f) => await c.hget(k, f), hset: async (k, f, v) => await c.hset(k, f, v), set: async (k, v) => await c.set(k, v) },
    keys: async () => await cluster.keys('metrics:*'),
    evalCalls: async () => (await Promise.all(cluster.masters.map(evalCalls))).reduce((a, b) => a + b, 0),
    flush: cluster.flush,
    spread: async (t) => {
      const blocks = await Promise.all(cluster.masters.map(async (m) => (await m.keys('*:sealed:*')).length))
      t.ok(blocks.every((n) => n > 0), `blocks on every master, by their entity's slot (${blocks.join(', ')})`)
    }
  }
  for (const [name, fn] of SCENARIOS) await t.test(name, async (t) => { await fn(t, ctx) })
})

t.test('BlockCache: a block is fetched and decoded once per length, again when it grows', async (t) => {
  const { encode } = await import('@msgpack/msgpack')
  const one = Buffer.from(encode({ h: { r: ['a', 1] } }))
  const two = Buffer.concat([one, Buffer.from(encode({ h: { r: ['b', 2] } }))])
  const plan = planFetch(['metrics:model:{a/b}:stats:2024-05-15-10'])
  const block = plan.keys.findIndex((_, i) => plan.kinds[i] === 's')
  const cache = new BlockCache()
  const replies = (raw: Buffer): Buffer[] => plan.keys.map((_, i) => i === block ? raw : Buffer.alloc(0))
  t.equal(fetchArgs(plan, cache).args[block], 's', 'a block not held: asked for whole')
  t.strictSame(unpack(plan, replies(Buffer.alloc(0)), cache).blocks[block], [], 'an absent block: no snapshots')
  const first = unpack(plan, replies(one), cache).blocks[block]!
  t.equal(first.length, 1)
  const asked = fetchArgs(plan, cache)
  t.equal(asked.args[block], `s${one.length}`, 'a block held: asked for with its length')
  t.equal(unpack(plan, replies(Buffer.from('=')), cache, asked).blocks[block], first, 'the same length: the snapshots held, not decoded again')
  const second = unpack(plan, replies(two), cache, asked).blocks[block]!
  t.equal(second.length, 2, 'an appended snapshot is seen')
  t.strictSame(partOf(second[1]!, 'h', 'r'), ['b', 2])
  t.equal(fetchArgs(plan, cache).args[block], `s${two.length}`)
  // Evicted between the question and the answer: the snapshots held when asked still answer.
  const tiny = new BlockCache(two.length * 4)
  unpack(plan, replies(two), tiny)
  const held = fetchArgs(plan, tiny)
  unpack(planFetch(['metrics:model:{c/d}:stats:2024-05-15-10']), planFetch(['metrics:model:{c/d}:stats:2024-05-15-10']).keys.map((k) => k.includes(':sealed:') ? two : Buffer.alloc(0)), tiny)
  t.equal(tiny.held(plan.keys[block]!), undefined, 'bounded by bytes: the least recent leaves')
  t.equal(unpack(plan, replies(Buffer.from('=')), tiny, held).blocks[block]!.length, 2)
})

t.test('mergeRead: sealed figures are merged once per version of their blocks, never changed by a reader', async (t) => {
  const { encode } = await import('@msgpack/msgpack')
  const { mergeRead } = await import('../../src/store/fetch.js')
  const { joinParts, splitReads } = await import('../../src/read/budget.js')
  const keys = ['metrics:model:{m/e}:stats:2024-05-15-10', 'metrics:model:{m/e}:stats:2024-05-15-11']
  const read: MergeRead = { keys, slots: [0, 0], nSlots: 1 }
  const plan = planFetch(keys)
  const snap = (n: number, last: string): Buffer => Buffer.from(encode({ h: { s: ['n', n, 'ttft:max', '7', 'last:provider', last] } }))
  const cache = new BlockCache()
  const blocks = new Map([[plan.keys.indexOf('metrics:model:{m/e}:sealed:2024-05-15-10'), snap(2, '001715767200000a')], [plan.keys.indexOf('metrics:model:{m/e}:sealed:2024-05-15-11'), snap(3, '001715770800000b')]])
  t.equal(blocks.size, 2, 'one block per hour')
  const fetch = (live: string, changed = new Map<number, Buffer>()): Fields => {
    const asked = fetchArgs(plan, cache)
    const replies = plan.keys.map((_, i) => changed.get(i) ?? (blocks.has(i) ? (asked.held[i] !== undefined ? Buffer.from('=') : blocks.get(i)!) : (plan.kinds[i]!.startsWith('h') && i === plan.keys.indexOf(keys[1]!) ? Buffer.from(live) : Buffer.alloc(0))))
    return mergeRead(read, plan, unpack(plan, replies, cache, asked))[0]!
  }
  const first = fetch('')
  t.strictSame(first, { n: '5', 'ttft:max': '7', 'last:provider': '001715770800000b' }, 'two hours merged')
  t.ok(Object.isFrozen(first), 'shared, so frozen')
  t.equal(fetch(''), first, 'the same versions: the same merge, not done again')
  const withLive = fetch('n\u00004\u0000ttft:max\u00009')
  t.strictSame(withLive, { n: '9', 'ttft:max': '9', 'last:provider': '001715770800000b' }, 'a live hash beside a block is merged on top')
  t.strictSame(fetch(''), first, 'and leaves the sealed merge as it was')
  const grown = new Map([[plan.keys.indexOf('metrics:model:{m/e}:sealed:2024-05-15-11'), Buffer.concat([snap(3, '001715770800000b'), snap(10, '001715770900000c')])]])
  const after = fetch('', grown)
  t.strictSame(after, { n: '15', 'ttft:max': '7', 'last:provider': '001715770900000c' }, 'a block that grew: merged anew')
  t.not(after, first)

  // A slot split over several calls (the read budget) is merged into a copy, never into a shared result.
  const parts = splitReads([read], 1)
  t.equal(parts.length, 2)
  const joined = joinParts([read], parts, [[after], [after], [after]].slice(0, parts.length))
  t.equal(joined[0]![0]!.n, '30')
  t.equal(after.n, '15', 'the shared result is unchanged')
  const three = joinParts([{ keys: [...keys, keys[0]!], slots: [0, 0, 0], nSlots: 1 }], splitReads([{ keys: [...keys, keys[0]!], slots: [0, 0, 0], nSlots: 1 }], 1), [[after], [after], [after]])
  t.equal(three[0]![0]!.n, '45', 'three parts: one copy, merged twice')
})

t.test('SealIndexes: what a fetch may claim sealed, refreshed after a while', async (t) => {
  const { SealIndexes, sealedIn } = await import('../../src/store/fetch.js')
  let now = 1000
  const seals = new SealIndexes({ refreshMs: 100, now: () => now, maxBytes: 4096 })
  const key = 'metrics:model:{m}:seals'
  t.equal(seals.wanted(key), true, 'not held: asked for')
  t.equal(sealedIn(seals.held(key), '2024-05-15-10', 'h'), false, 'not held: nothing claimed')
  seals.learn(key, Buffer.from(['2024-05-15-10', 'h', '2024-05-15-11', 'h', '2024-05-15-11:late', '1', '2024-05-15-11-20+10m', '0123'].join('\0')))
  t.equal(seals.wanted(key), false)
  t.equal(sealedIn(seals.held(key), '2024-05-15-10', 'h'), true)
  t.equal(sealedIn(seals.held(key), '2024-05-15-11', 'h'), false, 'a period written late: never claimed')
  t.equal(sealedIn(seals.held(key), '2024-05-15-11-20+10m', '3'), true)
  t.equal(sealedIn(seals.held(key), '2024-05-15-11-20+10m', '4'), false, 'a minute not sealed yet')
  t.equal(sealedIn(seals.held(key), '2024-05-15-09', 'h'), false, 'a period not in the index')
  now += 100
  t.equal(seals.wanted(key), true, 'held for refreshMs: asked for again')
  seals.learn(key, Buffer.alloc(0))
  t.equal(sealedIn(seals.held(key), '2024-05-15-10', 'h'), false, 'an empty index: nothing sealed')
  // Bounded by bytes: indexes of other tags push the least recent out.
  for (let i = 0; i < 20; i++) seals.learn(`metrics:model:{m${i}}:seals`, Buffer.from(`2024-05-15-10\0h${'x'.repeat(100)}`))
  t.equal(seals.held(key), undefined, 'the least recent index leaves')
  t.ok(seals.held('metrics:model:{m19}:seals') !== undefined)
})

t.test('fetchAll: a stale answer is asked again, the third time without claims', async (t) => {
  const { fetchAll, SealIndexes } = await import('../../src/store/fetch.js')
  const key = 'metrics:model:{f/a}:stats:2024-05-15-10'
  const plan = planFetch([key])
  const seals = new SealIndexes()
  const sealsAt = plan.kinds.indexOf('x')
  const sealsKey = plan.keys[sealsAt]!
  seals.learn(sealsKey, Buffer.from('2024-05-15-10\0h'))
  const asked: string[][] = []
  const fetched = await fetchAll([plan], new BlockCache(), seals, async (calls) => calls.map((call) => {
    asked.push(call.args)
    // Stale twice whatever the claims: the index answered claims the hour sealed again.
    if (asked.length < 3) return [...call.keys.map((k) => k === sealsKey ? Buffer.from('2024-05-15-10\0h') : Buffer.alloc(0)), Buffer.from('!')]
    return call.keys.map((k) => k.includes(':stats:') ? Buffer.from('n\u00007') : Buffer.alloc(0))
  }))
  t.equal(asked.length, 3)
  t.ok(asked[0]!.some((a) => a.startsWith('a')) && asked[1]!.some((a) => a.startsWith('a')), 'the first two calls claim the hour sealed')
  t.notOk(asked[2]!.some((a) => a.startsWith('a')), 'the third claims nothing')
  t.ok(asked[2]!.some((a) => a.startsWith('h')), 'and asks for the live hash')
  t.equal(fetched[0]!.got.stale, false)
  t.strictSame(fetched[0]!.got.hashes[plan.keys.indexOf(key)], ['n', '7'])
})
