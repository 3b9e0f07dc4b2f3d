import t from 'tap'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Claim } from '../../src/store/types.js'
import { build } from '../helpers/app.js'

const post = (key: string | undefined, body: unknown, url = '/api/metrics/chat') => ({
  method: 'POST' as const,
  url,
  headers: { 'content-type': 'application/json', ...(key !== undefined ? { 'idempotency-key': key } : {}) },
  payload: JSON.stringify(body)
})

const batch = (model: string, n: number) => Array.from({ length: n }, (_, i) => ({ model, success: i % 4 !== 0, ttft_ms: 100 + i, total_time_ms: 900 + i }))

async function requests (app: Awaited<ReturnType<typeof build>>['app'], model: string): Promise<number> {
  const res = await app.inject({ url: `/api/metrics/realtime?id=${encodeURIComponent(model)}&window=5m` })
  return (res.json() as { requests: number }).requests
}

t.test('a batch sent again with its Idempotency-Key is answered 202 and counted once', async (t) => {
  const { app } = await build(t)
  for (let i = 0; i < 3; i++) {
    const res = await app.inject(post('batch-0001', batch('idem/a', 40)))
    t.equal(res.statusCode, 202)
    t.same(res.json(), { accepted: 40 }, 'a repeat is answered like the first')
  }
  await app.flusher.flush()
  t.equal(await requests(app, 'idem/a'), 40, 'counted once')
  t.equal(app.flusher.duplicateRequests, 2)
  t.equal(app.flusher.duplicateEvents, 80)
  const scrape = (await app.inject({ url: '/metrics' })).body
  t.match(scrape, /llm_gateway_metrics_idempotent_duplicates_total 2/)
  t.match(scrape, /llm_gateway_metrics_store_reads_total\{result="admitted"\} [1-9]/, 'the read just made went through the read budget')
  t.match(scrape, /llm_gateway_metrics_store_reads_in_flight 0/)

  t.equal((await app.inject(post('batch-0002', batch('idem/a', 5)))).statusCode, 202, 'a new key is a new batch')
  t.equal((await app.inject(post(undefined, batch('idem/a', 5)))).statusCode, 202, 'no key: no deduplication')
  t.equal((await app.inject(post(undefined, batch('idem/a', 5)))).statusCode, 202)
  await app.flusher.flush()
  t.equal(await requests(app, 'idem/a'), 55)
})

t.test('the same key on the two recording routes names two batches', async (t) => {
  const { app } = await build(t)
  t.equal((await app.inject(post('same', batch('idem/b', 3)))).statusCode, 202)
  const fetchRes = await app.inject(post('same', [{ gateway: 'gw-idem', status: 'success', model_count: 4 }], '/api/metrics/gateway/fetch'))
  t.equal(fetchRes.statusCode, 202)
  await app.flusher.flush()
  t.equal(await requests(app, 'idem/b'), 3)
  const gw = (await app.inject({ url: '/api/metrics/realtime?type=gateway&id=gw-idem&window=5m' })).json() as { gateway_fetches: { fetches: number } }
  t.equal(gw.gateway_fetches.fetches, 1)
  t.equal(app.flusher.duplicateRequests, 0)
})

t.test('a malformed Idempotency-Key is refused, naming the header, and records nothing', async (t) => {
  const { app, store } = await build(t)
  for (const key of ['has space', 'x'.repeat(256), 'naïve']) {
    const res = await app.inject(post(key, batch('idem/c', 2)))
    t.equal(res.statusCode, 400, JSON.stringify(key.slice(0, 20)))
    t.match(res.json(), { code: 'METRICS_INVALID_HEADER', message: /idempotency-key/ })
  }
  await app.flusher.flush()
  t.same(await store.keys(), [], 'no key written')
})

t.test('two instances sharing a store, and a restarted one, apply a key once', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const a = (await build(t, { store })).app
  const b = (await build(t, { store })).app
  // The SDK timed out on instance a and retried on instance b, then on a restarted instance.
  t.equal((await a.inject(post('k-shared', batch('idem/d', 10)))).statusCode, 202)
  t.equal((await b.inject(post('k-shared', batch('idem/d', 10)))).statusCode, 202)
  await a.flusher.flush()
  await b.flusher.flush()
  await a.close()
  const restarted = (await build(t, { store })).app
  t.equal((await restarted.inject(post('k-shared', batch('idem/d', 10)))).statusCode, 202)
  await restarted.flusher.flush()
  t.equal(await requests(restarted, 'idem/d'), 10, 'counted once')
  t.equal(b.flusher.duplicateRequests + restarted.flusher.duplicateRequests, 2)
})

/** A memory store whose claims fail while `down`, or land but lose their answer while `loseAnswers`. */
class FlakyClaims extends MemoryStore {
  down = false
  loseAnswers = 0
  override async claimOnce (items: Claim[]): Promise<Array<boolean | Error>> {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
    const results = await super.claimOnce(items)
    if (this.loseAnswers > 0) {
      this.loseAnswers--
      return items.map(() => new Error('Command timed out'))
    }
    return results
  }
}

t.test('a claim the store did not answer is retried; its events are neither lost nor doubled', async (t) => {
  const store = new FlakyClaims()
  t.teardown(() => store.close())
  const { app } = await build(t, { store })
  store.down = true
  t.equal((await app.inject(post('k-down', batch('idem/e', 7)))).statusCode, 202, 'accepted while the store is away')
  t.equal((await app.inject(post('k-down', batch('idem/e', 7)))).statusCode, 202, 'the retry too')
  await app.flusher.flush()
  t.equal(app.flusher.pendingEvents, 14, 'both wait for their claims')
  store.down = false
  // The claims land but their answers are lost: the retry finds them held by the same requests.
  store.loseAnswers = 1
  t.equal(await app.flusher.drain(5_000), 0, 'everything written once the store answers')
  t.equal(await requests(app, 'idem/e'), 7, 'counted once')
  t.equal(app.flusher.duplicateRequests, 1)
})

t.test('keyed events waiting for their claims are bounded', async (t) => {
  const store = new FlakyClaims()
  t.teardown(() => store.close())
  const { app } = await build(t, { store, config: { maxBufferedKeys: 1000 } })
  store.down = true
  let accepted = 0
  let refused = 0
  for (let i = 0; i < 20; i++) {
    const res = await app.inject(post(`k-${i}`, batch('idem/f', 100)))
    if (res.statusCode === 202) accepted += 100
    else {
      refused++
      t.equal(res.statusCode, 503)
      t.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After')
    }
  }
  t.ok(accepted <= 500, `at most half of METRICS_MAX_BUFFERED_KEYS keyed events wait (${accepted})`)
  t.ok(refused > 0)
  store.down = false
  t.equal(await app.flusher.drain(5_000), 0)
  t.equal(await requests(app, 'idem/f'), accepted, 'every accepted one lands')
})
