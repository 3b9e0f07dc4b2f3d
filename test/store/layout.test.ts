/**
 * The stored layout, version 2 (src/store/layout.ts): where a live hash goes when sealed, which keys a
 * read key stands for, which periods a pass looks at, what one seal call moves, and how a block's
 * snapshot decodes. Expected keys, blocks and parts are written out by hand (docs/design.md, "Keys").
 */
import { encode } from '@msgpack/msgpack'
import t from 'tap'
import { Aggregator } from '../../src/ingest/aggregator.js'
import {
  closedPeriods, decodeBlock, entitySealUnits, expandKey, indexSealUnit, LAYOUT_VERSION, locate, partOf, periodBuckets,
  SCHEMA_KEY, SCHEMA_TTL_MS, sealsKey, STAT_NAMES, type Snapshot
} from '../../src/store/layout.js'

const MIN = 60_000
const HOUR = 3_600_000
const at = (h: number, m: number, s = 0, ms = 0): number => Date.UTC(2024, 4, 15, h, m, s, ms)
const NOW = at(12, 30, 15)
const none = { gateway: new Set<string>(), provider: new Set<string>() }

t.test('version, schema key and its TTL', async (t) => {
  t.equal(LAYOUT_VERSION, 2)
  t.equal(SCHEMA_KEY, 'metrics:schema')
  t.equal(SCHEMA_TTL_MS, 30 * 24 * HOUR, '30 days')
})

t.test('locate: an hour hash goes to its hour block, a minute hash to its 10-minute block', async (t) => {
  const m = 'metrics:model:{acme/m1}'
  t.strictSame(locate(`${m}:stats:2024-05-15-12`), { block: `${m}:sealed:2024-05-15-12`, seals: `${m}:seals`, period: '2024-05-15-12', sub: 'h', part: 's' })
  t.strictSame(locate(`${m}:ttft:2024-05-15-12-37`), { block: `${m}:sealed:2024-05-15-12-30+10m`, seals: `${m}:seals`, period: '2024-05-15-12-30+10m', sub: '7', part: 't' })
  t.match(locate(`${m}:ttft:2024-05-15-12-30`), { block: `${m}:sealed:2024-05-15-12-30+10m`, period: '2024-05-15-12-30+10m', sub: '0' }, 'the first minute of the block')
  t.match(locate('metrics:gateway:{gw1}:stats:2024-05-15-23-59'), { block: 'metrics:gateway:{gw1}:sealed:2024-05-15-23-50+10m', seals: 'metrics:gateway:{gw1}:seals', sub: '9', part: 's' }, 'the last minute of the day')
  t.strictSame(locate('metrics:index:{model}:requests:2024-05-15-12-05'), { block: 'metrics:index:{model}:sealed:2024-05-15-12-00+10m', seals: 'metrics:index:{model}:seals', period: '2024-05-15-12-00+10m', sub: '5', part: 'r' }, 'the activity index likewise')
  t.match(locate('metrics:index:{gateway}:fetches:2024-05-15-12'), { block: 'metrics:index:{gateway}:sealed:2024-05-15-12', sub: 'h', part: 'F' })
  t.equal(sealsKey('metrics:provider:{p}'), 'metrics:provider:{p}:seals', 'one seal index per hash tag, in its slot')
})

t.test('locate: each family and index field has a part code of its own', async (t) => {
  const codes: Record<string, string> = {
    stats: 's',
    ttft: 't',
    total: 'T',
    tps: 'p',
    fetch_rt: 'f',
    models: 'm',
    gateways: 'g',
    providers: 'P',
    status: 'S',
    catalog_fetches: 'c',
    dists: 'd',
    requests: 'r',
    successes: 'o',
    fetches: 'F'
  }
  for (const [family, code] of Object.entries(codes)) {
    t.equal(locate(`metrics:provider:{acme}:${family}:2024-05-15-12`)?.part, code, family)
  }
  t.equal(new Set(Object.values(codes)).size, Object.keys(codes).length, 'no two families share a code')
  t.equal(locate('metrics:model:{m}:novel:2024-05-15-12')?.part, 'novel', 'a family with no code is stored by its name')
})

t.test('locate: pairs keep the other id in their part, in the model\'s block', async (t) => {
  t.match(locate('metrics:model:{acme/m1}:gateway:gw1:stats:2024-05-15-12'), { block: 'metrics:model:{acme/m1}:sealed:2024-05-15-12', seals: 'metrics:model:{acme/m1}:seals', sub: 'h', part: 'g:gw1:s' })
  t.match(locate('metrics:model:{acme/m1}:provider:acme:dists:2024-05-15-12-31'), { block: 'metrics:model:{acme/m1}:sealed:2024-05-15-12-30+10m', sub: '1', part: 'p:acme:d' })
  t.equal(locate('metrics:model:{acme/m1}:gateway:a:b:c:dists:2024-05-15-12')?.part, 'g:a:b:c:d', 'an id holding colons stays whole')
  t.equal(locate('metrics:model:{acme/m1}:provider:1:stats:2024-05-15-12')?.part, 'p:1:s', 'an id that is a number')
  t.equal(locate('metrics:model:{m}:other:x:stats:2024-05-15-12')?.part, 'other:x:s', 'another prefix is kept as it is')
})

t.test('locate: the hash tag ends at the first }, whatever the id holds', async (t) => {
  t.equal(locate('metrics:model:{a:b/c}:stats:2024-05-15-12')?.block, 'metrics:model:{a:b/c}:sealed:2024-05-15-12', 'colons in the id')
  t.equal(locate('metrics:model:{a%7Bb%7D}:tps:2024-05-15-12-01')?.block, 'metrics:model:{a%7Bb%7D}:sealed:2024-05-15-12-00+10m', 'braces are percent-encoded in ids')
  t.equal(locate('metrics:model:{2024-05-15-12}:stats:2024-05-15-13')?.block, 'metrics:model:{2024-05-15-12}:sealed:2024-05-15-13', 'an id that looks like a bucket')
})

t.test('locate: keys that are never sealed', async (t) => {
  const never = [
    'metrics:schema', // no hash tag
    'metrics:idem:{chat:2024-05-15-12}', // the last colon is inside the tag
    'metrics:quota:{catalog}:2024-05-15-12', // nothing between the tag and the bucket
    'metrics:model:{m}:2024-05-15-12',
    'metrics:model:{acme/m1}:flushed:inst-1', // markers
    'metrics:gateway:{gw1}:catalog:0123456789abcdef', // model lists, by digest
    'metrics:model:{acme/m1}:stats:2024-05-15-12-30+10m', // 10-minute keys are not written any more
    'metrics:job:{seal}:28600000',
    'metrics:model:{acme/m1}:stats:2024-05-15-1', // not a bucket name
    'metrics:model:{acme/m1}:stats:2024-05-15-12-3',
    'metrics:model:{acme/m1}:stats:2024-05-15-12-300',
    'metrics:model:{acme/m1}:sealed:2024-05-15-12x'
  ]
  for (const key of never) t.equal(locate(key), null, key)
})

t.test('expandKey: a 10-minute key stands for its ten minutes, any other for itself', async (t) => {
  const ten = expandKey('metrics:model:{acme/m1}:stats:2024-05-15-12-30+10m')
  t.strictSame(ten, Array.from({ length: 10 }, (_, i) => `metrics:model:{acme/m1}:stats:2024-05-15-12-3${i}`))
  t.ok(ten.every((k, i) => locate(k)?.block === 'metrics:model:{acme/m1}:sealed:2024-05-15-12-30+10m' && locate(k)?.sub === String(i)), 'all in one 10-minute block, sub-buckets 0–9')
  t.strictSame(expandKey('metrics:index:{model}:requests:2024-05-15-12-00+10m').at(-1), 'metrics:index:{model}:requests:2024-05-15-12-09')
  for (const key of ['metrics:model:{m}:stats:2024-05-15-12', 'metrics:model:{m}:stats:2024-05-15-12-31', 'metrics:gateway:{g}:catalog:0123456789abcdef']) {
    t.strictSame(expandKey(key), [key], key)
  }
})

t.test('periodBuckets: an hour is its hour bucket, 10 minutes their ten minute buckets', async (t) => {
  t.strictSame(periodBuckets({ kind: 'hour', start: at(12, 0) }), ['2024-05-15-12'])
  t.strictSame(periodBuckets({ kind: 'tenmin', start: at(23, 50) }), Array.from({ length: 10 }, (_, i) => `2024-05-15-23-5${i}`))
})

t.test('closedPeriods: every closed 10 minutes kept by minute, every closed hour kept', async (t) => {
  const p = closedPeriods(NOW, 2 * MIN, 2 * HOUR, 3)
  const ten = p.filter((x) => x.kind === 'tenmin').map((x) => x.start)
  const hours = p.filter((x) => x.kind === 'hour').map((x) => x.start)
  t.strictSame(ten, Array.from({ length: 11 }, (_, i) => at(10, 30) + i * 10 * MIN), '10:30 (its minutes ended ≤ 2 h ago) … 12:10 (ended by 12:28:15)')
  t.strictSame(hours, [at(9, 0), at(10, 0), at(11, 0)], 'hours 9–11: hour 9 is kept until 13:00 (retention 3 h), hour 12 is open')
  t.ok(p.every((x) => x.start % (x.kind === 'hour' ? HOUR : 10 * MIN) === 0), 'aligned')

  // Edges: a period is closed when it ended at least `delay` ago.
  t.equal(closedPeriods(at(12, 32), 2 * MIN, 2 * HOUR, 3).filter((x) => x.kind === 'tenmin').at(-1)?.start, at(12, 20), '12:20–12:30 is sealed from 12:32')
  t.equal(closedPeriods(at(12, 32) - 1, 2 * MIN, 2 * HOUR, 3).filter((x) => x.kind === 'tenmin').at(-1)?.start, at(12, 10), 'not 1 ms before')
  t.equal(closedPeriods(at(13, 2), 2 * MIN, 2 * HOUR, 3).filter((x) => x.kind === 'hour').at(-1)?.start, at(12, 0), 'hour 12 from 13:02')
  t.equal(closedPeriods(at(13, 2) - 1, 2 * MIN, 2 * HOUR, 3).filter((x) => x.kind === 'hour').at(-1)?.start, at(11, 0))

  // The oldest hour is the oldest still kept: its end + the retention is after now; the one before has expired.
  for (const now of [NOW, at(12, 0), at(12, 59, 59, 999)]) {
    for (const r of [2, 3, 168]) {
      const first = closedPeriods(now, 2 * MIN, 2 * HOUR, r).find((x) => x.kind === 'hour')!.start
      t.ok(first + HOUR + r * HOUR > now && first + r * HOUR <= now, `retention ${r} h at ${new Date(now).toISOString()}`)
    }
  }
  t.strictSame(closedPeriods(NOW, 2 * MIN, 0, 0), [], 'nothing kept: nothing to seal')
})

t.test('entitySealUnits: one unit per bucket, every family the entity writes at that resolution', async (t) => {
  const hour = { kind: 'hour', start: at(12, 0) } as const
  const ten = { kind: 'tenmin', start: at(12, 30) } as const
  const m = 'metrics:model:{acme/m1}'
  const [unit, ...more] = entitySealUnits('model', 'acme/m1', hour, { gateway: new Set(['gw1', 'gw:2']), provider: new Set(['acme']) })
  t.equal(more.length, 0, 'an hour: one unit')
  t.strictSame(unit, {
    block: `${m}:sealed:2024-05-15-12`,
    seals: `${m}:seals`,
    period: '2024-05-15-12',
    keys: [
      ...['stats', 'ttft', 'total', 'tps', 'gateways', 'providers', 'status'].map((f) => `${m}:${f}:2024-05-15-12`),
      `${m}:gateway:gw1:stats:2024-05-15-12`, `${m}:gateway:gw1:dists:2024-05-15-12`,
      `${m}:gateway:gw:2:stats:2024-05-15-12`, `${m}:gateway:gw:2:dists:2024-05-15-12`,
      `${m}:provider:acme:stats:2024-05-15-12`, `${m}:provider:acme:dists:2024-05-15-12`
    ],
    subs: Array(13).fill('h'),
    parts: ['s', 't', 'T', 'p', 'g', 'P', 'S', 'g:gw1:s', 'g:gw1:d', 'g:gw:2:s', 'g:gw:2:d', 'p:acme:s', 'p:acme:d']
  })

  const units = entitySealUnits('model', 'acme/m1', ten, { gateway: new Set(['gw1']), provider: none.provider })
  t.equal(units.length, 10, '10 minutes: one unit per minute')
  units.forEach((u, i) => {
    t.equal(u.block, `${m}:sealed:2024-05-15-12-30+10m`)
    t.equal(u.period, '2024-05-15-12-30+10m')
    t.equal(u.seals, `${m}:seals`)
    t.equal(u.prune, undefined, 'pruning is the sealer\'s to ask')
    t.strictSame(u.keys, [...['stats', 'ttft', 'total', 'tps'].map((f) => `${m}:${f}:2024-05-15-12-3${i}`), `${m}:gateway:gw1:stats:2024-05-15-12-3${i}`, `${m}:gateway:gw1:dists:2024-05-15-12-3${i}`], `minute ${i}: no hour-only family`)
    t.strictSame(u.subs, Array(6).fill(String(i)))
    t.strictSame(u.parts, ['s', 't', 'T', 'p', 'g:gw1:s', 'g:gw1:d'])
  })

  const family = (type: 'provider' | 'gateway', p: typeof hour | typeof ten): string[] => entitySealUnits(type, 'x', p, { gateway: new Set(['ignored']), provider: new Set(['ignored']) })[0]!.keys.map((k) => k.split(':')[3]!)
  t.strictSame(family('provider', hour), ['stats', 'ttft', 'total', 'tps', 'models', 'status'], 'a provider\'s hour; no pairs but a model\'s')
  t.strictSame(family('provider', ten), ['stats', 'ttft', 'total', 'tps', 'models'], 'a provider\'s minute')
  t.strictSame(family('gateway', hour), ['stats', 'ttft', 'total', 'tps', 'fetch_rt', 'catalog_fetches', 'status'], 'a gateway\'s hour')
  t.strictSame(family('gateway', ten), ['stats', 'ttft', 'total', 'tps', 'fetch_rt'], 'a gateway\'s minute')

  const odd = entitySealUnits('model', 'a{b}%', hour, none)[0]!
  t.equal(odd.block, 'metrics:model:{a%7Bb%7D%25}:sealed:2024-05-15-12', 'ids are encoded as in every key')
  t.ok(odd.keys.every((k) => k.startsWith('metrics:model:{a%7Bb%7D%25}:')), 'every key in the block\'s hash slot')
})

t.test('indexSealUnit: requests, successes and fetches of a type, by bucket', async (t) => {
  t.strictSame(indexSealUnit('gateway', { kind: 'hour', start: at(12, 0) }), {
    block: 'metrics:index:{gateway}:sealed:2024-05-15-12',
    seals: 'metrics:index:{gateway}:seals',
    period: '2024-05-15-12',
    keys: ['requests', 'successes', 'fetches'].map((f) => `metrics:index:{gateway}:${f}:2024-05-15-12`),
    subs: ['h', 'h', 'h'],
    parts: ['r', 'o', 'F']
  })
  const u = indexSealUnit('model_gateway', { kind: 'tenmin', start: at(12, 0) })
  t.equal(u.block, 'metrics:index:{model_gateway}:sealed:2024-05-15-12-00+10m')
  t.equal(u.keys.length, 30)
  t.strictSame(u.keys.slice(27), ['requests', 'successes', 'fetches'].map((f) => `metrics:index:{model_gateway}:${f}:2024-05-15-12-09`))
  t.strictSame(u.subs.slice(0, 4), ['0', '0', '0', '1'])
})

t.test('STAT_NAMES: every stats field the aggregator writes has a one-byte code', async (t) => {
  t.equal(new Set(STAT_NAMES).size, STAT_NAMES.length, 'distinct')
  t.ok(STAT_NAMES.length <= 127, 'codes 1…n are MessagePack positive fixints')
  const a = new Aggregator()
  const ts = NOW - MIN
  a.addChat({ model: 'acme/m1', provider: 'acme', gateway: 'gw1', success: true, errorType: null, ttftMs: 100, totalMs: 900, inputTokens: 5, outputTokens: 50, ts })
  for (const errorType of ['timeout', 'rate_limit', 'network', 'other'] as const) a.addChat({ model: 'acme/m1', provider: 'acme', gateway: 'gw1', success: false, errorType, ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts })
  a.addFetch({ gateway: 'gw1', success: true, errorType: null, modelCount: 3, responseTimeMs: 20, ts })
  a.addFetch({ gateway: 'gw1', success: false, errorType: 'timeout', modelCount: undefined, responseTimeMs: 20, ts })
  const written = new Set<string>()
  for (const g of a.seal({ now: NOW, retentionHours: 168, instanceId: 'i' })) {
    for (const kw of g.keys) if (/:stats:[^:]+$/.test(kw.key)) for (const [, field] of kw.ops) written.add(field)
  }
  t.ok(written.size >= 27, `${written.size} stats fields written`)
  t.strictSame([...written].filter((f) => !(STAT_NAMES as readonly string[]).includes(f)), [], 'none without a code')
})

/** A block as SEAL writes it: snapshots, one after the other. */
function block (...snaps: unknown[]): Uint8Array {
  return Buffer.concat(snaps.map((s) => encode(s)))
}

t.test('decodeBlock: the snapshots, oldest first', async (t) => {
  const snaps = decodeBlock(block({ h: { r: ['a', 1] } }, { h: { r: ['b', 2] } }))
  t.equal(snaps.length, 2)
  t.strictSame(snaps.map((s) => partOf(s, 'h', 'r')), [['a', 1], ['b', 2]])
  t.strictSame(decodeBlock(new Uint8Array(0)), [], 'an empty block holds nothing')
})

t.test('partOf: a part as its live hash held it', async (t) => {
  const [snap] = decodeBlock(block({
    h: {
      t: [3, 2, 'z', 1, 7, 4],
      T: [true, 2, 5, 3, 1, 1, 9], // fields 2, 5, 6
      s: [1, 10, 2, 9, 'last:provider', '001715774400000acme', 14, '123456'],
      S: ['last:000001715774400000', 'down'],
      r: [true, -5, 1, 5, 2, 1000, 3] // fields -5, 0, 1000
    },
    7: { s: [1, 1] }
  })) as [Snapshot]
  t.strictSame(partOf(snap, 'h', 't'), [3, 2, 'z', 1, 7, 4], 'as stored: fields and values')
  t.strictSame(partOf(snap, 'h', 'T'), [2, 5, 5, 1, 6, 9], 'sorted differences after true: fields added up')
  t.strictSame(partOf(snap, 'h', 's'), ['n', 10, 'ok', 9, 'last:provider', '001715774400000acme', 'total:sum', '123456'], 'stats names from their codes')
  t.strictSame(partOf(snap, 'h', 'S'), ['last:000001715774400000', 'down'])
  t.strictSame(partOf(snap, 'h', 'r'), [-5, 1, 0, 2, 1000, 3], 'differences may start below zero')
  t.strictSame(partOf(snap, '7', 's'), ['n', 1], 'another sub-bucket')
  t.equal(partOf(snap, 'h', 'x'), undefined, 'no such part')
  t.equal(partOf(snap, '3', 's'), undefined, 'no such sub-bucket')

  const first = partOf(snap, 'h', 'T')
  t.equal(partOf(snap, 'h', 'T'), first, 'a part is decoded once, in place')
  t.equal(snap.h!.T, first)
  t.strictSame(partOf(snap, 'h', 's'), ['n', 10, 'ok', 9, 'last:provider', '001715774400000acme', 'total:sum', '123456'], 'decoding decoded stats changes nothing')

  const [odd] = decodeBlock(block({ h: { s: [99, 1, 'x:y', 2], 'g:gw:s': [true, 1, 4, 1, 3] } })) as [Snapshot]
  t.strictSame(partOf(odd, 'h', 's'), ['99', 1, 'x:y', 2], 'a number with no stats name, and a name with no code, are kept as names')
  t.strictSame(partOf(odd, 'h', 'g:gw:s'), ['n', 4, 'ok', 3], 'a pair\'s stats, delta-coded')
})

t.test('partOf: a pair stored as 1 is its model\'s figures', async (t) => {
  const [snap] = decodeBlock(block({
    h: {
      s: [1, 3, 2, 2, 'last:provider', '001715774400000acme', 9, 3],
      t: [5, 1, 'z', 2],
      T: [true, 5, 1, 2, 2], // bins 5 and 7
      'g:gw1:s': 1,
      'g:gw1:d': 1,
      'p:acme:s': 1
    },
    4: { s: [1, 1], p: [3, 1], 'g:gw1:s': 1, 'g:gw1:d': 1 }
  })) as [Snapshot]
  t.strictSame(partOf(snap, 'h', 'g:gw1:s'), ['n', 3, 'ok', 2, 'ttft:n', 3], 'stats without the model\'s latest provider')
  t.strictSame(partOf(snap, 'h', 'g:gw1:d'), [5, 1, 9999, 2, 10005, 1, 10007, 2], 'the three histograms in one hash: bin + 0, 10 000, 20 000; the zero bin as 9999')
  t.strictSame(partOf(snap, 'h', 'p:acme:s'), ['n', 3, 'ok', 2, 'ttft:n', 3])
  t.strictSame(partOf(snap, '4', 'g:gw1:d'), [20003, 1], 'histograms the model lacks add nothing')
  t.strictSame(partOf(snap, '4', 'g:gw1:s'), ['n', 1])
})
