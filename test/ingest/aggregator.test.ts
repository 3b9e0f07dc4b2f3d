import { createHash } from 'node:crypto'
import t from 'tap'
import { Aggregator, SEAL_STEP } from '../../src/ingest/aggregator.js'
import { MIN_GENERATION_MS, type ChatErrorType, type ChatEvent, type EntityType, type FetchEvent } from '../../src/metrics/events.js'
import { GAMMA, statsOf, ZERO_BIN } from '../../src/metrics/histogram.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { FieldOp, Fields, GroupWrite, KeyWrite } from '../../src/store/types.js'
import { mulberry32 } from '../helpers/random.js'

// ---------------------------------------------------------------------------------------------
// Fixed clock and expectations written out by hand (not taken from src/store/keys.ts or buckets.ts).

const MIN = 60_000
const HOUR = 3_600_000
const NOW = Date.UTC(2024, 4, 15, 12, 30, 15) // 2024-05-15T12:30:15Z
const RETENTION_HOURS = 168
const INSTANCE = 'inst-1'
const M_NOW = '2024-05-15-12-30' // minute bucket of NOW
const H_NOW = '2024-05-15-12' // hour bucket of NOW
const T_NOW = '2024-05-15-12-30+10m' // 10-minute key of NOW: read as its ten minutes, never written
const at = (h: number, m: number, s = 0, ms = 0): number => Date.UTC(2024, 4, 15, h, m, s, ms)

const tag = (type: EntityType, id: string): string => `metrics:${type}:{${id}}`
const ek = (type: EntityType, id: string, family: string, bucket: string): string => `${tag(type, id)}:${family}:${bucket}`
const ik = (type: EntityType | 'model_gateway' | 'model_provider', field: 'requests' | 'successes' | 'fetches', bucket: string): string => `metrics:index:{${type}}:${field}:${bucket}`
/** A model's key for one gateway (or provider): in the model's hash slot. */
const pk = (model: string, kind: 'gateway' | 'provider', other: string, family: string, bucket: string): string => `${tag('model', model)}:${kind}:${other}:${family}:${bucket}`
const marker = (groupTag: string): string => `${groupTag}:flushed:${INSTANCE}`
/** A latest-value field: 15-digit event time, then the value. */
const lv = (ts: number, value: string): string => String(ts).padStart(15, '0') + value
const us = (ms: number): number => Math.round(ms * 1000)

function chat (over: Partial<ChatEvent> = {}): ChatEvent {
  return {
    model: 'acme/m1',
    provider: 'acme',
    gateway: 'gw1',
    success: true,
    errorType: null,
    ttftMs: undefined,
    totalMs: undefined,
    inputTokens: undefined,
    outputTokens: undefined,
    ts: at(12, 30, 10),
    ...over
  }
}

function fetchEv (over: Partial<FetchEvent> = {}): FetchEvent {
  return { gateway: 'gw1', success: true, errorType: null, modelCount: undefined, responseTimeMs: undefined, ts: at(12, 30, 10), ...over }
}

function seal (agg: Aggregator, opts: { now?: number, retentionHours?: number } = {}): GroupWrite[] {
  return agg.seal({ now: opts.now ?? NOW, retentionHours: opts.retentionHours ?? RETENTION_HOURS, instanceId: INSTANCE })
}

function aggOf (chats: ChatEvent[], fetches: FetchEvent[] = []): Aggregator {
  const a = new Aggregator()
  for (const e of chats) a.addChat(e)
  for (const e of fetches) a.addFetch(e)
  return a
}

/** Every KeyWrite by key; a key written twice in one seal is an error. */
function keyMap (groups: GroupWrite[]): Map<string, KeyWrite> {
  const m = new Map<string, KeyWrite>()
  for (const g of groups) {
    for (const kw of g.keys) {
      if (m.has(kw.key)) throw new Error(`key written twice: ${kw.key}`)
      m.set(kw.key, kw)
    }
  }
  return m
}

/** The ops of one key by field; a field set twice in one key is an error. */
function fieldsOf (kw: KeyWrite | undefined): Map<string, [FieldOp, string]> {
  const m = new Map<string, [FieldOp, string]>()
  if (kw === undefined) return m
  for (const [op, field, value] of kw.ops) {
    if (m.has(field)) throw new Error(`field written twice in ${kw.key}: ${field}`)
    m.set(field, [op, value])
  }
  return m
}

/** The field → value table of a histogram or index key, all ops being `i`. */
function counts (kw: KeyWrite | undefined): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [field, [op, value]] of fieldsOf(kw)) {
    if (op !== 'i') throw new Error(`${field}: op ${op}`)
    out[field] = Number(value)
  }
  return out
}

/** The log bin of `units` by its definition: the k with γ^(k−1) < units ≤ γ^k; values under 1 unit: 'z'. */
function binFor (units: number): string {
  if (units < 1) return 'z'
  let k = Math.ceil(Math.log(units) / Math.log(GAMMA))
  while (GAMMA ** (k - 1) >= units) k--
  while (GAMMA ** k < units) k++
  return String(k)
}

function histogramOf (values: number[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const v of values) {
    const b = binFor(us(v))
    out[b] = (out[b] ?? 0) + 1
  }
  return out
}

/**
 * The bucket a key belongs to, from its name, and the expiry a user expects for it: the bucket's
 * end plus the retention, or 2 hours for minute buckets (1 hour for a model × gateway or provider pair).
 */
function expectedExpiry (key: string, retentionHours: number): number {
  const m = /:(\d{4})-(\d{2})-(\d{2})-(\d{2})(?:-(\d{2})(\+10m)?)?$/.exec(key)
  if (m === null) throw new Error(`no bucket in ${key}`)
  const [, y, mo, d, h, mi, ten] = m
  if (mi === undefined) return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h)) + HOUR + retentionHours * HOUR
  if (ten !== undefined) return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi)) + 10 * MIN + 2 * HOUR
  const pair = /^metrics:model:\{[^}]*\}:(gateway|provider):/.test(key)
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi)) + MIN + (pair ? HOUR : 2 * HOUR)
}

// ---------------------------------------------------------------------------------------------

t.test('Aggregator.seal', async (t) => {
  t.test('an empty aggregator seals to nothing', async (t) => {
    const a = new Aggregator()
    t.equal(a.empty, true)
    t.strictSame(seal(a), [])
  })

  t.test('one chat event: model, provider and gateway, minute and hour bucket', async (t) => {
    const e = chat({ ttftMs: 250.5, totalMs: 1200.25, inputTokens: 50, outputTokens: 100 })
    const a = aggOf([e])
    t.equal(a.events, 1)
    t.equal(a.empty, false)
    const groups = seal(a)
    const keys = keyMap(groups)

    const entities: Array<[EntityType, string]> = [['model', 'acme/m1'], ['provider', 'acme'], ['gateway', 'gw1']]
    const expectedKeys: string[] = []
    for (const [type, id] of entities) {
      for (const b of [M_NOW, H_NOW]) {
        for (const f of ['stats', 'ttft', 'total', 'tps']) expectedKeys.push(ek(type, id, f, b))
        if (type === 'provider') expectedKeys.push(ek(type, id, 'models', b))
      }
    }
    // No 10-minute bucket is written (a 10-minute key reads as its ten minutes); no fetch, no
    // `fetches` index.
    for (const type of ['model', 'provider', 'gateway'] as const) {
      for (const b of [M_NOW, H_NOW]) expectedKeys.push(ik(type, 'requests', b), ik(type, 'successes', b))
    }
    // The model through its gateway and by its provider: the pairs, in the model's slot; which
    // gateways and providers served it, and the pairs' index, by the hour only.
    for (const [kind, other] of [['gateway', 'gw1'], ['provider', 'acme']] as const) {
      for (const b of [M_NOW, H_NOW]) for (const f of ['stats', 'dists']) expectedKeys.push(pk('acme/m1', kind, other, f, b))
    }
    expectedKeys.push(ek('model', 'acme/m1', 'gateways', H_NOW), ek('model', 'acme/m1', 'providers', H_NOW))
    expectedKeys.push(ik('model_gateway', 'requests', H_NOW), ik('model_provider', 'requests', H_NOW))
    t.strictSame([...keys.keys()].sort(), expectedKeys.sort(), 'exactly these keys')
    t.notOk([...keys.keys()].some((k) => k.endsWith('+10m')), 'no 10-minute bucket')
    t.equal(a.entityBucketIds.size, 10, 'held as 10 entity-buckets: 3 entities and 2 pairs, each by minute and hour')

    t.strictSame(groups.map((g) => g.marker).sort(), [
      marker(tag('model', 'acme/m1')), marker(tag('provider', 'acme')), marker(tag('gateway', 'gw1')),
      marker('metrics:index:{model}'), marker('metrics:index:{provider}'), marker('metrics:index:{gateway}'),
      marker('metrics:index:{model_gateway}'), marker('metrics:index:{model_provider}')
    ].sort(), 'one group per entity and per index, each with its marker')
    for (const g of groups) {
      const groupTag = g.marker.slice(0, -`:flushed:${INSTANCE}`.length)
      t.ok(g.keys.every((k) => k.key.startsWith(groupTag + ':')), `every key of ${groupTag} carries its tag (one hash slot)`)
    }

    const tps = 100 / ((1200.25 - 250.5) / 1000)
    for (const [type, id] of entities) {
      for (const b of [M_NOW, H_NOW]) {
        const f = fieldsOf(keys.get(ek(type, id, 'stats', b)))
        const label = `${type} ${b}`
        t.strictSame(f.get('n'), ['i', '1'], `${label}: n`)
        t.strictSame(f.get('ok'), ['i', '1'], `${label}: ok`)
        t.strictSame(f.get('ttft:n'), ['i', '1'], `${label}: ttft:n`)
        t.strictSame(f.get('ttft:sum'), ['s', '250500'], `${label}: ttft:sum in µs`)
        t.strictSame(f.get('ttft:min'), ['m', '250500'], `${label}: ttft:min`)
        t.strictSame(f.get('ttft:max'), ['M', '250500'], `${label}: ttft:max`)
        t.strictSame(f.get('total:sum'), ['s', '1200250'], `${label}: total:sum in µs`)
        t.strictSame(f.get('total:min'), ['m', '1200250'], `${label}: total:min`)
        t.strictSame(f.get('total:max'), ['M', '1200250'], `${label}: total:max`)
        t.strictSame(f.get('tps:n'), ['i', '1'], `${label}: tps:n`)
        t.strictSame(f.get('tps:sum'), ['s', String(Math.round(tps * 1000))], `${label}: tps:sum in thousandths`)
        t.notOk([...f.keys()].some((k) => k.startsWith('err:')), `${label}: no error fields`)
        if (type === 'model') t.strictSame(f.get('last:provider'), ['l', lv(e.ts, 'acme')], `${label}: last:provider`)
        else t.notOk(f.has('last:provider'), `${label}: last:provider only on the model`)
        t.strictSame(counts(keys.get(ek(type, id, 'ttft', b))), histogramOf([250.5]), `${label}: ttft histogram`)
        t.strictSame(counts(keys.get(ek(type, id, 'total', b))), histogramOf([1200.25]), `${label}: total histogram`)
        t.strictSame(counts(keys.get(ek(type, id, 'tps', b))), histogramOf([tps]), `${label}: tps histogram`)
      }
    }
    for (const [kind, other] of [['gateway', 'gw1'], ['provider', 'acme']] as const) {
      for (const b of [M_NOW, H_NOW]) {
        const f = fieldsOf(keys.get(pk('acme/m1', kind, other, 'stats', b)))
        const label = `acme/m1 via ${kind} ${other} ${b}`
        t.strictSame(f.get('n'), ['i', '1'], `${label}: n`)
        t.strictSame(f.get('ttft:sum'), ['s', '250500'], `${label}: ttft:sum in µs`)
        t.strictSame(f.get('tps:n'), ['i', '1'], `${label}: tps:n`)
        t.notOk(f.has('last:provider'), `${label}: no last:provider`)
        // Bin k of TTFT, total time and tokens/s: fields k, 10000 + k and 20000 + k.
        const shifted = (offset: number, h: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(h).map(([k, v]) => [String(offset + Number(k)), v]))
        t.strictSame(counts(keys.get(pk('acme/m1', kind, other, 'dists', b))), { ...shifted(0, histogramOf([250.5])), ...shifted(10_000, histogramOf([1200.25])), ...shifted(20_000, histogramOf([tps])) }, `${label}: the three histograms in one hash, integer fields`)
        const expiry = keys.get(pk('acme/m1', kind, other, 'stats', b))?.expireAt
        t.equal(expiry, b === M_NOW ? at(12, 31) + HOUR : expectedExpiry(ek('model', 'x', 'stats', b), RETENTION_HOURS), `${label}: minute buckets of a pair are kept an hour, hour buckets the retention`)
      }
    }
    t.strictSame(counts(keys.get(ek('model', 'acme/m1', 'gateways', H_NOW))), { gw1: 1 }, 'the gateways that served the model, with requests')
    t.strictSame(counts(keys.get(ek('model', 'acme/m1', 'providers', H_NOW))), { acme: 1 }, 'the providers likewise')
    t.strictSame(counts(keys.get(ik('model_gateway', 'requests', H_NOW))), { 'acme/m1 gw1': 1 }, 'pair index: model, space, gateway')
    t.strictSame(counts(keys.get(ik('model_provider', 'requests', H_NOW))), { 'acme/m1 acme': 1 })
    for (const b of [M_NOW, H_NOW]) {
      t.strictSame(counts(keys.get(ek('provider', 'acme', 'models', b))), { 'acme/m1': 1 }, `provider models ${b}`)
      t.strictSame(counts(keys.get(ik('model', 'requests', b))), { 'acme/m1': 1 })
      t.strictSame(counts(keys.get(ik('model', 'successes', b))), { 'acme/m1': 1 })
      t.strictSame(counts(keys.get(ik('provider', 'requests', b))), { acme: 1 })
      t.strictSame(counts(keys.get(ik('gateway', 'successes', b))), { gw1: 1 })
    }
  })

  t.test('counts requests, successes and errors by type', async (t) => {
    const types: Array<ChatErrorType | null> = ['timeout', 'timeout', 'rate_limit', 'network', 'other', null]
    const events = [
      chat(), chat(), chat(),
      ...types.map((errorType) => chat({ success: false, errorType }))
    ]
    const keys = keyMap(seal(aggOf(events)))
    for (const [type, id] of [['model', 'acme/m1'], ['provider', 'acme'], ['gateway', 'gw1']] as const) {
      for (const b of [M_NOW, H_NOW]) {
        const f = fieldsOf(keys.get(ek(type, id, 'stats', b)))
        const label = `${type} ${b}`
        t.strictSame(f.get('n'), ['i', '9'], `${label}: n`)
        t.strictSame(f.get('ok'), ['i', '3'], `${label}: ok`)
        t.strictSame(f.get('err:timeout'), ['i', '2'], `${label}: err:timeout`)
        t.strictSame(f.get('err:rate_limit'), ['i', '1'], `${label}: err:rate_limit`)
        t.strictSame(f.get('err:network'), ['i', '1'], `${label}: err:network`)
        t.strictSame(f.get('err:other'), ['i', '2'], `${label}: err:other (no type counts as other)`)
        t.notOk(f.has('ttft:n') || f.has('ttft:sum'), `${label}: no ttft fields without ttft values`)
        t.notOk(keys.has(ek(type, id, 'ttft', b)), `${label}: no ttft histogram without ttft values`)
        t.strictSame(counts(keys.get(ik(type, 'requests', b))), { [id]: 9 }, `${label}: index requests`)
        t.strictSame(counts(keys.get(ik(type, 'successes', b))), { [id]: 3 }, `${label}: index successes`)
      }
    }
  })

  t.test('only failures: no successes written', async (t) => {
    const keys = keyMap(seal(aggOf([chat({ success: false, errorType: 'network' })])))
    const ok = fieldsOf(keys.get(ek('model', 'acme/m1', 'stats', M_NOW))).get('ok')
    t.ok(ok === undefined || ok[1] === '0', 'ok is absent or 0')
    t.equal(counts(keys.get(ik('model', 'successes', M_NOW)))['acme/m1'] ?? 0, 0, 'no successes in the index')
    t.ok([...keys.values()].every((kw) => kw.ops.length > 0), 'no key is written without ops')
  })

  t.test('sums in integer µs, min, max and histograms', async (t) => {
    const ttfts = [100.0004, 250.5, 0, 3_600_000, 0.0004, 999.9995]
    const totals = [200, 1000, 0.001, 3_600_000, 1, 2000]
    const outs = [10, 20, 30, 40, undefined, 50]
    const events = ttfts.map((ttftMs, i) => chat({ ttftMs, totalMs: totals[i], outputTokens: outs[i], ts: at(12, 30, i) }))
    events.push(chat({ totalMs: 500, outputTokens: 5 })) // no ttft: no tps either
    const keys = keyMap(seal(aggOf(events)))

    const tpsValues: number[] = []
    events.forEach((e) => {
      if (e.outputTokens !== undefined && e.ttftMs !== undefined && e.totalMs !== undefined && e.totalMs - e.ttftMs >= MIN_GENERATION_MS) {
        tpsValues.push(e.outputTokens / ((e.totalMs - e.ttftMs) / 1000))
      }
    })
    const totalValues = [...totals, 500]
    const exp = (name: string, values: number[]): Array<[string, [FieldOp, string]]> => {
      const u = values.map(us)
      return [
        [`${name}:n`, ['i', String(values.length)]],
        [`${name}:sum`, ['s', String(u.reduce((a, b) => a + b, 0))]],
        [`${name}:min`, ['m', String(Math.min(...u))]],
        [`${name}:max`, ['M', String(Math.max(...u))]]
      ]
    }
    for (const [type, id] of [['model', 'acme/m1'], ['provider', 'acme'], ['gateway', 'gw1']] as const) {
      for (const b of [M_NOW, H_NOW]) {
        const f = fieldsOf(keys.get(ek(type, id, 'stats', b)))
        const label = `${type} ${b}`
        for (const [field, want] of [...exp('ttft', ttfts), ...exp('total', totalValues), ...exp('tps', tpsValues)]) {
          t.strictSame(f.get(field), want, `${label}: ${field}`)
        }
        t.strictSame(f.get('ttft:sum'), ['s', String(100000 + 250500 + 0 + 3_600_000_000 + 0 + 1_000_000)], `${label}: ttft:sum written out`)
        const th = counts(keys.get(ek(type, id, 'ttft', b)))
        t.strictSame(th, histogramOf(ttfts), `${label}: ttft histogram`)
        t.equal(th[ZERO_BIN], 2, `${label}: 0 and 0.0004 ms are in the zero bin 'z'`)
        t.ok(Object.keys(th).every((k) => k === 'z' || /^\d+$/.test(k)), `${label}: histogram fields are bin indices or 'z'`)
        t.strictSame(counts(keys.get(ek(type, id, 'total', b))), histogramOf(totalValues), `${label}: total histogram`)
        t.strictSame(counts(keys.get(ek(type, id, 'tps', b))), histogramOf(tpsValues), `${label}: tps histogram`)
      }
    }
    t.equal(tpsValues.length, 3, 'tps only when tokens, ttft and total are known and the generation took at least 1 ms')
  })

  t.test('last:provider: the provider of the latest event by time, then arrival', async (t) => {
    const tA = at(12, 30, 5)
    const tB = at(12, 29, 30)
    const a = aggOf([
      chat({ provider: 'p1', ts: tA }),
      chat({ provider: 'p2', ts: tB }), // arrives later, happened earlier
      chat({ provider: 'p0', ts: tA - 1 })
    ])
    let keys = keyMap(seal(a))
    const last = (b: string): [FieldOp, string] | undefined => fieldsOf(keys.get(ek('model', 'acme/m1', 'stats', b))).get('last:provider')
    t.strictSame(last(M_NOW), ['l', lv(tA, 'p1')], 'minute 12:30')
    t.strictSame(last('2024-05-15-12-29'), ['l', lv(tB, 'p2')], 'minute 12:29')
    t.strictSame(last(H_NOW), ['l', lv(tA, 'p1')], 'hour: the newer event time wins over the later arrival')
    for (const p of ['p0', 'p1', 'p2']) {
      for (const b of [M_NOW, H_NOW]) t.notOk(fieldsOf(keys.get(ek('provider', p, 'stats', b))).has('last:provider'), `provider ${p} ${b}: no last:provider`)
    }
    t.notOk(fieldsOf(keys.get(ek('gateway', 'gw1', 'stats', H_NOW))).has('last:provider'), 'gateway: no last:provider')

    a.addChat(chat({ provider: 'p3', ts: tA })) // same time, later arrival
    keys = keyMap(seal(a))
    t.strictSame(last(M_NOW), ['l', lv(tA, 'p3')], 'equal time: the later arrival wins (minute)')
    t.strictSame(last(H_NOW), ['l', lv(tA, 'p3')], 'equal time: the later arrival wins (hour)')
  })

  t.test('provider models family: requests per model', async (t) => {
    const events = [
      ...Array.from({ length: 3 }, () => chat({ model: 'acme/m1' })),
      ...Array.from({ length: 2 }, () => chat({ model: 'acme/m2', success: false, errorType: 'other' })),
      chat({ model: 'acme/m1', ts: at(12, 29, 59, 999) }),
      chat({ model: 'beta/x', provider: 'beta' })
    ]
    const keys = keyMap(seal(aggOf(events)))
    t.strictSame(counts(keys.get(ek('provider', 'acme', 'models', M_NOW))), { 'acme/m1': 3, 'acme/m2': 2 })
    t.strictSame(counts(keys.get(ek('provider', 'acme', 'models', '2024-05-15-12-29'))), { 'acme/m1': 1 })
    t.strictSame(counts(keys.get(ek('provider', 'acme', 'models', H_NOW))), { 'acme/m1': 4, 'acme/m2': 2 })
    t.strictSame(counts(keys.get(ek('provider', 'beta', 'models', H_NOW))), { 'beta/x': 1 })
    t.notOk([...keys.keys()].some((k) => k.includes(':models:') && !k.startsWith('metrics:provider:')), 'only providers have a models family')
  })

  t.test('gateway fetches', async (t) => {
    const t1 = at(12, 30, 1)
    const t2 = at(12, 30, 5)
    const fetches = [
      fetchEv({ modelCount: 10, responseTimeMs: 120, ts: t1 }),
      fetchEv({ modelCount: 12, responseTimeMs: 80.5, ts: t2 }),
      fetchEv({ success: false, errorType: 'timeout', responseTimeMs: 5000, ts: at(12, 30, 10) }),
      fetchEv({ success: false, errorType: 'error', modelCount: 99, ts: at(12, 30, 12) }), // failed: its count is not the latest
      fetchEv({ ts: at(12, 30, 14) }) // success without a count
    ]
    const a = aggOf([], fetches)
    t.equal(a.events, 5)
    const groups = seal(a)
    t.strictSame(groups.map((g) => g.marker), [marker(tag('gateway', 'gw1')), marker('metrics:index:{gateway}')], 'the gateway group, and the gateways\' index')
    const keys = keyMap(groups)
    t.strictSame([...keys.keys()].sort(), [
      ek('gateway', 'gw1', 'stats', M_NOW), ek('gateway', 'gw1', 'fetch_rt', M_NOW),
      ek('gateway', 'gw1', 'stats', H_NOW), ek('gateway', 'gw1', 'fetch_rt', H_NOW),
      ik('gateway', 'fetches', M_NOW), ik('gateway', 'fetches', H_NOW)
    ].sort(), 'fetches are not requests: only the `fetches` index lists the gateway (the sealer finds it there)')
    t.equal(a.entityBucketIds.size, 2, 'held as 2 entity-buckets: the gateway by minute and hour')
    for (const b of [M_NOW, H_NOW]) {
      t.strictSame(counts(keys.get(ik('gateway', 'fetches', b))), { gw1: 5 }, `${b}: the fetches index counts every fetch`)
      t.equal(keys.get(ik('gateway', 'fetches', b))?.expireAt, expectedExpiry(ik('gateway', 'fetches', b), RETENTION_HOURS), `${b}: and expires with its bucket`)
    }
    for (const b of [M_NOW, H_NOW]) {
      const f = fieldsOf(keys.get(ek('gateway', 'gw1', 'stats', b)))
      t.strictSame(f.get('fetch:n'), ['i', '5'], `${b}: fetch:n`)
      t.strictSame(f.get('fetch:err'), ['i', '2'], `${b}: fetch:err counts every failure`)
      t.strictSame(f.get('fetch:timeout'), ['i', '1'], `${b}: fetch:timeout`)
      t.strictSame(f.get('last:model_count'), ['l', lv(t2, '12')], `${b}: last:model_count from the latest successful fetch`)
      t.strictSame(f.get('fetch_rt:n'), ['i', '3'], `${b}: fetch_rt:n`)
      t.strictSame(f.get('fetch_rt:sum'), ['s', String(120_000 + 80_500 + 5_000_000)], `${b}: fetch_rt:sum`)
      t.strictSame(f.get('fetch_rt:min'), ['m', '80500'], `${b}: fetch_rt:min`)
      t.strictSame(f.get('fetch_rt:max'), ['M', '5000000'], `${b}: fetch_rt:max`)
      t.notOk(f.has('n'), `${b}: no chat fields`)
      t.strictSame(counts(keys.get(ek('gateway', 'gw1', 'fetch_rt', b))), histogramOf([120, 80.5, 5000]), `${b}: fetch_rt histogram`)
    }
  })

  t.test('last:model_count: equal time, the later arrival wins; only failures: none', async (t) => {
    const ts = at(12, 30, 5)
    let f = fieldsOf(keyMap(seal(aggOf([], [fetchEv({ modelCount: 7, ts }), fetchEv({ modelCount: 8, ts })]))).get(ek('gateway', 'gw1', 'stats', M_NOW)))
    t.strictSame(f.get('last:model_count'), ['l', lv(ts, '8')])
    f = fieldsOf(keyMap(seal(aggOf([], [fetchEv({ modelCount: 9, ts: ts + 1 }), fetchEv({ modelCount: 8, ts })]))).get(ek('gateway', 'gw1', 'stats', M_NOW)))
    t.strictSame(f.get('last:model_count'), ['l', lv(ts + 1, '9')], 'a later arrival with an older time does not win')
    f = fieldsOf(keyMap(seal(aggOf([], [fetchEv({ success: false, errorType: 'error', modelCount: 3 })]))).get(ek('gateway', 'gw1', 'stats', M_NOW)))
    t.notOk(f.has('last:model_count'), 'no successful fetch: no last:model_count')
    t.strictSame(f.get('fetch:err'), ['i', '1'])
    t.notOk(f.has('fetch:timeout'), 'an error that is not a timeout is not counted as one')
  })

  t.test('a gateway with chats and fetches: one stats key with both', async (t) => {
    const keys = keyMap(seal(aggOf([chat()], [fetchEv({ modelCount: 4 })])))
    const f = fieldsOf(keys.get(ek('gateway', 'gw1', 'stats', H_NOW)))
    t.strictSame(f.get('n'), ['i', '1'])
    t.strictSame(f.get('fetch:n'), ['i', '1'])
    t.equal(seal(aggOf([chat()], [fetchEv({ modelCount: 4 })])).filter((g) => g.marker === marker(tag('gateway', 'gw1'))).length, 1, 'one gateway group')
    t.strictSame(counts(keys.get(ik('gateway', 'requests', H_NOW))), { gw1: 1 }, 'its requests in the requests index')
    t.strictSame(counts(keys.get(ik('gateway', 'fetches', H_NOW))), { gw1: 1 }, 'its fetches in the fetches index')
    t.strictSame(counts(keys.get(ik('gateway', 'fetches', M_NOW))), { gw1: 1 })
    const chatsOnly = keyMap(seal(aggOf([chat()])))
    t.notOk([...chatsOnly.keys()].some((k) => k.includes(':fetches:')), 'no fetch: no fetches index')
  })

  t.test('every key expires at its bucket end + retention (minute buckets: 2 hours)', async (t) => {
    for (const retentionHours of [168, 24, 5]) {
      const events = [
        chat({ ts: at(12, 30, 10) }),
        chat({ ts: at(12, 0, 0) }),
        chat({ ts: at(11, 59, 59, 999), model: 'other/m', gateway: 'gw2' }),
        chat({ ts: at(10, 45) }),
        chat({ ts: at(9, 15), provider: 'p9' })
      ]
      const fetches = [fetchEv({ ts: at(11, 1), modelCount: 3 }), fetchEv({ ts: at(12, 31), responseTimeMs: 5 })]
      const groups = seal(aggOf(events, fetches), { retentionHours })
      const keys = [...keyMap(groups).values()]
      const wrong = keys.filter((kw) => kw.expireAt !== expectedExpiry(kw.key, retentionHours))
      t.strictSame(wrong.map((kw) => kw.key), [], `retention ${retentionHours} h: all ${keys.length} keys`)
      t.ok(keys.some((kw) => kw.key.endsWith(':2024-05-15-11-59')) && keys.some((kw) => kw.key.endsWith(':2024-05-15-11')), 'both resolutions are present')
      t.notOk(keys.some((kw) => kw.key.endsWith('+10m')), 'no 10-minute bucket')
      t.ok(keys.some((kw) => kw.key === ik('gateway', 'fetches', '2024-05-15-12-31')), 'the fetches index, by minute')
      t.ok(keys.every((kw) => kw.expireAt > NOW), 'nothing already expired is written')
      t.ok(keys.every((kw) => kw.ops.length > 0), 'no key is written without ops')
    }
  })

  t.test('a 10-minute key reads as the sum of its minutes, aligned on UTC multiples of 10 minutes', async (t) => {
    const events = [
      chat({ ts: at(12, 20, 0, 0), ttftMs: 100 }),
      chat({ ts: at(12, 25, 30), ttftMs: 200, gateway: 'gw2' }),
      chat({ ts: at(12, 29, 59, 999), ttftMs: 300, success: false, errorType: 'timeout' }),
      chat({ ts: at(12, 30, 0, 0), ttftMs: 400 }),
      chat({ ts: at(12, 19, 59, 999), ttftMs: 500 })
    ]
    const groups = seal(aggOf(events))
    t.notOk([...keyMap(groups).keys()].some((k) => k.endsWith('+10m')), 'no 10-minute bucket is written')
    const store = new MemoryStore({ now: () => NOW })
    t.teardown(() => store.close())
    t.strictSame(await store.applyGroups(1, groups), groups.map(() => null))
    const read = async (key: string, counters = false): Promise<Fields> => (await store.read([{ keys: [key], slots: [0], nSlots: 1, counters: [counters] }]))[0]![0]!
    const block = '2024-05-15-12-20+10m'
    const f = await read(ek('model', 'acme/m1', 'stats', block))
    t.strictSame([f.n, f.ok, f['err:timeout'], f['ttft:min'], f['ttft:max']], ['3', '2', '1', '100000', '300000'], 'the three events of 12:20–12:30, over both gateways')
    t.strictSame(await read(ek('model', 'acme/m1', 'ttft', block), true), Object.fromEntries(Object.entries(histogramOf([100, 200, 300])).map(([k, v]) => [k, String(v)])), 'its histogram adds theirs')
    t.equal((await read(ek('model', 'acme/m1', 'stats', T_NOW))).n, '1', '12:30 starts the next block')
    t.equal((await read(ek('model', 'acme/m1', 'stats', '2024-05-15-12-10+10m'))).n, '1', '12:19:59.999 is in the one before')
    t.equal((await read(ek('gateway', 'gw2', 'stats', block))).n, '1', 'the gateway has its own')
    t.strictSame(await read(ek('model', 'acme/m1', 'stats', '2024-05-15-12-00+10m')), {}, 'ten minutes without events: nothing')
  })

  t.test('minute buckets older than 2 hours are not written; hour buckets past retention neither', async (t) => {
    const events = [
      chat({ model: 'old/m', ts: at(10, 29, 59, 999) }), // minute 10:29 ends 10:30, + 2 h = NOW − 15 s
      chat({ model: 'edge/m', ts: at(10, 30, 0, 0) }) // minute 10:30 ends 10:31, + 2 h > NOW
    ]
    const keys = [...keyMap(seal(aggOf(events))).keys()]
    t.notOk(keys.some((k) => k.endsWith(':2024-05-15-10-29')), 'no key of minute 10:29')
    t.ok(keys.includes(ek('model', 'old/m', 'stats', '2024-05-15-10')), 'its hour bucket is written')
    t.ok(keys.includes(ek('model', 'edge/m', 'stats', '2024-05-15-10-30')), 'minute 10:30 is written')
    t.ok(keys.includes(ik('model', 'requests', '2024-05-15-10-30')))
    t.strictSame(counts(keyMap(seal(aggOf(events))).get(ik('model', 'requests', '2024-05-15-10'))), { 'old/m': 1, 'edge/m': 1 }, 'hour index counts both')

    const withShortRetention = [...keyMap(seal(aggOf([chat({ ts: at(10, 59) })]), { retentionHours: 1 })).keys()]
    t.notOk(withShortRetention.some((k) => k.endsWith(':2024-05-15-10')), 'hour 10 ends 11:00, + 1 h retention < NOW: not written')

    // exactly at the boundary: a bucket whose expiry is now is gone
    const minuteEnd = at(10, 30) + 2 * HOUR // expiry of minute 10:29
    const sealedAt = (now: number): string[] => [...keyMap(seal(aggOf([chat({ ts: at(10, 29, 30) })]), { now })).keys()]
    t.notOk(sealedAt(minuteEnd).some((k) => k.endsWith(':2024-05-15-10-29')), 'now = bucket end + 2 h: not written')
    t.ok(sealedAt(minuteEnd - 1).some((k) => k.endsWith(':2024-05-15-10-29')), 'one ms earlier: written')

    t.strictSame(seal(aggOf([chat({ ts: NOW - 200 * HOUR })], [fetchEv({ ts: NOW - 200 * HOUR, modelCount: 1 })])), [],
      'every bucket expired: no group at all')
  })

  t.test('work is per entity-bucket, not per event', async (t) => {
    const one = seal(aggOf([chat({ ttftMs: 300, totalMs: 900, outputTokens: 60 })]))
    const many = seal(aggOf(Array.from({ length: 1000 }, (_, i) => chat({ ttftMs: 300, totalMs: 900, outputTokens: 60, ts: at(12, 30, i % 60, i % 1000) }))))
    const shape = (groups: GroupWrite[]): Array<[string, string[]]> =>
      groups.flatMap((g) => g.keys.map((kw): [string, string[]] => [kw.key, kw.ops.map(([op, f]) => `${op} ${f}`).sort()])).sort((a, b) => (a[0] < b[0] ? -1 : 1))
    t.equal(many.length, one.length, 'same number of groups')
    t.strictSame(shape(many), shape(one), 'same keys with the same fields')
    t.strictSame(fieldsOf(keyMap(many).get(ek('model', 'acme/m1', 'stats', M_NOW))).get('n'), ['i', '1000'])
    t.strictSame(fieldsOf(keyMap(many).get(ek('model', 'acme/m1', 'stats', M_NOW))).get('ttft:sum'), ['s', String(1000 * 300_000)])

    // varying values: still the same keys; histograms grow with distinct bins only
    const rnd = mulberry32(5)
    const varied = Array.from({ length: 1000 }, () => chat({ ttftMs: 100 + rnd() * 900, totalMs: 1000 + rnd() * 9000, outputTokens: 50 }))
    const sealed = seal(aggOf(varied))
    t.equal(sealed.length, one.length, 'same number of groups')
    t.strictSame(shape(sealed).map(([k]) => k), shape(one).map(([k]) => k), 'same keys')
    const ttftBins = Object.keys(histogramOf(varied.map((e) => e.ttftMs ?? 0))).length
    t.equal(keyMap(sealed).get(ek('model', 'acme/m1', 'ttft', M_NOW))?.ops.length, ttftBins, 'one op per distinct bin')
    t.ok(ttftBins < 200, 'far fewer bins than events')
  })

  t.test('the aggregator keeps what it holds: sealing twice gives the same writes', async (t) => {
    const a = aggOf([chat({ ttftMs: 1 })], [fetchEv()])
    t.strictSame(seal(a), seal(a))
    t.equal(a.events, 2)
    // Buckets summing several combinations (a provider's models, a model's gateways, minutes in an
    // hour) next to buckets holding one: sealing leaves every combination as it was.
    const b = aggOf([
      chat({ model: 'acme/m1', ttftMs: 100, totalMs: 400, outputTokens: 9 }),
      chat({ model: 'acme/m2', ttftMs: 200, success: false, errorType: 'timeout' }),
      chat({ model: 'acme/m1', gateway: 'gw2', ttftMs: 300 }),
      chat({ model: 'acme/m1', ts: at(12, 29, 10), ttftMs: 400 })
    ])
    const first = seal(b)
    t.strictSame(seal(b), first)
    const keys = keyMap(first)
    t.strictSame(fieldsOf(keys.get(ek('provider', 'acme', 'stats', H_NOW))).get('n'), ['i', '4'], 'the provider hour sums all four')
    t.strictSame(fieldsOf(keys.get(ek('model', 'acme/m1', 'stats', M_NOW))).get('n'), ['i', '2'], 'a model minute sums its gateways')
    t.strictSame(fieldsOf(keys.get(ek('model', 'acme/m2', 'stats', M_NOW))).get('n'), ['i', '1'], 'a model minute of one combination')
    t.strictSame(counts(keys.get(ek('model', 'acme/m1', 'ttft', H_NOW))), histogramOf([100, 300, 400]))
  })

  t.test('sealInSteps: a large buffer is sealed in bounded steps, with the same writes as seal', async (t) => {
    const build = (): Aggregator => aggOf(
      Array.from({ length: 150 }, (_, i) => chat({ model: `acme/m${i}`, ttftMs: 10 + i })),
      Array.from({ length: 150 }, (_, i) => fetchEv({ gateway: `gw${i}`, responseTimeMs: 5 }))
    )
    const steps = build().sealInSteps({ now: NOW, retentionHours: RETENTION_HOURS, instanceId: INSTANCE })
    let pauses = 0
    let step = steps.next()
    for (; step.done !== true; step = steps.next()) pauses++
    // 300 combinations, then ~ 2 × 300 entity-buckets of models and gateways, plus 2 of the provider
    t.ok(pauses >= Math.floor(900 / SEAL_STEP), `${pauses} pauses`)
    t.strictSame(step.value, seal(build()))
    const keys = keyMap(step.value)
    t.strictSame(fieldsOf(keys.get(ek('gateway', 'gw149', 'stats', H_NOW))).get('fetch:n'), ['i', '1'], 'the last fetch combination is there')
    t.strictSame(fieldsOf(keys.get(ek('model', 'acme/m149', 'stats', M_NOW))).get('n'), ['i', '1'], 'the last chat combination is there')
  })
})

t.test('Aggregator.seal → MemoryStore.applyGroups → read: the totals come back', async (t) => {
  const store = new MemoryStore({ now: () => NOW })
  t.teardown(() => store.close())

  const rnd = mulberry32(2024)
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[Math.floor(rnd() * xs.length)]
    if (x === undefined) throw new Error('empty')
    return x
  }
  const models = [['acme/a', 'acme'], ['acme/b', 'acme'], ['beta/c', 'beta']] as const
  const errorTypes = ['timeout', 'rate_limit', 'network', 'other'] as const
  const events: ChatEvent[] = []
  for (let i = 0; i < 600; i++) {
    const [model, provider] = pick(models)
    const success = rnd() < 0.8
    const ttftMs = rnd() < 0.9 ? Math.round(rnd() * 2_000_000) / 1000 : undefined
    events.push(chat({
      model,
      provider,
      gateway: pick(['gw1', 'gw2']),
      success,
      errorType: success ? null : pick(errorTypes),
      ttftMs,
      totalMs: ttftMs === undefined ? undefined : ttftMs + rnd() * 5000,
      outputTokens: Math.floor(rnd() * 500),
      ts: NOW - Math.floor(rnd() * 100 * MIN) // the last 100 minutes: hours 10, 11 and 12
    }))
  }
  // two flushes from one instance, in order
  const groups1 = seal(aggOf(events.slice(0, 300)))
  const groups2 = seal(aggOf(events.slice(300)))
  t.strictSame(await store.applyGroups(1, groups1), groups1.map(() => null))
  t.strictSame(await store.applyGroups(2, groups2), groups2.map(() => null))

  const hours = ['2024-05-15-10', '2024-05-15-11', '2024-05-15-12']
  const minutes: string[] = []
  for (let m = NOW - 100 * MIN; m <= NOW; m += MIN) minutes.push(new Date(m).toISOString().slice(0, 16).replace(/[T:]/g, '-'))
  t.equal(minutes.at(-1), M_NOW)

  /** All keys merged into one result; `counters` for hashes of plain counters (ids, bins), as the read side asks. */
  const readMerged = async (keys: string[], counters = false): Promise<Fields> => {
    const [res] = await store.read([{ keys, slots: keys.map(() => 0), nSlots: 1, counters: keys.map(() => counters) }])
    return res?.[0] ?? {}
  }

  const entities: Array<[EntityType, string, (e: ChatEvent) => boolean]> = [
    ...models.map(([m]): [EntityType, string, (e: ChatEvent) => boolean] => ['model', m, (e) => e.model === m]),
    ['provider', 'acme', (e) => e.provider === 'acme'],
    ['provider', 'beta', (e) => e.provider === 'beta'],
    ['gateway', 'gw1', (e) => e.gateway === 'gw1'],
    ['gateway', 'gw2', (e) => e.gateway === 'gw2']
  ]
  for (const [type, id, match] of entities) {
    const mine = events.filter(match)
    const ttfts = mine.flatMap((e) => (e.ttftMs === undefined ? [] : [e.ttftMs]))
    const byHour = await readMerged(hours.map((h) => ek(type, id, 'stats', h)))
    const byMinute = await readMerged(minutes.map((m) => ek(type, id, 'stats', m)))
    const label = `${type} ${id}`
    t.equal(byHour.n, String(mine.length), `${label}: requests`)
    t.equal(byHour.ok, String(mine.filter((e) => e.success).length), `${label}: successes`)
    for (const et of errorTypes) {
      const n = mine.filter((e) => !e.success && e.errorType === et).length
      t.equal(byHour[`err:${et}`] ?? '0', String(n), `${label}: err:${et}`)
    }
    t.equal(byHour['ttft:n'], String(ttfts.length), `${label}: ttft:n`)
    t.equal(byHour['ttft:sum'], String(ttfts.reduce((s, v) => s + us(v), 0)), `${label}: ttft:sum`)
    t.equal(byHour['ttft:min'], String(Math.min(...ttfts.map(us))), `${label}: ttft:min`)
    t.equal(byHour['ttft:max'], String(Math.max(...ttfts.map(us))), `${label}: ttft:max`)
    const { 'last:provider': lastH, ...restH } = byHour
    const { 'last:provider': lastM, ...restM } = byMinute
    t.strictSame(restM, restH, `${label}: the minute buckets add up to the hour buckets`)
    t.equal(lastM, lastH)
    if (type === 'model') {
      const latest = mine.reduce((a, e) => (e.ts >= a.ts ? e : a))
      t.equal(lastH, lv(latest.ts, latest.provider), `${label}: last:provider`)
    }

    // the merged histogram answers percentiles within 2 % of the exact nearest rank
    const hist = await readMerged(hours.map((h) => ek(type, id, 'ttft', h)), true)
    const bins = new Map<number | typeof ZERO_BIN, number>()
    for (const [k, v] of Object.entries(hist)) bins.set(k === 'z' ? ZERO_BIN : Number(k), Number(v))
    t.equal([...bins.values()].reduce((a, b) => a + b, 0), ttfts.length, `${label}: histogram holds every sample`)
    const stats = statsOf({ n: Number(byHour['ttft:n']), sum: Number(byHour['ttft:sum']), min: Number(byHour['ttft:min']), max: Number(byHour['ttft:max']) }, bins)
    const sorted = [...ttfts].sort((a, b) => a - b)
    for (const p of [50, 90, 99] as const) {
      const want = sorted[Math.ceil((p / 100) * sorted.length) - 1] ?? NaN
      const got = stats[`p${p}`]
      t.ok(got !== null && Math.abs(got - want) <= 0.02 * want + 0.001, `${label}: p${p} ${got} ≈ ${want}`)
    }
  }

  // indexes and the provider models family
  for (const type of ['model', 'provider', 'gateway'] as const) {
    const requests = await readMerged(hours.map((h) => ik(type, 'requests', h)), true)
    const successes = await readMerged(hours.map((h) => ik(type, 'successes', h)), true)
    const idOf = (e: ChatEvent): string => (type === 'model' ? e.model : type === 'provider' ? e.provider : e.gateway)
    const wantReq: Fields = {}
    const wantOk: Fields = {}
    for (const e of events) {
      wantReq[idOf(e)] = String(Number(wantReq[idOf(e)] ?? 0) + 1)
      if (e.success) wantOk[idOf(e)] = String(Number(wantOk[idOf(e)] ?? 0) + 1)
    }
    t.strictSame(requests, wantReq, `${type} index: requests per id`)
    t.strictSame(successes, wantOk, `${type} index: successes per id`)
  }
  const acmeModels = await readMerged(hours.map((h) => ek('provider', 'acme', 'models', h)), true)
  t.strictSame(acmeModels, {
    'acme/a': String(events.filter((e) => e.model === 'acme/a').length),
    'acme/b': String(events.filter((e) => e.model === 'acme/b').length)
  }, 'provider acme: requests per model')

  // the store applies a flush once: the same sequence again changes nothing
  await store.applyGroups(2, groups2)
  t.equal((await readMerged(hours.map((h) => ek('model', 'acme/a', 'stats', h)))).n, String(events.filter((e) => e.model === 'acme/a').length), 'a repeated flush is not counted twice')
})

t.test('Aggregator.seal → MemoryStore.read: ids that look like merge rules, in index and models hashes', async (t) => {
  // Model ids may end in ':max' or ':min' or start with 'last:' (they only exclude whitespace and control
  // characters). In the index and models hashes the id is the field name: read as counters (the
  // MergeRead `counters` hint, as the read side does), they add up like any other id.
  const store = new MemoryStore({ now: () => NOW })
  t.teardown(() => store.close())
  const ids = ['acme/m:max', 'acme/m:min', 'last:m']
  const events = ids.flatMap((model) => {
    const provider = model.startsWith('last:') ? 'last' : 'acme' // extractProvider: the part before the first ':'
    return [
      ...Array.from({ length: 3 }, () => chat({ model, provider, ts: at(12, 29, 10) })),
      ...Array.from({ length: 5 }, () => chat({ model, provider, ts: at(12, 30, 10) }))
    ]
  })
  const groups = seal(aggOf(events))
  t.equal(groups.length, 3 + 2 + 1 + 5, 'three models, two providers, one gateway, five indexes')
  t.strictSame(await store.applyGroups(1, groups), groups.map(() => null))
  const read = async (keys: string[]): Promise<Fields> => {
    const [res] = await store.read([{ keys, slots: keys.map(() => 0), nSlots: 1, counters: keys.map(() => true) }])
    return res?.[0] ?? {}
  }
  const want = Object.fromEntries(ids.map((id) => [id, '8']))
  t.strictSame(await read([ik('model', 'requests', '2024-05-15-12-29'), ik('model', 'requests', M_NOW)]), want, 'index requests add up over two minutes')
  t.strictSame(await read([ek('provider', 'acme', 'models', '2024-05-15-12-29'), ek('provider', 'acme', 'models', M_NOW)]),
    { 'acme/m:max': '8', 'acme/m:min': '8' }, 'provider models counts add up over two minutes')
  t.strictSame(await read([ek('provider', 'last', 'models', '2024-05-15-12-29'), ek('provider', 'last', 'models', M_NOW)]),
    { 'last:m': '8' })
})

t.test('Aggregator.seal: model lists', async (t) => {
  const listA = ['a/1', 'b/2']
  const listB = ['a/1', 'c/3']
  const fetches = [
    fetchEv({ models: listA, modelCount: 2, ts: at(12, 10) }),
    fetchEv({ models: listA, modelCount: 2, ts: at(12, 20) }),
    fetchEv({ models: listB, modelCount: 2, ts: at(11, 50) }),
    fetchEv({ models: [], modelCount: 0, ts: at(12, 25) }),
    fetchEv({ models: listA, ts: at(12, 30, 5) }),
    fetchEv({ models: listB, ts: NOW - (RETENTION_HOURS + 2) * HOUR })
  ]
  const groups = seal(aggOf([], fetches))
  const keys = keyMap(groups)
  const digest = (l: string[]): string => createHash('sha256').update(l.join('\n')).digest('hex').slice(0, 16)
  const listKey = (l: string[]): string => ek('gateway', 'gw1', 'catalog', digest(l))
  t.strictSame([...fieldsOf(keys.get(listKey(listA)))], [['a/1', ['M', '1']], ['b/2', ['M', '1']]], 'each distinct list once, its ids as fields')
  t.ok(keys.has(listKey(listB)))
  t.notOk(keys.has(listKey([])), 'an empty list has no key')
  t.equal(keys.get(listKey(listA))?.expireAt, Date.UTC(2024, 4, 15, 13) + RETENTION_HOURS * HOUR, 'a list is kept for the retention from the hour it was last written')
  const fetchesKey = (hour: string): string => ek('gateway', 'gw1', 'catalog_fetches', hour)
  // A fetch's field is its time, then this instance and its arrival number (checked in test/ingest/catalog-distinct.test.ts).
  const byTime = (key: string): Array<[string, [FieldOp, string]]> => [...fieldsOf(keys.get(key))].map(([f, op]) => {
    t.match(f, new RegExp(`^last:\\d{15}:${INSTANCE}:\\d+$`))
    return [f.slice(0, 20), op]
  })
  t.strictSame(byTime(fetchesKey(H_NOW)).sort(), [
    [`last:${lv(at(12, 10), '')}`, ['l', lv(at(12, 10), digest(listA))]],
    [`last:${lv(at(12, 20), '')}`, ['l', lv(at(12, 20), digest(listA))]],
    [`last:${lv(at(12, 25), '')}`, ['l', lv(at(12, 25), digest([]))]],
    [`last:${lv(at(12, 30, 5), '')}`, ['l', lv(at(12, 30, 5), digest(listA))]]
  ].sort(), 'each fetch: its time and its list')
  t.strictSame(byTime(fetchesKey('2024-05-15-11')), [[`last:${lv(at(11, 50), '')}`, ['l', lv(at(11, 50), digest(listB))]]])
  t.equal(keys.get(fetchesKey('2024-05-15-11'))?.expireAt, expectedExpiry(fetchesKey('2024-05-15-11'), RETENTION_HOURS))
  t.equal([...keys.keys()].filter((k) => k.includes(':catalog_fetches:')).length, 2, 'a fetch whose hour has expired keeps nothing')
})

t.test('Aggregator.seal: a pair minute bucket older than an hour is not written', async (t) => {
  const keys = keyMap(seal(aggOf([chat({ ts: at(11, 15) })])))
  t.ok(keys.has(ek('model', 'acme/m1', 'stats', '2024-05-15-11-15')), 'the model keeps its minute bucket for 2 hours')
  t.notOk(keys.has(pk('acme/m1', 'gateway', 'gw1', 'stats', '2024-05-15-11-15')), 'its pair does not')
  t.ok(keys.has(pk('acme/m1', 'gateway', 'gw1', 'stats', '2024-05-15-11')), 'the pair\'s hour bucket is written')
})
