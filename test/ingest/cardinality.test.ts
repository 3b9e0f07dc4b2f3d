import t from 'tap'
import { CardinalityGuard } from '../../src/ingest/cardinality.js'
import type { ChatEvent, FetchEvent } from '../../src/metrics/events.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { indexKey } from '../../src/store/keys.js'
import { MemoryStore } from '../../src/store/memory-store.js'

const chat = (model: string, gateway = 'g'): ChatEvent => ({ model, provider: 'p', gateway, success: true, errorType: null, ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts: 0 })
const fetchOf = (gateway: string): FetchEvent => ({ gateway, success: true, errorType: null, modelCount: 1, responseTimeMs: 1, ts: 0 })

t.test('fetch events count towards gateways', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const guard = new CardinalityGuard(store, { model: 10, provider: 10, gateway: 1 })
  t.equal(guard.admit([], [fetchOf('g1')]), null)
  t.same(guard.admit([], [fetchOf('g1'), fetchOf('g2')]), { type: 'gateway', id: 'g2', limit: 1 })
  t.equal(guard.refused.gateway, 2, 'the whole refused request is counted')
  t.equal(guard.admit([chat('m', 'g1')], [fetchOf('g1')]), null, 'a known gateway still passes')
})

t.test('refresh learns the ids other instances wrote this hour, and survives a store outage', async (t) => {
  let now = Date.UTC(2026, 0, 1, 10, 30)
  const store = new MemoryStore({ now: () => now })
  t.teardown(() => store.close())
  const hour = bucketName('hour', now)
  await store.applyGroups(1, [{ marker: 'm', keys: [{ key: indexKey('model', 'requests', hour), expireAt: now + 3_600_000, ops: [['i', 'other/a', '1'], ['i', 'other/b', '1']] }] }])
  const guard = new CardinalityGuard(store, { model: 2, provider: 10, gateway: 10 }, () => now)
  await guard.refresh()
  t.equal(guard.admit([chat('other/a')]), null, 'an id another instance wrote passes')
  t.match(guard.admit([chat('mine/c')]), { type: 'model', id: 'mine/c' }, 'the hour is full')
  now += 3_600_000
  t.equal(guard.admit([chat('mine/c')]), null, 'a new hour starts empty')
  store.fieldNames = async () => { throw new Error('down') }
  await t.resolves(guard.refresh(), 'a failing store does not reject')
  t.equal(guard.admit([chat('mine/c')]), null, 'and the local view stays')
})
