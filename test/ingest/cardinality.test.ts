import t from 'tap'
import { CardinalityGuard, refusalMessage } from '../../src/ingest/cardinality.js'
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

t.test('model × gateway and model × provider pairs have limits of their own', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const guard = new CardinalityGuard(store, { model: 10, provider: 10, gateway: 10, model_gateway: 2, model_provider: 3 })
  t.equal(guard.admit([chat('m1', 'g1'), chat('m1', 'g2')]), null, 'two pairs fit')
  t.same(guard.admit([chat('m2', 'g1')]), { type: 'model_gateway', id: 'm2 g1', limit: 2 }, 'a third model × gateway pair is refused')
  t.equal(guard.refused.model_gateway, 1)
  t.equal(guard.admit([chat('m1', 'g2')]), null, 'known pairs pass')
  const byProvider = new CardinalityGuard(store, { model: 10, provider: 10, gateway: 10, model_provider: 1 })
  t.equal(byProvider.admit([chat('m1'), chat('m1', 'g9')]), null, 'one model, one provider: one pair whatever the gateways (no pair limit for those: none given)')
  t.same(byProvider.admit([chat('m2')]), { type: 'model_provider', id: 'm2 p', limit: 1 })
  const hour = bucketName('hour', Date.now())
  await store.applyGroups(1, [{ marker: 'm', keys: [{ key: indexKey('model_gateway', 'requests', hour), expireAt: Date.now() + 3_600_000, ops: [['i', 'other g7', '1']] }] }])
  const fresh = new CardinalityGuard(store, { model: 10, provider: 10, gateway: 10, model_gateway: 1 })
  await fresh.refresh()
  t.equal(fresh.admit([chat('other', 'g7')]), null, 'a pair another instance wrote passes')
  t.match(fresh.admit([chat('m1', 'g1')]), { type: 'model_gateway' }, 'and counts towards the limit')
})

t.test('a refusal names the id and the variable', async (t) => {
  t.equal(refusalMessage({ type: 'model', id: 'a/4', limit: 3 }), 'model "a/4" would exceed the limit of 3 distinct models this hour (METRICS_MAX_MODELS); events for known ones are still accepted')
  t.equal(refusalMessage({ type: 'model_gateway', id: 'a/4 eu 1', limit: 5000 }), 'model × gateway pair "a/4" × "eu 1" would exceed the limit of 5000 distinct pairs this hour (METRICS_MAX_MODEL_GATEWAYS); events for known ones are still accepted')
  t.match(refusalMessage({ type: 'model_provider', id: 'a/4 acme', limit: 2 }), /^model × provider pair "a\/4" × "acme" .* \(METRICS_MAX_MODEL_PROVIDERS\)/)
})

t.test('ids known last hour count afresh when the hour turns, however often they were seen', async (t) => {
  let now = Date.UTC(2026, 0, 1, 10, 30)
  const store = new MemoryStore({ now: () => now })
  t.teardown(() => store.close())
  const guard = new CardinalityGuard(store, { model: 1, provider: 10, gateway: 1 }, () => now)
  for (let i = 0; i < 3; i++) t.equal(guard.admit([chat('a', 'g1')]), null, `a via g1, request ${i + 1}`)
  t.match(guard.admit([chat('a', 'g2')]), { type: 'gateway', id: 'g2' }, 'a known model through a new gateway is still refused')
  t.match(guard.admit([chat('b', 'g1')]), { type: 'model', id: 'b' }, 'a new model through a known gateway too')
  now += 3_600_000
  t.equal(guard.admit([chat('b', 'g2')]), null, 'the next hour starts empty')
  t.match(guard.admit([chat('a', 'g1')]), { type: 'model', id: 'a' }, 'and last hour\'s ids are not known in it')
})
