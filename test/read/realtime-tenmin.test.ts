/**
 * Windows by minute read each complete 10-minute block from its 10-minute bucket and only the edges
 * by minute. These tests answer the same realtime queries twice over the same stored figures: once
 * as the service reads them, once through a store view that replaces every 10-minute key by its ten
 * minute keys (the answer from minute buckets only), and check the two are identical and match
 * the events themselves.
 */
import t from 'tap'
import { Aggregator } from '../../src/ingest/aggregator.js'
import type { ChatEvent, EntityType, FetchEvent } from '../../src/metrics/events.js'
import { readRealtime } from '../../src/read/realtime.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { MergeRead, MetricsStore } from '../../src/store/types.js'
import { mulberry32 } from '../helpers/random.js'

const MIN = 60_000
// 12:47:30: the 1h window is 11:48–12:47 and its previous period 10:48–11:47, both with partial
// 10-minute blocks at either end (11:48–11:49 and 12:40–12:47; 10:48–10:49 and 11:40–11:47).
const NOW = Date.UTC(2024, 4, 15, 12, 47, 30)

/** Events in every minute from 2 h 17 min before `now` (10:30 for NOW) to `now`, for 2 models, 2 providers, 2 gateways; fetches of both gateways. */
function events (now = NOW): { chats: ChatEvent[], fetches: FetchEvent[] } {
  const rnd = mulberry32(1010)
  const chats: ChatEvent[] = []
  const fetches: FetchEvent[] = []
  for (let ts = now - 137 * MIN - 30_000; ts <= now; ts += 7_000 + Math.floor(rnd() * 9_000)) {
    const success = rnd() > 0.15
    const ttftMs = 50 + rnd() * 2_000
    chats.push({
      model: rnd() < 0.6 ? 'acme/m1' : 'beta/m2',
      provider: rnd() < 0.7 ? 'acme' : 'beta',
      gateway: rnd() < 0.5 ? 'gw1' : 'gw2',
      success,
      errorType: success ? null : (['timeout', 'rate_limit', 'network', 'other'] as const)[Math.floor(rnd() * 4)]!,
      ttftMs: rnd() < 0.9 ? ttftMs : undefined,
      totalMs: ttftMs + rnd() * 8_000,
      inputTokens: 100,
      outputTokens: rnd() < 0.8 ? Math.floor(rnd() * 500) : undefined,
      ts
    })
    if (rnd() < 0.3) fetches.push({ gateway: rnd() < 0.5 ? 'gw1' : 'gw2', success: rnd() > 0.1, errorType: null, modelCount: Math.floor(rnd() * 50), responseTimeMs: rnd() * 900, ts })
  }
  return { chats, fetches }
}

/** `store` as if it had no 10-minute buckets: a 10-minute key is read as its ten minute keys. */
function minutesOnly (store: MetricsStore): MetricsStore {
  const expand = (r: MergeRead): MergeRead => {
    const out: MergeRead = { keys: [], slots: [], nSlots: r.nSlots, counters: [] }
    r.keys.forEach((key, i) => {
      const m = /^(.*-)(\d\d)\+10m$/.exec(key)
      const keys = m === null ? [key] : Array.from({ length: 10 }, (_, k) => `${m[1]!}${String(Number(m[2]) + k).padStart(2, '0')}`)
      for (const k of keys) {
        out.keys.push(k)
        out.slots.push(r.slots[i]!)
        out.counters!.push(r.counters![i]!)
      }
    })
    return out
  }
  return {
    kind: store.kind,
    applyGroups: async (seq, groups) => await store.applyGroups(seq, groups),
    shareCounts: async (items) => await store.shareCounts(items),
    claim: async (key, member, expireAt) => await store.claim(key, member, expireAt),
    claimOnce: async (items) => await store.claimOnce(items),
    fieldNames: async (keys) => await store.fieldNames(keys),
    liveFieldNames: async (keys) => await store.liveFieldNames(keys),
    seal: async (units) => await store.seal(units),
    read: async (reads) => await store.read(reads.map(expand)),
    ping: async () => { await store.ping() },
    close: async () => { await store.close() }
  }
}

t.test('realtime by minute: 10-minute blocks inside, minutes at the edges, the same answer as minutes alone', async (t) => {
  const store = new MemoryStore({ now: () => NOW })
  t.teardown(() => store.close())
  const { chats, fetches } = events()
  const agg = new Aggregator()
  for (const e of chats) agg.addChat(e)
  for (const e of fetches) agg.addFetch(e)
  const results = await store.applyGroups(1, agg.seal({ now: NOW, retentionHours: 168, instanceId: 'i' }))
  t.ok(results.every((r) => r === null), 'applied')

  // Which keys each read asks for.
  const asked: string[][] = []
  const read = store.read.bind(store)
  store.read = async (reads) => {
    asked.push(reads.flatMap((r) => r.keys))
    return await read(reads)
  }
  const reference = minutesOnly(store)

  const entities: Array<[EntityType, string]> = [['model', 'acme/m1'], ['model', 'beta/m2'], ['provider', 'acme'], ['provider', 'beta'], ['gateway', 'gw1'], ['gateway', 'gw2']]
  for (const [type, id] of entities) {
    for (const w of ['5m', '15m', '1h'] as const) {
      asked.length = 0
      const answer = await readRealtime(store, type, id, w, NOW)
      const keys = asked.flat()
      asked.length = 0
      const expected = await readRealtime(reference, type, id, w, NOW)
      const minuteKeys = asked.flat()
      t.strictSame(answer, expected, `${type} ${id} ${w}: the same answer as from minute buckets alone`)
      if (w === '5m') continue
      t.ok(keys.some((k) => k.endsWith('+10m')), `${type} ${id} ${w}: reads 10-minute buckets`)
      t.ok(keys.length < minuteKeys.length, `${type} ${id} ${w}: and fewer keys (${keys.length} < ${minuteKeys.length})`)
    }
  }

  // The figures themselves, from the events: the 1h window and its previous period.
  const answer = await readRealtime(store, 'model', 'acme/m1', '1h', NOW)
  t.equal(answer.window.from, '2024-05-15T11:48:00.000Z')
  t.equal(answer.baselines.previous.from, '2024-05-15T10:48:00.000Z')
  const mine = chats.filter((e) => e.model === 'acme/m1')
  const inRange = (from: number, to: number): ChatEvent[] => mine.filter((e) => e.ts >= from && e.ts < to)
  const window = inRange(Date.UTC(2024, 4, 15, 11, 48), NOW + 1)
  const previous = inRange(Date.UTC(2024, 4, 15, 10, 48), Date.UTC(2024, 4, 15, 11, 48))
  t.equal(answer.requests, window.length, 'requests of the window')
  t.equal(answer.successes, window.filter((e) => e.success).length, 'successes of the window')
  t.equal(answer.errors.timeout, window.filter((e) => e.errorType === 'timeout').length, 'timeouts of the window')
  const ttfts = window.flatMap((e) => e.ttftMs === undefined ? [] : [Math.round(e.ttftMs * 1000)])
  t.equal(answer.ttft_ms.count, ttfts.length)
  t.equal(answer.ttft_ms.avg, Math.round(ttfts.reduce((a, b) => a + b, 0) / ttfts.length) / 1000, 'exact TTFT average')
  t.equal(answer.ttft_ms.min, Math.min(...ttfts) / 1000, 'TTFT min')
  t.equal(answer.ttft_ms.max, Math.max(...ttfts) / 1000, 'TTFT max')
  // The error rate (rate limits apart) of the previous period, read through its own blocks.
  const errorRate = (es: ChatEvent[]): number => {
    const n = es.filter((e) => e.errorType !== 'rate_limit').length
    return Math.round((100 * (n - es.filter((e) => e.success).length)) / n * 100) / 100
  }
  t.ok(previous.length > 0 && previous.some((e) => !e.success), 'the previous period has traffic and failures')
  t.equal(answer.baselines.error_rate_pct.previous, errorRate(previous), 'previous period error rate')
  t.equal(answer.baselines.error_rate_pct.current, errorRate(window), 'current error rate')
})

t.test('the same answer as minutes alone at any time: across midnight, on a block\'s last minute, on its first', async (t) => {
  const nows = [
    Date.UTC(2024, 4, 16, 0, 7, 30), // the 1h window starts yesterday, inside the 23:00 hour
    Date.UTC(2024, 4, 15, 23, 59, 59), // the current minute is a block's last
    Date.UTC(2024, 4, 16, 0, 0, 0), // the current minute is a block's first, and the day's
    Date.UTC(2024, 4, 15, 12, 9, 1), // a window aligned on blocks but for the current minute
    Date.UTC(2024, 4, 15, 12, 43, 17)
  ]
  const entities: Array<[EntityType, string]> = [['model', 'acme/m1'], ['provider', 'beta'], ['gateway', 'gw2']]
  for (const now of nows) {
    const store = new MemoryStore({ now: () => now })
    const { chats, fetches } = events(now)
    const agg = new Aggregator()
    for (const e of chats) agg.addChat(e)
    for (const e of fetches) agg.addFetch(e)
    await store.applyGroups(1, agg.seal({ now, retentionHours: 168, instanceId: 'i' }))
    const reference = minutesOnly(store)
    for (const [type, id] of entities) {
      for (const w of ['5m', '15m', '1h'] as const) {
        const at = new Date(now).toISOString()
        t.strictSame(await readRealtime(store, type, id, w, now), await readRealtime(reference, type, id, w, now), `${at} ${type} ${id} ${w}`)
      }
    }
    const hour = await readRealtime(store, 'model', 'acme/m1', '1h', now)
    const from = Date.parse(hour.window.from)
    t.equal(hour.requests, chats.filter((e) => e.model === 'acme/m1' && e.ts >= from && e.ts <= now).length, `${new Date(now).toISOString()}: the 1h window's requests, from the events`)
    await store.close()
  }
})
