import t from 'tap'
import { RedisStore } from '../../src/store/redis-store.js'
import { build } from '../helpers/app.js'
import { startCluster } from '../helpers/redis.js'
import { readSuite } from '../read/read-suite.js'

t.test('read side on a 3-master Redis Cluster', async (t) => {
  // A cluster has one database: each app the suite asks for (a fresh, empty store) gets its own cluster.
  const first = await startCluster(t)
  if (first === null) return
  let spare: typeof first | null = first
  await readSuite(t, async (t) => {
    const cluster = spare ?? await startCluster(t) as typeof first
    spare = null
    const store = new RedisStore({ cluster: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) })
    t.teardown(() => store.close())
    t.equal(await store.connect(5000), true, 'connected to the cluster')
    const { app } = await build(t, { store })
    return app
  })
})
