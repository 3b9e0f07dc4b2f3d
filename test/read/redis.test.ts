import t from 'tap'
import { RedisStore } from '../../src/store/redis-store.js'
import { build } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { readSuite } from './read-suite.js'

t.test('read side on Redis', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  // each app gets its own logical database, so a fresh app starts on an empty store
  let db = 0
  await readSuite(t, async (t) => {
    const store = new RedisStore({ url: `${redis.url}/${db++}` })
    t.teardown(() => store.close())
    t.equal(await store.connect(2000), true, 'connected to redis')
    const { app } = await build(t, { store })
    t.equal(app.metricsStore.kind, 'redis', 'the app reads from redis')
    return app
  })
})
