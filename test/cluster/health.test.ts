import t from 'tap'
import { RedisStore } from '../../src/store/redis-store.js'
import { startCluster } from '../helpers/redis.js'
import { healthSuite } from '../read/health-suite.js'

t.test('health states, comparison, routing and catalog on a 3-master Redis Cluster', async (t) => {
  const cluster = await startCluster(t)
  if (cluster === null) return
  await healthSuite(t, async (t) => {
    const store = new RedisStore({ cluster: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) })
    t.teardown(() => store.close())
    t.equal(await store.connect(5000), true, 'connected to the cluster')
    return store
  })
  const keys = await cluster.keys('metrics:*')
  const ttls = await Promise.all(keys.map(async (k) => await cluster.client.pttl(k)))
  // PTTL -1: no expiry; -2: gone since the listing (sealed into its block meanwhile), not a key without TTL.
  t.same(keys.filter((_, i) => ttls[i] === -1), [], `every one of the ${keys.length} keys has a TTL`)
  const perNode = await Promise.all(cluster.masters.map(async (m) => (await m.keys('metrics:*')).length))
  t.ok(perNode.filter((n) => n > 0).length >= 2, `the keys are spread over the masters (${perNode.join(', ')})`)
})
