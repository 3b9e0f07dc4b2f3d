import t from 'tap'
import { clusterOptions, PIPELINE_CHUNK, RedisStore, redisOptions } from '../../src/store/redis-store.js'
import { MAX_PART_OPS, PARTS_PER_GROUP } from '../../src/store/types.js'
import { startRedis } from '../helpers/redis.js'
import { storeContract } from '../helpers/store-contract.js'

t.test('RedisStore contract', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  storeContract(t, {
    store,
    pttl: async (key) => await redis.client.pttl(key),
    keys: async (prefix) => await redis.client.keys(`${prefix}*`)
  }, 'rs')
})

t.test('RedisStore with the REDIS_HOST family', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  await redis.client.config('SET', 'requirepass', 'sekret')
  const store = new RedisStore({ host: '127.0.0.1', port: redis.port, password: 'sekret', db: 2 })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  await store.applyGroups(1, [{ marker: '{x}:m', keys: [{ key: '{x}:k', expireAt: Date.now() + 60_000, ops: [['i', 'n', '1']] }] }])
  await redis.client.auth('sekret')
  await redis.client.select(2)
  t.equal(await redis.client.hget('{x}:k', 'n'), '1', 'wrote to db 2 with the password')
})

t.test('RedisStore refuses a wrong password at connect', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  await redis.client.config('SET', 'requirepass', 'right')
  const store = new RedisStore({ host: '127.0.0.1', port: redis.port, db: 0, password: 'wrong' })
  store.client.on('error', () => {})
  t.teardown(() => store.close())
  await t.rejects(store.connect(2000), /WRONGPASS|invalid/i)
})

t.test('RedisStore while Redis is down: fails fast, never hangs', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const store = new RedisStore({ url: redis.url })
  store.client.on('error', () => {})
  t.teardown(() => store.close())
  await store.connect(2000)
  await redis.stop()
  const started = Date.now()
  const [err] = await store.applyGroups(1, [{ marker: '{d}:m', keys: [{ key: '{d}:k', expireAt: Date.now() + 60_000, ops: [['i', 'n', '1']] }] }])
  t.type(err, Error, 'the group reports an error to retry')
  await t.rejects(store.read([{ keys: ['{d}:k'], slots: [0], nSlots: 1 }]))
  await t.rejects(store.ping())
  t.ok(Date.now() - started < 10_000, 'within the command timeout')
  await store.close()
  await t.resolves(store.close(), 'closing twice is harmless')
})

t.test('redisOptions', async (t) => {
  const o = redisOptions({ host: 'h', port: 1, db: 3 })
  t.match(o, { host: 'h', port: 1, db: 3, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  t.notOk('password' in o)
  t.notOk('host' in redisOptions({ url: 'redis://x:1' }), 'a URL carries its own host')
})

t.test('TLS and cluster options', async (t) => {
  t.same(redisOptions({ host: 'h', port: 1, db: 0, tls: true }).tls, {}, 'TLS on for the REDIS_HOST family')
  t.notOk('tls' in redisOptions({ host: 'h', port: 1, db: 0 }))
  const node = redisOptions({ cluster: [{ host: 'a', port: 1 }], password: 'pw', tls: true })
  t.match(node, { password: 'pw', tls: {}, enableOfflineQueue: false })
  t.notOk('cluster' in node, 'seed nodes are not node options')
  const c = clusterOptions({ cluster: [{ host: 'a', port: 1 }] })
  t.match(c, { enableOfflineQueue: false, lazyConnect: true, redisOptions: { commandTimeout: 2000, maxRetriesPerRequest: 1 } })
  t.notOk('enableAutoPipelining' in c, 'commands are routed by their keys, not by their first argument')
  t.notOk('retryStrategy' in (c.redisOptions ?? {}), 'reconnects are the cluster\'s to schedule')
  t.equal(typeof c.clusterRetryStrategy, 'function')
})

t.test('a batch larger than one pipeline chunk lands whole, replies in order', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  await store.connect(2000)
  const n = PIPELINE_CHUNK * 2 + 5
  const groups = Array.from({ length: n }, (_, i) => ({ marker: `{g${i}}:m`, keys: [{ key: `{g${i}}:k`, expireAt: Date.now() + 60_000, ops: [['i', 'n', String(i + 1)]] as Array<['i', string, string]> }] }))
  t.same(await store.applyGroups(1, groups), groups.map(() => null), 'every group applied')
  const merged = await store.read(groups.map((g) => ({ keys: [g.keys[0]!.key], slots: [0], nSlots: 1 })))
  t.same(merged.map(([f]) => f!.n), groups.map((_, i) => String(i + 1)), 'each read answered in its place')
})

t.test('a group larger than MAX_PART_OPS is applied in parts, in order, each once', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  t.equal(await store.connect(2000), true)
  const expireAt = Date.now() + 60_000
  // Five keys of 1 000 fields: parts of two, two and one key.
  const keys = Array.from({ length: 5 }, (_, k) => ({ key: `{big}:k${k}`, expireAt, ops: Array.from({ length: 1000 }, (_, f): ['i', string, string] => ['i', `f${f}`, '1']) }))
  const group = { marker: '{big}:flushed:a', keys }
  // Script calls that ran (a first EVALSHA may fail NOSCRIPT and go again as EVAL).
  const ran = async (): Promise<number> => {
    let n = 0
    for (const [, calls, failed] of (await redis.client.info('commandstats')).matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+),.*failed_calls=(\d+)/gm)) n += Number(calls) - Number(failed)
    return n
  }
  const before = await ran()
  t.same(await store.applyGroups(7, [group]), [null])
  t.equal(await ran() - before, 3, 'three script calls, none of more than MAX_PART_OPS operations')
  t.equal(await redis.client.get('{big}:flushed:a'), String(7 * PARTS_PER_GROUP + 2), 'the marker holds the last part')
  t.same(await store.applyGroups(7, [group]), [null], 'a retry of the whole group')
  for (const { key } of keys) t.equal(await redis.client.hget(key, 'f999'), '1', `${key} applied once`)

  // A part whose predecessor has not landed waits (an error the flusher retries), then lands in turn.
  const later = { marker: '{big}:flushed:a', keys: keys.map((k) => ({ ...k, ops: k.ops.map(([op, f]): ['i', string, string] => [op, f, '2']) })) }
  await redis.client.set('{big}:flushed:a', String(8 * PARTS_PER_GROUP - 1))
  const [err] = await store.applyGroups(8, [later])
  t.equal(err, null, 'parts in order from the first')
  await redis.client.set('{big}:flushed:a', String(9 * PARTS_PER_GROUP - 5))
  const lone = await store.applyGroups(9, [{ marker: '{big}:flushed:a', keys: [keys[0]!] }])
  t.equal(lone[0], null, 'a group of one part needs no predecessor')
  t.equal(MAX_PART_OPS, 2048)
  const raw = store.client as unknown as { metricsApply: (...args: Array<string | number>) => Promise<number> }
  await t.rejects(raw.metricsApply(3, '{big}:flushed:a', '{big}:seals', '{big}:k0', 10 * PARTS_PER_GROUP + 1, 1000, expireAt, 'i\u001ff0\u001f1\u001f', ''), /METRICS_ORDER/, 'part 1 before part 0 is refused for now')
  t.equal(await redis.client.hget('{big}:k0', 'f0'), '4', 'and writes nothing')
})
