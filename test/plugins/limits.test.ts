import t from 'tap'
import { rateLimitStore } from '../../src/plugins/limits.js'

t.test('rateLimitStore: one shared counter for every route', async (t) => {
  const seen: string[] = []
  const Store = rateLimitStore({ incr: (key: string) => { seen.push(key); return { current: seen.length, ttl: 1000 } } })
  const store = new Store()
  t.equal(store.child(), store, 'a route gets the same store')
  store.incr('k', (err, res) => {
    t.equal(err, null)
    t.same(res, { current: 1, ttl: 1000 })
  })
  t.same(seen, ['k'])
})
