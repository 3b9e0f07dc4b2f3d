import t from 'tap'
import { MemoryStore } from '../../src/store/memory-store.js'
import { build } from '../helpers/app.js'
import { readSuite } from './read-suite.js'

t.test('read side on the embedded store', async (t) => {
  await readSuite(t, async (t) => {
    const store = new MemoryStore()
    t.teardown(() => store.close())
    const { app } = await build(t, { store })
    return app
  })
})
