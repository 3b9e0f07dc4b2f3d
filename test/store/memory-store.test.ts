import t from 'tap'
import { MemoryStore } from '../../src/store/memory-store.js'
import { storeContract } from '../helpers/store-contract.js'

t.test('MemoryStore contract', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  storeContract(t, {
    store,
    pttl: async (key) => store.pttl(key),
    keys: async (prefix) => store.keys().filter((k) => k.startsWith(prefix))
  }, 'mem')
})

t.test('MemoryStore sweeps expired keys and markers', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  await store.applyGroups(1, [{ marker: 'm', keys: [{ key: 'a', expireAt: now + 1000, ops: [['i', 'n', '1']] }] }])
  t.equal(store.size, 1)
  store.sweep()
  t.equal(store.size, 1, 'a live key survives a sweep')
  now += 1000
  store.sweep()
  t.equal(store.size, 0, 'an expired key is swept')
  await store.applyGroups(2, [{ marker: 'm2', keys: [{ key: 'b', expireAt: now + 1000, ops: [['i', 'n', '1']] }] }])
  now += 1000
  t.equal(store.size, 1, 'held until swept or read')
  t.same(store.keys(), [], 'an expired key is never read, even before a sweep')
  t.equal(store.size, 0, 'and reading it drops it')
  now += 25 * 3_600_000
  store.sweep()
  await store.applyGroups(1, [{ marker: 'm', keys: [{ key: 'a', expireAt: now + 1000, ops: [['i', 'n', '1']] }] }])
  t.same(store.keys(), ['a'], 'an expired marker no longer blocks its sequence')
})

t.test('MemoryStore sweeps expired shared counters', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  t.same(await store.shareCounts([{ key: 'c', member: 'a', count: 2, expireAt: now + 1000 }, { key: 'c', member: 'b', count: 3, expireAt: now + 1000 }]), [2, 5])
  now += 1000
  store.sweep()
  t.same(await store.shareCounts([{ key: 'c', member: 'a', count: 1, expireAt: now + 1000 }]), [1], 'an expired counter starts again')
})

t.test('MemoryStore sweeps expired claims', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  t.equal(await store.claim('j', 'a', now + 1000), true)
  store.sweep()
  t.ok(store.pttl('j') > 0, 'a live claim survives a sweep')
  now += 1000
  store.sweep()
  t.equal(store.pttl('j'), -2, 'an expired claim is swept')
  t.equal(await store.claim('j', 'b', now + 1000), true, 'and can be taken again')
})
