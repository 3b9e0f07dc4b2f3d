import t from 'tap'
import { RedisStore } from '../../src/store/redis-store.js'
import { startCluster } from '../helpers/redis.js'
import { storeContract } from '../helpers/store-contract.js'

t.test('RedisStore contract on a 3-master Redis Cluster', async (t) => {
  const cluster = await startCluster(t)
  if (cluster === null) return
  const store = new RedisStore({ cluster: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) })
  t.teardown(() => store.close())
  t.equal(await store.connect(5000), true, 'connected to the cluster')
  storeContract(t, {
    store,
    pttl: async (key) => await cluster.client.pttl(key),
    keys: async (prefix) => await cluster.keys(`${prefix}*`)
  }, 'cl')
})
