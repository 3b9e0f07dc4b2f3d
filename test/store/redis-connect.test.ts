/**
 * What start-up says when Redis refuses the connection for a reason not covered by the password and
 * database cases of test/faults/startup-redis.test.ts: an ACL user without the right to SELECT its
 * database, and a Redis Cluster whose nodes refuse the password.
 */
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { RedisStore } from '../../src/store/redis-store.js'
import { startCluster, startRedis } from '../helpers/redis.js'

t.test('a refusal other than the password or the database is named as Redis said it, without the password', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  await redis.client.call('ACL', 'SETUSER', 'limited', 'on', '>limited-secret-pw', '~*', '+@all', '-select')
  const store = new RedisStore({ url: `redis://limited:limited-secret-pw@127.0.0.1:${redis.port}/1` })
  t.teardown(() => store.close())
  const err = await store.connect(5_000).then(() => null, (e: Error) => e)
  t.match(err, { name: 'StartupError', code: 'NOPERM', message: /^redis: refused the connection \(NOPERM .*select/ })
  t.notMatch(String(err?.message), /limited-secret-pw/)
})

t.test('a Redis Cluster that refuses the password stops start-up with one line', async (t) => {
  const cluster = await startCluster(t)
  if (cluster === null) return
  for (const c of cluster.masters) await c.config('SET', 'requirepass', 'cluster-right-pw')
  const nodes = cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) }))
  const config = defaultConfig({ redis: { cluster: nodes, password: 'cluster-wrong-pw' } })
  const err = await buildApp({ config, logger: false }).then(() => null, (e: Error) => e)
  t.match(err, { name: 'StartupError', code: 'WRONGPASS', message: /^redis: authentication failed \(WRONGPASS\)/ })
  t.notMatch(String(err?.message), /cluster-wrong-pw/)
})
