import t from 'tap'
import { hashKey, SharedRateLimit } from '../../src/limits/shared-rate-limit.js'
import { MemoryStore } from '../../src/store/memory-store.js'

t.test('SharedRateLimit counts per window and shares through the store', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const a = new SharedRateLimit(store, { windowMs: 60_000, syncMs: 1_000_000, member: 'a' })
  const b = new SharedRateLimit(store, { windowMs: 60_000, syncMs: 1_000_000, member: 'b' })
  t.teardown(() => { a.close(); b.close() })
  // Real times: the store expires counters on its own clock.
  const now = Math.floor(Date.now() / 60_000) * 60_000
  t.same(a.incr('k', now), { current: 1, ttl: 60_000 })
  a.incr('k', now + 1000)
  b.incr('k', now + 2000)
  await a.sync()
  await b.sync()
  t.equal(b.incr('k', now + 3000).current, 4, 'b knows of a\'s 2 requests after syncing')
  await b.sync()
  await b.sync()
  t.equal(a.incr('k', now + 4000).current, 3, 'a learns on its next sync')
  await a.sync()
  t.equal(a.incr('k', now + 5000).current, 6)
  t.equal(a.incr('k', now + 60_000).current, 1, 'a new window starts at 1')
  t.notOk(hashKey('Bearer secret').includes('secret'), 'keys are hashed')
})

t.test('SharedRateLimit keeps counting locally while the store is down', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  store.shareCounts = async () => { throw new Error('down') }
  const a = new SharedRateLimit(store, { windowMs: 60_000, syncMs: 1_000_000, member: 'a' })
  t.teardown(() => a.close())
  a.incr('k', 0)
  await t.resolves(a.sync())
  t.equal(a.incr('k', 1).current, 2)
})

t.test('SharedRateLimit bounds the keys it remembers', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const a = new SharedRateLimit(store, { windowMs: 60_000, syncMs: 1_000_000, member: 'a', maxKeys: 3 })
  t.teardown(() => a.close())
  const now = Math.floor(Date.now() / 60_000) * 60_000
  a.incr('old', now - 60_000)
  for (const k of ['x', 'y', 'z', 'w']) a.incr(k, now)
  t.equal(a.incr('x', now + 1).current, 1, 'the oldest key was forgotten to stay within the bound')
  t.equal(a.incr('w', now + 2).current, 2, 'recent keys are kept')
})
