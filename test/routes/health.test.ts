import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from '../helpers/app.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Claim, SharedCount, Fields, GroupWrite, MergeRead, MetricsStore } from '../../src/store/types.js'

interface ErrorBody { statusCode: number, error: string, message: string, code?: string }
interface RealtimeBody { requests: number, generated_at: string, ttft_ms: { count: number } }

/**
 * A store for tests: delegates to a MemoryStore, counts reads, and can be told to fail pings or
 * reads, or to hold reads until released.
 */
class FakeStore implements MetricsStore {
  readonly kind = 'memory' as const
  readonly inner = new MemoryStore()
  reads = 0
  pings = 0
  failPing = false
  failReads = false
  #gate: Promise<void> | null = null
  #release: (() => void) | null = null

  async applyGroups (seq: number, groups: GroupWrite[]): Promise<Array<Error | null>> {
    return await this.inner.applyGroups(seq, groups)
  }

  async read (reads: MergeRead[]): Promise<Fields[][]> {
    this.reads++
    const gate = this.#gate
    const fail = this.failReads
    if (gate !== null) await gate
    if (fail) throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
    return await this.inner.read(reads)
  }

  async shareCounts (items: SharedCount[]): Promise<number[]> {
    return await this.inner.shareCounts(items)
  }

  async claimOnce (items: Claim[]): Promise<Array<boolean | Error>> {
    return await this.inner.claimOnce(items)
  }

  async claim (key: string, member: string, expireAt: number): Promise<boolean> {
    return await this.inner.claim(key, member, expireAt)
  }

  async liveFieldNames (keys: string[]): Promise<string[][]> {
    return await this.inner.liveFieldNames(keys)
  }

  async seal (): Promise<number> {
    return 0
  }

  async fieldNames (keys: string[]): Promise<string[][]> {
    return await this.inner.fieldNames(keys)
  }

  async ping (): Promise<void> {
    this.pings++
    if (this.failPing) throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
  }

  async close (): Promise<void> {
    await this.inner.close()
  }

  /** Reads wait until `release()` is called. */
  hold (): void {
    this.#gate = new Promise((resolve) => { this.#release = resolve })
  }

  release (): void {
    this.#release?.()
    this.#gate = null
    this.#release = null
  }
}

function fakeStore (t: { teardown: (fn: () => unknown) => void }): FakeStore {
  const store = new FakeStore()
  t.teardown(async () => { await store.close() })
  return store
}

async function get (app: FastifyInstance, url: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url })
}

const REALTIME = '/api/metrics/realtime?type=model&id=acme%2Fmodel-1&window=5m'

/** Lets other requests in flight run until they wait on the store. */
async function settle (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50))
}

t.test('GET /healthz', async (t) => {
  const { app } = await build(t)
  const r = await get(app, '/healthz')
  t.equal(r.statusCode, 200)
  t.same(r.json(), { status: 'ok' })

  const store = fakeStore(t)
  store.failPing = true
  store.failReads = true
  const { app: down } = await build(t, { store })
  t.equal((await get(down, '/healthz')).statusCode, 200, 'live even when the store is down')
})

t.test('GET /readyz', async (t) => {
  t.test('200 with the memory store', async (t) => {
    const { app } = await build(t)
    const r = await get(app, '/readyz')
    t.equal(r.statusCode, 200)
    t.match(r.json(), { status: 'ready', store: 'memory', pending_events: Number })
  })

  t.test('503 when the store ping rejects, 200 again when it answers', async (t) => {
    const store = fakeStore(t)
    const { app } = await build(t, { store })
    store.failPing = true
    const r = await get(app, '/readyz')
    t.equal(r.statusCode, 503)
    t.match(r.json(), { status: 'unavailable', store: 'memory' })
    t.ok(store.pings >= 1, 'the store was pinged')
    store.failPing = false
    t.equal((await get(app, '/readyz')).statusCode, 200, 'ready once the store answers')
  })
})

t.test('GET /api/metrics/realtime', async (t) => {
  t.test('a store read that rejects answers 503 naming the store as unreachable', async (t) => {
    const store = fakeStore(t)
    store.failReads = true
    const { app } = await build(t, { store })
    for (const url of [REALTIME, '/api/metrics/realtime?type=gateway&id=gw&window=24h', '/api/metrics/realtime?id=x']) {
      const r = await get(app, url)
      t.equal(r.statusCode, 503, `${url}: 503`)
      const b = r.json<ErrorBody>()
      t.same(Object.keys(b).sort(), ['code', 'error', 'message', 'statusCode'], 'Fastify error shape')
      t.equal(b.statusCode, 503)
      t.equal(b.code, 'METRICS_STORE_UNAVAILABLE')
      t.equal(b.error, 'Service Unavailable')
      t.match(b.message, /unreachable/i, 'message says the store is unreachable')
      t.notMatch(b.message, /ECONNREFUSED/, 'the driver error is not leaked')
    }
    store.failReads = false
    t.equal((await get(app, REALTIME)).statusCode, 200, 'answers again once the store does (the failure was not cached)')
  })

  t.test('with the cache on, a second read is served from the cache', async (t) => {
    const store = fakeStore(t)
    const { app } = await build(t, { store, config: { cacheTtlMs: 5000 } })
    const posted = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model: 'acme/model-1', success: true, ttft_ms: 12 } })
    t.equal(posted.statusCode, 202)
    for (let i = 0; i < 20 && !(await app.flusher.flush()); i++);

    const first = await get(app, REALTIME)
    t.equal(first.statusCode, 200)
    t.equal(first.json<RealtimeBody>().requests, 1)
    t.equal(store.reads, 1, 'first read goes to the store')
    const second = await get(app, REALTIME)
    t.equal(second.statusCode, 200)
    t.equal(store.reads, 1, 'second read served from the cache')
    t.same(second.json(), first.json(), 'the same answer (same generated_at)')
    const m = /max-age=(\d+)/.exec(String(second.headers['cache-control']))
    t.ok(m !== null, 'Cache-Control max-age')
    t.ok(Number(m?.[1]) <= 5, 'max-age within the cache lifetime')

    // a cached answer still serves while the store is unreachable
    store.failReads = true
    const third = await get(app, REALTIME)
    t.equal(third.statusCode, 200, 'valid cache entry answers while the store is down')
    t.equal(store.reads, 1)
    // another key is not in the cache: the store is asked, and fails
    const other = await get(app, REALTIME.replace('window=5m', 'window=15m'))
    t.equal(other.statusCode, 503, 'uncached key with the store down: 503')
    t.equal(store.reads, 2)
  })

  t.test('with the cache on, concurrent identical reads share one store read', async (t) => {
    const store = fakeStore(t)
    const { app } = await build(t, { store, config: { cacheTtlMs: 5000 } })
    store.hold()
    const pending = [get(app, REALTIME), get(app, REALTIME), get(app, REALTIME)]
    await settle()
    t.equal(store.reads, 1, 'one store read while three requests wait')
    store.release()
    const answers = await Promise.all(pending)
    t.same(answers.map((a) => a.statusCode), [200, 200, 200])
    t.equal(store.reads, 1, 'still one store read')
    const bodies = answers.map((a) => a.json<RealtimeBody>())
    t.ok(bodies.every((b) => b.generated_at === bodies[0]?.generated_at), 'one shared answer')

    // a failing shared read fails every waiting request, once (failures are not cached)
    store.failReads = true
    store.hold()
    const url = REALTIME.replace('window=5m', 'window=1h')
    const failing = [get(app, url), get(app, url)]
    await settle()
    store.release()
    const failed = await Promise.all(failing)
    t.same(failed.map((a) => a.statusCode), [503, 503])
    t.equal(store.reads, 2, 'the two concurrent failing requests shared one read')
  })

  t.test('with the cache off, concurrent identical reads still share one store read', async (t) => {
    const store = fakeStore(t)
    const { app } = await build(t, { store })
    store.hold()
    const pending = [get(app, REALTIME), get(app, REALTIME)]
    await settle()
    store.release()
    const answers = await Promise.all(pending)
    t.same(answers.map((a) => a.statusCode), [200, 200])
    t.equal(store.reads, 1, 'one store read for two concurrent requests')
    t.equal((await get(app, REALTIME)).statusCode, 200)
    t.equal(store.reads, 2, 'with the cache off the next read goes to the store')
  })
})
