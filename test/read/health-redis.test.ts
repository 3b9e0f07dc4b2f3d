import t from 'tap'
import { RedisStore } from '../../src/store/redis-store.js'
import { startRedis } from '../helpers/redis.js'
import { healthSuite } from './health-suite.js'

t.test('health states, comparison, routing and catalog on Redis', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  await healthSuite(t, async (t) => {
    const store = new RedisStore({ url: redis.url })
    t.teardown(() => store.close())
    t.equal(await store.connect(2000), true, 'connected to redis')
    return store
  })
  const keys = await redis.client.keys('metrics:*')
  const ttls = await Promise.all(keys.map(async (k) => await redis.client.pttl(k)))
  // PTTL -1: no expiry; -2: gone since the listing (sealed into its block meanwhile), not a key without TTL.
  t.same(keys.filter((_, i) => ttls[i] === -1), [], `every one of the ${keys.length} keys has a TTL`)
})
