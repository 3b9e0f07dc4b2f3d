/**
 * Every fetch that carries a model list is one fetch in the catalog, even when several share one
 * millisecond (an SDK batch, a request without timestamps, two flushes): the catalog counts each, and
 * finds changes between consecutive fetches in the order they happened (time, then arrival). Run on
 * the embedded store and on Redis; fields written before (`last:<time>`) are still read.
 */
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { createMetricsClient } from '../../packages/client/src/index.js'
import { Aggregator, catalogFetchField } from '../../src/ingest/aggregator.js'
import { bucketExpiry, bucketName, bucketStart } from '../../src/metrics/buckets.js'
import { catalogDigest } from '../../src/metrics/catalog.js'
import type { FetchEvent } from '../../src/metrics/events.js'
import { readCatalog } from '../../src/read/catalog.js'
import { entityKey, entityTag, markerKey } from '../../src/store/keys.js'
import { latestValue } from '../../src/store/merge.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { RedisStore } from '../../src/store/redis-store.js'
import type { MetricsStore } from '../../src/store/types.js'
import { build } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

const A = ['a/1', 'b/2']
const B = ['a/1', 'c/3']
/** The change from A to B and back, as the catalog answers them. */
const A_TO_B = { appeared: ['c/3'], disappeared: ['b/2'] }
const B_TO_A = { appeared: ['b/2'], disappeared: ['c/3'] }

interface Catalog { fetches: number, last_fetch_at: string | null, models: string[], changes: Array<{ at: string, previous_fetch_at: string, appeared: string[], disappeared: string[] }> }

async function post (app: FastifyInstance, body: unknown[]): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/api/metrics/gateway/fetch', payload: body })
  if (res.statusCode !== 202) throw new Error(`${res.statusCode} ${res.body}`)
}

async function land (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) if (await app.flusher.flush()) return
  throw new Error('the ingest buffer did not flush')
}

async function catalog (app: FastifyInstance, gateway: string): Promise<Catalog> {
  const res = await app.inject({ url: `/api/metrics/gateway/catalog?gateway=${gateway}&hours=24&limit=20` })
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
  return res.json()
}

const fetchOf = (gateway: string, models: string[], timestamp?: number): Record<string, unknown> =>
  ({ gateway, status: 'success', models, ...(timestamp !== undefined ? { timestamp } : {}) })

/** The changes as (appeared, disappeared), newest first. */
const diffs = (c: Catalog): Array<{ appeared: string[], disappeared: string[] }> => c.changes.map(({ appeared, disappeared }) => ({ appeared, disappeared }))

async function suite (t: Test, makeStore: (t: Test) => Promise<MetricsStore>): Promise<void> {
  const store = await makeStore(t)
  const { app } = await build(t, { store })
  const ts = Date.now() - 60_000
  const iso = new Date(ts).toISOString()

  t.test('lists A, B, A with one timestamp in one request: 3 fetches, 2 changes, A last', async (t) => {
    await post(app, [fetchOf('same-ms', A, ts), fetchOf('same-ms', B, ts), fetchOf('same-ms', A, ts)])
    await land(app)
    const c = await catalog(app, 'same-ms')
    t.equal(c.fetches, 3)
    t.same(c.models, A, 'the list of the last fetch to arrive')
    t.same(diffs(c), [B_TO_A, A_TO_B], 'between consecutive fetches, in the order they came')
    t.same(c.changes.map((x) => [x.at, x.previous_fetch_at]), [[iso, iso], [iso, iso]])
    t.equal(c.last_fetch_at, iso)
  })

  t.test('a request without timestamps (every fetch takes the arrival time): each fetch counts', async (t) => {
    await post(app, [fetchOf('no-ts', A), fetchOf('no-ts', B), fetchOf('no-ts', A), fetchOf('no-ts', A)])
    await land(app)
    const c = await catalog(app, 'no-ts')
    t.equal(c.fetches, 4)
    t.same(c.models, A)
    t.same(diffs(c), [B_TO_A, A_TO_B])
  })

  t.test('the same millisecond in three flushes: three fetches, ordered by arrival', async (t) => {
    for (const list of [A, B, B]) {
      await post(app, [fetchOf('flushes', list, ts)])
      await land(app)
    }
    const c = await catalog(app, 'flushes')
    t.equal(c.fetches, 3)
    t.same(c.models, B)
    t.same(diffs(c), [A_TO_B])
  })

  t.test('lists A, B, A recorded within one millisecond and sent in one SDK batch: 3 fetches, 2 changes', async (t) => {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const sdk = createMetricsClient({ baseUrl: `http://127.0.0.1:${port}`, flushIntervalMs: 1_000_000, maxBatch: 100 })
    t.teardown(async () => { await sdk.close() })
    const real = Date.now
    // Fast record calls fall in one millisecond: the SDK stamps them all with it.
    Date.now = () => ts
    try {
      for (const list of [A, B, A]) sdk.recordGatewayFetch({ gateway: 'sdk-batch', status: 'success', models: list })
    } finally {
      Date.now = real
    }
    await sdk.flush()
    t.equal(sdk.stats().sent, 3)
    await land(app)
    const c = await catalog(app, 'sdk-batch')
    t.equal(c.fetches, 3)
    t.equal(c.last_fetch_at, iso, 'the time the SDK stamped')
    t.same(c.models, A)
    t.same(diffs(c), [B_TO_A, A_TO_B])
  })

  t.test('fetches recorded before, as `last:<time>`, are still read, and ordered with the new ones', async (t) => {
    const gw = 'before'
    const hour = bucketStart('hour', ts)
    const expireAt = bucketExpiry('hour', hour, 168)
    const old = ts - 120_000
    const errs = await store.applyGroups(1, [{
      marker: markerKey(entityTag('gateway', gw), 'written-before'),
      keys: [
        { key: entityKey('gateway', gw, 'catalog', catalogDigest(B)), expireAt, ops: B.map((m) => ['M', m, '1']) },
        { key: entityKey('gateway', gw, 'catalog_fetches', bucketName('hour', hour)), expireAt, ops: [['l', `last:${latestValue(old, '')}`, latestValue(old, catalogDigest(B))], ['l', `last:${latestValue(ts, '')}`, latestValue(ts, catalogDigest(B))]] }
      ]
    }])
    t.same(errs, [null])
    await post(app, [fetchOf(gw, A, ts), fetchOf(gw, B, ts + 1)])
    await land(app)
    const c = await catalog(app, gw)
    t.equal(c.fetches, 4, 'two written before, two now')
    t.same(diffs(c), [A_TO_B, B_TO_A], 'the old field of a millisecond comes before the new ones of it')
    t.same(c.changes.map((x) => x.previous_fetch_at), [iso, iso])
    const direct = await readCatalog(store, gw, 24, 20, Date.now())
    t.equal(direct.fetches, 4)
  })
}

t.test('the aggregator names each fetch apart: its time, the instance and its arrival', async (t) => {
  const ts = Date.UTC(2026, 0, 5, 10, 0, 0)
  const fetch = (models: string[]): FetchEvent => ({ gateway: 'gw', success: true, errorType: null, modelCount: undefined, responseTimeMs: 5, models, ts })
  const fieldsOf = (instanceId: string, lists: string[][]): string[] => {
    const agg = new Aggregator()
    for (const l of lists) agg.addFetch(fetch(l))
    return agg.seal({ now: ts, retentionHours: 168, instanceId }).flatMap((g) => g.keys).filter((k) => k.key.includes(':catalog_fetches:')).flatMap((k) => k.ops.map(([, f]) => f))
  }
  const one = fieldsOf('inst-1', [A, B, A])
  const two = fieldsOf('inst-1', [A])
  const other = fieldsOf('inst-2', [A])
  const all = [...one, ...two, ...other]
  t.equal(new Set(all).size, 5, 'no two fetches share a field, in one flush, in two, or in two instances')
  t.ok(all.every((f) => f.startsWith(`last:${latestValue(ts, '')}:`)), 'each a latest-value field of its time')
  const arrival = (f: string): number => Number(f.split(':').pop())
  t.same([...one, ...two].map(arrival), [...one, ...two].map(arrival).sort((a, b) => a - b), 'arrivals grow across flushes')
  t.equal(one[0], catalogFetchField(ts, 'inst-1', arrival(one[0]!)))
  t.ok(other[0]!.includes(':inst-2:'), 'the instance is named')
})

t.test('on the embedded store', async (t) => {
  await suite(t, async (t) => {
    const store = new MemoryStore()
    t.teardown(() => store.close())
    return store
  })
})

t.test('on Redis', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  await suite(t, async (t) => {
    const store = new RedisStore({ url: redis.url })
    t.teardown(() => store.close())
    t.equal(await store.connect(2000), true, 'connected to redis')
    return store
  })
})
