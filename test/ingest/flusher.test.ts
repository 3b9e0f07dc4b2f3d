import t from 'tap'
import { APPLY_CHUNK_OPS, Flusher } from '../../src/ingest/flusher.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { StoreRefusal } from '../../src/store/types.js'

const log = { info: () => {}, warn: () => {}, error: () => {} } as never

t.test('Flusher.start is idempotent and stop ends the timer', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 100, retentionHours: 168, log })
  f.start()
  f.start()
  f.addChat({ model: 'a/b', provider: 'a', gateway: 'g', success: true, errorType: null, ttftMs: 1, totalMs: 2, inputTokens: undefined, outputTokens: undefined, ts: Date.now() })
  for (let i = 0; i < 100 && f.pendingEvents > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(f.pendingEvents, 0, 'the timer flushed')
  t.equal(f.flushedEvents, 1, 'once')
  f.stop()
  f.stop()
})

t.test('Flusher treats a store that rejects as a failed flush and keeps everything', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const apply = store.applyGroups.bind(store)
  let fail = true
  store.applyGroups = async (seq, groups) => { if (fail) throw new Error('connection lost'); return await apply(seq, groups) }
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 100, retentionHours: 168, log })
  f.addChat({ model: 'a/b', provider: 'a', gateway: 'g', success: true, errorType: null, ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts: Date.now() })
  t.equal(await f.flush(), false, 'the flush failed')
  t.equal(f.pendingEvents, 1, 'the event is still held')
  fail = false
  t.equal(await f.drain(5000), 0, 'and lands when the store answers')
})

t.test('Flusher.hasRoomFor counts fetch events near the limit', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 4, retentionHours: 168, log })
  const fetchOf = (gateway: string) => ({ gateway, success: true, errorType: null, modelCount: 1, responseTimeMs: 1, ts: Date.now() })
  t.ok(f.hasRoomFor([], [fetchOf('g1')]))
  f.addFetch(fetchOf('g1'))
  t.equal(f.bufferedKeys, 2, 'a gateway in its minute and hour buckets')
  t.ok(f.hasRoomFor([], [fetchOf('g1'), fetchOf('g1'), fetchOf('g1')]), 'the same gateway-minute adds nothing (exact count near the limit)')
  f.addFetch(fetchOf('g2'))
  t.equal(f.bufferedKeys, 4)
  t.notOk(f.hasRoomFor([], [fetchOf('g3')]), 'a third gateway would need 2 more entity-buckets than the 4 allowed')
})

t.test('Flusher.hasRoomFor: a chat event may hold 10 entity-buckets, a model list one more', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 12, retentionHours: 168, log })
  const chat = (model: string) => ({ model, provider: 'p', gateway: 'g', success: true, errorType: null, ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts: Date.now() })
  const withList = (gateway: string) => ({ gateway, success: true, errorType: null, modelCount: 1, responseTimeMs: 1, ts: Date.now(), models: ['a/1'] })
  t.ok(f.hasRoomFor([chat('a/1')]), 'model, provider and gateway by minute and hour, both pairs by minute and hour: 10')
  f.addChat(chat('a/1'))
  t.equal(f.bufferedKeys, 10)
  t.ok(f.hasRoomFor([], [withList('g')]), 'a known gateway with a model list: 1 more')
  f.addFetch(withList('g'))
  t.equal(f.bufferedKeys, 11)
  t.ok(f.hasRoomFor([], [withList('g')]), 'one more list: 12')
  t.notOk(f.hasRoomFor([], [withList('g'), withList('g')]), 'two more: 13, beyond the 12 allowed')
  t.notOk(f.hasRoomFor([], [withList('g2')]), 'a new gateway with a list: 3 more, beyond')
})

/** `n` chat events, one per model, so that each is a combination and an entity of its own. */
function manyModels (n: number, ts: number) {
  return Array.from({ length: n }, (_, i) => ({ model: `acme/m${i}`, provider: 'acme', gateway: 'g', success: true, errorType: null, ttftMs: 100 + i, totalMs: 900 + i, inputTokens: 10, outputTokens: 20, ts }))
}

/** The model index of the hour of `ts`: model → requests, as the store holds it. */
async function modelIndex (store: MemoryStore, ts: number): Promise<Record<string, string>> {
  const d = new Date(ts)
  const hour = `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}-${String(d.getUTCHours()).padStart(2, '0')}`
  const [[fields]] = await store.read([{ keys: [`metrics:index:{model}:requests:${hour}`], slots: [0], nSlots: 1, counters: [true] }]) as [[Record<string, string>]]
  return fields
}

t.test('Flusher: a large batch is sealed and sent in steps, requests served in between', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const calls: Array<{ seq: number, markers: string[], ops: number }> = []
  const apply = store.applyGroups.bind(store)
  store.applyGroups = async (seq, groups) => {
    calls.push({ seq, markers: groups.map((g) => g.marker), ops: groups.reduce((s, g) => s + g.keys.reduce((x, k) => x + k.ops.length, 0), 0) })
    return await apply(seq, groups)
  }
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 1_000_000, retentionHours: 168, log })
  const ts = Date.now()
  const events = manyModels(500, ts)
  for (const e of events) f.addChat(e)
  let turns = 0
  let pendingSeen = -1
  let stop = false
  const tick = (): void => {
    turns++
    // An event arriving while the batch is being sealed or sent: it waits for the next batch.
    if (turns === 2) {
      f.addChat({ ...events[0]!, model: 'acme/late' })
      pendingSeen = f.pendingEvents
    }
    if (!stop) setImmediate(tick)
  }
  setImmediate(tick)
  t.equal(await f.flush(), false, 'the event that came during the flush is still pending')
  stop = true
  t.ok(turns > 2, `the event loop turned ${turns} times during one flush`)
  t.equal(pendingSeen, 501, 'while sealing, the batch and the new event are both pending')
  t.ok(calls.length > 1, `the batch went to the store in ${calls.length} calls`)
  t.ok(calls.every((c) => c.seq === 1), 'all with the batch sequence')
  t.ok(calls.slice(0, -1).every((c) => c.ops >= APPLY_CHUNK_OPS), 'each call but the last carries a full chunk')
  const markers = calls.flatMap((c) => c.markers)
  t.equal(new Set(markers).size, markers.length, 'each group sent once')
  t.equal(f.flushedEvents, 500)
  t.equal(await f.drain(1000), 0, 'the late event goes with the next batch')
  t.equal(calls.at(-1)!.seq, 2)
  const index = await modelIndex(store, ts)
  t.equal(Object.keys(index).length, 501)
  t.ok(Object.values(index).every((n) => n === '1'), 'every model counted once')
})

t.test('Flusher.flush called while an attempt runs also writes the events accepted since it began', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 1000, retentionHours: 168, log })
  const ts = Date.now()
  const event = { model: 'a/b', provider: 'a', gateway: 'g', success: true, errorType: null, ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts }
  f.addChat(event)
  const first = f.flush()
  f.addChat({ ...event, model: 'a/late' })
  const second = f.flush()
  t.equal(await first, false, 'the first attempt took only the event held when it began')
  t.equal(await second, true, 'the second call waited for it and wrote the late event too')
  t.equal(f.flushedEvents, 2)
  t.same(Object.keys(await modelIndex(store, ts)).sort(), ['a/b', 'a/late'])
  let writes = 0
  const apply = store.applyGroups.bind(store)
  store.applyGroups = async (seq, groups) => { writes++; return await apply(seq, groups) }
  const third = f.flush()
  const fourth = f.flush()
  t.equal(await third, true, 'nothing new: a flush answers true')
  t.equal(await fourth, true, 'and so does one called while it runs')
  t.equal(writes, 0, 'with nothing pending, neither writes to the store')
})

t.test('Flusher: a failed chunk is retried alone, with the same sequence, and every event counts once', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const calls: Array<{ seq: number, groups: number }> = []
  const apply = store.applyGroups.bind(store)
  let call = 0
  store.applyGroups = async (seq, groups) => {
    calls.push({ seq, groups: groups.length })
    // The second chunk of the first attempt: applied by the store, but the reply is lost.
    if (++call === 2) {
      await apply(seq, groups)
      throw new Error('reply lost')
    }
    return await apply(seq, groups)
  }
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 1_000_000, retentionHours: 168, log })
  const ts = Date.now()
  for (const e of manyModels(500, ts)) f.addChat(e)
  t.equal(await f.flush(), false, 'one chunk failed: the batch has not landed')
  t.equal(f.pendingEvents, 500, 'all of it is still pending')
  const first = calls.length
  t.ok(first > 2, 'several chunks')
  t.equal(await f.drain(5000), 0)
  t.strictSame(calls.slice(first), [{ seq: 1, groups: calls[1]!.groups }], 'only the failed chunk is sent again, with the same sequence')
  const index = await modelIndex(store, ts)
  t.equal(Object.keys(index).length, 500)
  t.ok(Object.values(index).every((n) => n === '1'), 'every model counted once, the repeated groups skipped')
})

t.test('groups the store refuses are set aside: at most 100 kept, for a day; degraded for an hour', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  let clock = Date.parse('2026-12-04T12:00:00Z')
  const refused = new Set<string>()
  const apply = store.applyGroups.bind(store)
  // The store refuses the groups of models named `bad/…` for their content, like an overflowing sum.
  store.applyGroups = async (seq, groups) => {
    const results = await apply(seq, groups.filter((g) => !refused.has(g.marker)))
    let i = 0
    return groups.map((g) => refused.has(g.marker) ? new StoreRefusal(`${g.marker} would pass the largest storable sum`) : results[i++]!)
  }
  const errors: string[] = []
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 100_000, retentionHours: 168, log: { info: () => {}, warn: () => {}, error: (_o: unknown, m: string) => { errors.push(m) } } as never, now: () => clock })
  const chat = (model: string) => ({ model, provider: model.split('/')[0]!, gateway: 'g', success: true, errorType: null, ttftMs: 1, totalMs: 2, inputTokens: undefined, outputTokens: undefined, ts: clock })
  const send = async (models: string[]): Promise<void> => {
    for (const m of models) {
      if (m.startsWith('bad/')) refused.add(`metrics:model:{${m}}:flushed:${f.instanceId}`)
      f.addChat(chat(m))
    }
    t.equal(await f.flush(), true, 'every flush completes')
  }
  await send(['good/a', ...Array.from({ length: 60 }, (_, i) => `bad/${i}`)])
  t.equal(f.setAsideGroups, 60)
  t.equal(f.degraded, true)
  await send(Array.from({ length: 50 }, (_, i) => `bad/x${i}`))
  t.equal(f.setAsideGroups, 110, 'each counted')
  t.equal(f.setAside().length, 100, 'at most 100 kept')
  t.equal(f.setAside()[0]!.marker, `metrics:model:{bad/10}:flushed:${f.instanceId}`, 'the oldest go first')
  t.match(errors[0], /set aside \(METRICS_REFUSED .* would pass the largest storable sum\)/)
  const [[good]] = await store.read([{ keys: [`metrics:provider:{good}:stats:${bucketName('hour', clock)}`], slots: [0], nSlots: 1 }]) as [[Record<string, string>]]
  t.equal(good.n, '1', 'the other groups landed')
  clock += 3_600_001
  t.equal(f.degraded, false, 'degraded for an hour after the last one')
  t.equal(f.setAside().length, 100, 'still kept for inspection')
  clock += 24 * 3_600_000
  t.equal(f.setAside().length, 0, 'kept for a day')
})

t.test('a claimed keyed request waits for room in the buffer, then lands once', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  // Room for one model's 10 entity-buckets: the second keyed request (another model) must wait.
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 15, retentionHours: 168, log })
  const chat = (model: string) => ({ model, provider: model, gateway: model, success: true, errorType: null, ttftMs: 1, totalMs: 2, inputTokens: undefined, outputTokens: undefined, ts: Date.now() })
  f.addChat(chat('room/a'))
  t.ok(f.hasRoomFor([chat('room/b')], [], true), 'keyed events are bounded by count only')
  f.addKeyed('k-room', [chat('room/b')], [])
  t.notOk(f.hasRoomFor([chat('room/b')]), 'the buffer has no room for another model')
  t.equal(await f.drain(5000), 0, 'everything lands: the claimed request waited for the first batch')
  const [[a, b]] = await store.read([{ keys: ['metrics:model:{room/a}:stats:' + bucketName('hour', Date.now()), 'metrics:model:{room/b}:stats:' + bucketName('hour', Date.now())], slots: [0, 1], nSlots: 2 }]) as [[Record<string, string>, Record<string, string>]]
  t.equal(a.n, '1')
  t.equal(b.n, '1')
  t.equal(f.duplicateRequests, 0)
})
