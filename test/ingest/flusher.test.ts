import t from 'tap'
import { Flusher } from '../../src/ingest/flusher.js'
import { MemoryStore } from '../../src/store/memory-store.js'

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
  t.ok(f.hasRoomFor([], [fetchOf('g1'), fetchOf('g1'), fetchOf('g1')]), 'the same gateway-minute adds nothing (exact count near the limit)')
  f.addFetch(fetchOf('g2'))
  t.notOk(f.hasRoomFor([], [fetchOf('g3')]), 'a third gateway would need 2 more entity-buckets than the 4 allowed')
})

t.test('Flusher.hasRoomFor: a chat event may hold 10 entity-buckets, a model list one more', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 12, retentionHours: 168, log })
  const chat = (model: string) => ({ model, provider: 'p', gateway: 'g', success: true, errorType: null, ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts: Date.now() })
  const withList = (gateway: string) => ({ gateway, success: true, errorType: null, modelCount: 1, responseTimeMs: 1, ts: Date.now(), models: ['a/1'] })
  t.ok(f.hasRoomFor([chat('a/1')]), 'model, provider, gateway and both pairs, minute and hour: 10')
  f.addChat(chat('a/1'))
  t.equal(f.bufferedKeys, 10)
  t.ok(f.hasRoomFor([], [withList('g')]), 'a known gateway with a model list: 1 more')
  f.addFetch(withList('g'))
  t.equal(f.bufferedKeys, 11)
  t.ok(f.hasRoomFor([], [withList('g')]), 'one more list: 12')
  t.notOk(f.hasRoomFor([], [withList('g'), withList('g')]), 'two more: 13, beyond the 12 allowed')
})
