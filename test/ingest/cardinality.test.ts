import t, { type Test } from 'tap'
import { CardinalityGuard, IDLE_VIEW_MS, refusalMessage, type Caps } from '../../src/ingest/cardinality.js'
import type { ChatEvent, FetchEvent } from '../../src/metrics/events.js'
import { bucketName, HOUR_MS } from '../../src/metrics/buckets.js'
import { indexKey } from '../../src/store/keys.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { build } from '../helpers/app.js'

const T0 = Date.UTC(2026, 0, 1, 10, 30)
const chat = (model: string, gateway = 'g', ts = T0): ChatEvent => ({ model, provider: 'p', gateway, success: true, errorType: null, ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts })
const fetchOf = (gateway: string, ts = T0, models?: string[]): FetchEvent => ({ gateway, success: true, errorType: null, modelCount: 1, responseTimeMs: 1, ts, ...(models !== undefined ? { models } : {}) })

/** A guard whose clock the test moves, on a memory store sharing that clock, read once as at start. */
async function setup (t: Test, max: Caps, retentionHours = 168): Promise<{ guard: CardinalityGuard, store: MemoryStore, clock: { now: number } }> {
  const clock = { now: T0 }
  const store = new MemoryStore({ now: () => clock.now })
  t.teardown(() => store.close())
  const guard = new CardinalityGuard(store, max, { retentionHours, now: () => clock.now })
  await guard.refresh()
  return { guard, store, clock }
}

/** Writes ids into an hour's activity index, as another instance's flush would. */
async function written (store: MemoryStore, type: 'model' | 'model_gateway', hourOf: number, ids: string[]): Promise<void> {
  await store.applyGroups(1, [{ marker: `m:${type}:${hourOf}:${ids.join()}`, keys: [{ key: indexKey(type, 'requests', bucketName('hour', hourOf)), expireAt: hourOf + 200 * HOUR_MS, ops: ids.map((id) => ['i', id, '1']) }] }])
}

t.test('fetch events count towards gateways', async (t) => {
  const { guard } = await setup(t, { model: 10, provider: 10, gateway: 1 })
  t.equal(guard.admit([], [fetchOf('g1')]), null)
  t.same(guard.admit([], [fetchOf('g1'), fetchOf('g2')]), { type: 'gateway', id: 'g2', limit: 1 })
  t.equal(guard.refused.gateway, 2, 'the whole refused request is counted')
  t.equal(guard.admit([chat('m', 'g1')], [fetchOf('g1')]), null, 'a known gateway still passes')
})

t.test('refresh learns the ids other instances wrote this hour, and survives a store outage', async (t) => {
  const { guard, store, clock } = await setup(t, { model: 2, provider: 10, gateway: 10 })
  await written(store, 'model', T0, ['other/a', 'other/b'])
  await guard.refresh()
  t.equal(guard.admit([chat('other/a')]), null, 'an id another instance wrote passes')
  t.match(guard.admit([chat('mine/c')]), { type: 'model', id: 'mine/c' }, 'the hour is full')
  clock.now += HOUR_MS
  t.equal(guard.admit([chat('mine/c', 'g', clock.now)]), null, 'a new hour starts empty')
  store.fieldNames = async () => { throw new Error('down') }
  await t.resolves(guard.refresh(), 'a failing store does not reject')
  t.equal(guard.admit([chat('mine/c', 'g', clock.now)]), null, 'and the local view stays')
})

t.test('model × gateway and model × provider pairs have limits of their own', async (t) => {
  const { guard, store } = await setup(t, { model: 10, provider: 10, gateway: 10, model_gateway: 2, model_provider: 3 })
  t.equal(guard.admit([chat('m1', 'g1'), chat('m1', 'g2')]), null, 'two pairs fit')
  t.same(guard.admit([chat('m2', 'g1')]), { type: 'model_gateway', id: 'm2 g1', limit: 2 }, 'a third model × gateway pair is refused')
  t.equal(guard.refused.model_gateway, 1)
  t.equal(guard.admit([chat('m1', 'g2')]), null, 'known pairs pass')
  const { guard: byProvider } = await setup(t, { model: 10, provider: 10, gateway: 10, model_provider: 1 })
  t.equal(byProvider.admit([chat('m1'), chat('m1', 'g9')]), null, 'one model, one provider: one pair whatever the gateways (no pair limit for those: none given)')
  t.same(byProvider.admit([chat('m2')]), { type: 'model_provider', id: 'm2 p', limit: 1 })
  await written(store, 'model_gateway', T0, ['other g7'])
  const fresh = new CardinalityGuard(store, { model: 10, provider: 10, gateway: 10, model_gateway: 1 }, { now: () => T0 })
  await fresh.refresh()
  t.equal(fresh.admit([chat('other', 'g7')]), null, 'a pair another instance wrote passes')
  t.match(fresh.admit([chat('m1', 'g1')]), { type: 'model_gateway' }, 'and counts towards the limit')
})

t.test('a refusal names the id, the variable, and the hour when it is not the current one', async (t) => {
  t.equal(refusalMessage({ type: 'model', id: 'a/4', limit: 3 }), 'model "a/4" would exceed the limit of 3 distinct models this hour (METRICS_MAX_MODELS); events for known ones are still accepted')
  t.equal(refusalMessage({ type: 'model_gateway', id: 'a/4 eu 1', limit: 5000 }), 'model × gateway pair "a/4" × "eu 1" would exceed the limit of 5000 distinct pairs this hour (METRICS_MAX_MODEL_GATEWAYS); events for known ones are still accepted')
  t.match(refusalMessage({ type: 'model_provider', id: 'a/4 acme', limit: 2 }), /^model × provider pair "a\/4" × "acme" .* \(METRICS_MAX_MODEL_PROVIDERS\)/)
  t.equal(refusalMessage({ type: 'model', id: 'a/4', limit: 3, hour: '2026-01-01-09' }), 'model "a/4" would exceed the limit of 3 distinct models in hour 2026-01-01-09 (UTC) (METRICS_MAX_MODELS); events for known ones are still accepted')
  t.equal(refusalMessage({ type: 'catalog', id: 'eu-1', limit: 40 }), 'the model list of gateway "eu-1" would exceed the limit of 40 model-list entries this hour (METRICS_MAX_CATALOG_IDS); fetches without a model list are still accepted')
})

t.test('ids known last hour count afresh when the hour turns, however often they were seen', async (t) => {
  const { guard, clock } = await setup(t, { model: 1, provider: 10, gateway: 1 })
  for (let i = 0; i < 3; i++) t.equal(guard.admit([chat('a', 'g1')]), null, `a via g1, request ${i + 1}`)
  t.match(guard.admit([chat('a', 'g2')]), { type: 'gateway', id: 'g2' }, 'a known model through a new gateway is still refused')
  t.match(guard.admit([chat('b', 'g1')]), { type: 'model', id: 'b' }, 'a new model through a known gateway too')
  clock.now += HOUR_MS
  t.equal(guard.admit([chat('b', 'g2', clock.now)]), null, 'the next hour starts empty')
  t.match(guard.admit([chat('a', 'g1', clock.now)]), { type: 'model', id: 'a' }, 'and last hour\'s ids are not known in it')
})

t.test('a back-dated event counts against the cap of the hour it is stored in', async (t) => {
  const { guard, clock } = await setup(t, { model: 2, provider: 10, gateway: 10 })
  const past = T0 - 3 * HOUR_MS
  t.equal(guard.admit([chat('old/a', 'g', past), chat('old/b', 'g', past)]), null, 'two models fill the past hour')
  t.same(guard.admit([chat('old/c', 'g', past)]), { type: 'model', id: 'old/c', limit: 2, hour: bucketName('hour', past) }, 'a third is refused, naming that hour')
  t.equal(guard.admit([chat('now/a'), chat('now/b')]), null, 'the current hour has a cap of its own')
  t.equal(guard.admit([chat('old/a', 'g', past + 60_000)]), null, 'known ids of the past hour still pass')
  // The next arrival hour: before, every arrival hour could fill every retained hour afresh.
  clock.now += HOUR_MS
  t.match(guard.admit([chat('old/c', 'g', past)]), { type: 'model', id: 'old/c', hour: bucketName('hour', past) }, 'the past hour stays full in later hours')
  t.match(guard.admit([chat('now/c', 'g', T0)]), { type: 'model', id: 'now/c' }, 'and so does the hour that was current')
  t.equal(guard.admit([chat('new/a', 'g', clock.now)]), null, 'the new current hour has room')
  t.match(guard.admit([chat('new/b', 'g', clock.now), chat('new/c', 'g', past)]), { type: 'model', id: 'new/c' }, 'a request is refused whole when one of its hours is full')
  t.equal(guard.admit([chat('new/b', 'g', clock.now)]), null, 'nothing of the refused request was counted')
})

t.test('every kept hour is read from the store at start; a forgotten one is read again, with 503 meanwhile', async (t) => {
  const clock = { now: T0 }
  const store = new MemoryStore({ now: () => clock.now })
  t.teardown(() => store.close())
  const past = T0 - 100 * HOUR_MS
  await written(store, 'model', past, ['x/1', 'x/2'])
  const guard = new CardinalityGuard(store, { model: 2, provider: 10, gateway: 10 }, { retentionHours: 168, now: () => clock.now })
  await guard.refresh()
  t.match(guard.admit([chat('x/3', 'g', past)]), { type: 'model', id: 'x/3' }, 'a restarted instance knows a past hour is full')
  t.equal(guard.admit([chat('x/1', 'g', past)]), null, 'and which ids it holds')

  // Unused for IDLE_VIEW_MS, the past hour is forgotten; meanwhile another instance fills a second one.
  clock.now += IDLE_VIEW_MS + 1
  await guard.refresh()
  t.ok(guard.heldIds.hours <= 2, `only the current (and next) hour held after idling (${guard.heldIds.hours})`)
  const other = T0 - 50 * HOUR_MS
  await written(store, 'model', other, ['y/1', 'y/2'])
  let thrown: unknown
  try {
    guard.admit([chat('z/1', 'g', past), chat('z/1', 'g', other)])
  } catch (err) {
    thrown = err
  }
  t.match(thrown, { statusCode: 503, code: 'METRICS_STORE_UNAVAILABLE', headers: { 'retry-after': '1' }, message: new RegExp(`${bucketName('hour', past)}, ${bucketName('hour', other)}`) }, 'a forgotten hour is read first: 503 with Retry-After, naming the hours')
  await new Promise((resolve) => setImmediate(resolve))
  t.match(guard.admit([chat('z/1', 'g', other)]), { type: 'model', id: 'z/1', hour: bucketName('hour', other) }, 'once read, the hour\'s ids count')
  t.equal(guard.admit([chat('y/2', 'g', other)]), null)
})

t.test('a failed read of an hour is retried after a second, not on every request', async (t) => {
  const { guard, store, clock } = await setup(t, { model: 2, provider: 10, gateway: 10 })
  clock.now += IDLE_VIEW_MS + 1
  await guard.refresh()
  const fieldNames = store.fieldNames.bind(store)
  let reads = 0
  store.fieldNames = async () => { reads++; throw new Error('down') }
  const past = T0 - 5 * HOUR_MS
  const attempt = async (): Promise<unknown> => {
    try {
      return guard.admit([chat('a', 'g', past)])
    } catch (err) {
      return err
    } finally {
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  t.match(await attempt(), { statusCode: 503 })
  t.match(await attempt(), { statusCode: 503 }, 'still 503 while the store is down')
  t.equal(reads, 1, 'one read attempted')
  clock.now += 1_000
  store.fieldNames = fieldNames
  t.match(await attempt(), { statusCode: 503 }, 'a second later, read again')
  t.equal(await attempt(), null, 'and admitted once read')
})

t.test('the guard holds at most the kept hours\' ids, and only recently used hours after a while', async (t) => {
  const max = { model: 3, provider: 2, gateway: 2, model_gateway: 4, model_provider: 3 }
  const retention = 6
  const { guard, clock } = await setup(t, max, retention)
  const perHour = max.model + max.provider + max.gateway + max.model_gateway + max.model_provider
  for (let h = 0; h <= retention; h++) {
    const ts = T0 - h * HOUR_MS
    for (let i = 0; i < 10; i++) guard.admit([chat(`h${h}/m${i}`, `g${i % 3}`, ts)])
    for (let i = 0; i < 10; i++) guard.admit([{ ...chat(`h${h}/m${i % 3}`, `g${i % 2}`, ts), provider: `p${i}` }])
  }
  const held = guard.heldIds
  t.ok(held.hours <= retention + 2, `hours held (${held.hours}) ≤ retention + 2`)
  t.ok(held.ids <= (retention + 2) * perHour, `ids held (${held.ids}) ≤ (retention + 2) × the caps' sum (${(retention + 2) * perHour})`)
  clock.now += IDLE_VIEW_MS + 1
  await guard.refresh()
  t.ok(guard.heldIds.ids <= 2 * perHour, `after idling, the current hour's ids only (${guard.heldIds.ids})`)
})

t.test('model lists: a fetch costs one entry, a list new this hour its ids too; shared through the store', async (t) => {
  const { guard, store, clock } = await setup(t, { model: 10, provider: 10, gateway: 10, catalog: 10 })
  t.equal(guard.admit([], [fetchOf('eu-1', T0, ['a', 'b', 'c'])]), null, 'a new list of 3: 4 entries')
  t.equal(guard.admit([], [fetchOf('eu-1', T0, ['c', 'b', 'a'].sort())]), null, 'the same list again: 1 entry (5)')
  t.same(guard.admit([], [fetchOf('eu-2', T0, ['a', 'b', 'c', 'd', 'e'])]), { type: 'catalog', id: 'eu-2', limit: 10 }, 'a new list of 5: 5 + 6 > 10')
  t.equal(guard.refused.catalog, 1)
  t.equal(guard.admit([], [fetchOf('eu-1', T0 - 2 * HOUR_MS, ['a', 'b', 'c'])]), null, 'a back-dated fetch counts in the arrival hour, where its list is stored (6)')
  t.equal(guard.admit([], [fetchOf('eu-2')]), null, 'a fetch without a list is not counted')
  t.equal(guard.admit([], [fetchOf('eu-1', T0, ['d'])]), null, 'a new list of 1: 2 entries (8)')
  t.equal(guard.admit([], [fetchOf('eu-1', T0, ['a', 'b', 'c']), fetchOf('eu-1', T0 + 1, ['d'])]), null, 'two known lists (10)')
  t.match(guard.admit([], [fetchOf('eu-1', T0, ['a', 'b', 'c'])]), { type: 'catalog', id: 'eu-1' }, 'the cap holds the fetch records too')

  // A second instance learns the first one's entries at its refresh (after its first flush).
  await guard.refresh()
  const second = new CardinalityGuard(store, { model: 10, provider: 10, gateway: 10, catalog: 12 }, { now: () => clock.now })
  await second.refresh()
  await second.refresh()
  t.equal(second.admit([], [fetchOf('eu-1')]), null)
  t.match(second.admit([], [fetchOf('eu-1', T0, ['a', 'b'])]), { type: 'catalog', limit: 12 }, 'the other instance\'s 10 entries count')
  t.equal(second.admit([], [fetchOf('eu-1', T0, ['a'])]), null, 'the room left (2) is usable')

  clock.now += HOUR_MS
  t.equal(guard.admit([], [fetchOf('eu-2', clock.now, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])]), null, 'a new hour starts afresh')
})

t.test('through the route: a request needing a past hour not yet read gets 503 with Retry-After, then passes', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const fieldNames = store.fieldNames.bind(store)
  store.fieldNames = async () => { throw new Error('down') }
  // The store does not answer the first read: no hour is held but the current one (started empty).
  const { app } = await build(t, { store })
  store.fieldNames = fieldNames
  const post = async (timestamp: number) => await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model: 'late/a', success: true, timestamp } })
  // Nothing is buffered before the 503, so no flush (and no refresh) reads the hour meanwhile.
  const first = await post(Date.now() - 3 * HOUR_MS)
  t.equal(first.statusCode, 503, 'a past hour: 503 while it is read')
  t.equal(first.headers['retry-after'], '1')
  t.match(first.json(), { code: 'METRICS_STORE_UNAVAILABLE', message: /being read from the store/ })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal((await post(Date.now() - 3 * HOUR_MS)).statusCode, 202, 'the retry passes')
  t.equal((await post(Date.now())).statusCode, 202, 'the current hour needs no read')
})
