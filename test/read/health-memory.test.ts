import t from 'tap'
import { MemoryStore } from '../../src/store/memory-store.js'
import { healthSuite } from './health-suite.js'

t.test('health states, comparison, routing and catalog on the embedded store', async (t) => {
  await healthSuite(t, async (t) => {
    const store = new MemoryStore()
    t.teardown(() => store.close())
    return store
  })
})
