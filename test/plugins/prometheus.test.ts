/**
 * GET /metrics after real traffic: every counter equals what the test sent and saw answered,
 * parsed from the body with a Prometheus text-format parser.
 */
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { REJECT_REASONS, rejectReason } from '../../src/observability/service-metrics.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Fields, GroupWrite, MergeRead } from '../../src/store/types.js'
import { build } from '../helpers/app.js'
import { histogram, histograms, parseMetrics, sample, samples, scrape } from '../helpers/prometheus.js'

const CHAT = '/api/metrics/chat'
const FETCH = '/api/metrics/gateway/fetch'
const NS = 'llm_gateway_metrics_'
const INGEST = 'ingest-token-0123456789'
const FLOOD = 'flood-token-0123456789'
const READ = 'read-token-0123456789'

/** The embedded store, its flushes counted; `failApplies` makes the next N flushes fail, `failReads` every read. */
class CountingStore extends MemoryStore {
  applies = 0
  failApplies = 0
  failReads = false

  override async applyGroups (seq: number, groups: GroupWrite[]): Promise<Array<Error | null>> {
    this.applies++
    if (this.failApplies > 0) {
      this.failApplies--
      throw new Error('the store is down (test)')
    }
    return await super.applyGroups(seq, groups)
  }

  override async read (reads: MergeRead[]): Promise<Fields[][]> {
    if (this.failReads) throw new Error('the store is down (test)')
    return await super.read(reads)
  }
}

/** What the test sent and saw: answers by method, route and status; accepted events; refusals. */
class Tally {
  readonly http = new Map<string, number>()
  readonly rejected = new Map<string, number>()
  chat = 0
  fetch = 0

  answered (method: string, route: string, res: LightMyRequestResponse): LightMyRequestResponse {
    const key = `${method} ${route} ${res.statusCode}`
    this.http.set(key, (this.http.get(key) ?? 0) + 1)
    return res
  }

  refused (route: string, reason: string): void {
    const key = `${route} ${reason}`
    this.rejected.set(key, (this.rejected.get(key) ?? 0) + 1)
  }
}

const chatEvent = (model: string, i = 0): Record<string, unknown> => ({ model, success: i % 3 !== 0, ttft_ms: 100 + i, total_time_ms: 900 + i, ...(i % 3 === 0 ? { error_type: 'timeout' } : {}) })

async function flushAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) if (await app.flusher.flush()) return
  throw new Error('the buffer did not flush')
}

t.test('GET /metrics after traffic: each counter equals what was sent', async (t) => {
  const store = new CountingStore()
  t.teardown(() => store.close())
  const { app } = await build(t, {
    store,
    config: {
      ingestTokens: [INGEST, FLOOD],
      readTokens: [READ],
      cacheTtlMs: 60_000,
      rateLimitMax: 20,
      rateLimitWindowMs: 60_000,
      maxBufferedKeys: 30,
      maxIds: { model: 3, provider: 100, gateway: 100 }
    }
  })
  const tally = new Tally()
  const auth = (token: string) => ({ authorization: `Bearer ${token}` })
  const post = async (url: string, body: unknown, token = INGEST, contentType = 'application/json'): Promise<LightMyRequestResponse> => {
    const res = tally.answered('POST', url, await app.inject({ method: 'POST', url, headers: { 'content-type': contentType, ...auth(token) }, payload: typeof body === 'string' ? body : JSON.stringify(body) }))
    if (res.statusCode === 202) {
      const n = (res.json() as { accepted: number }).accepted
      if (url === CHAT) tally.chat += n
      else tally.fetch += n
    }
    return res
  }
  const get = async (url: string, route: string): Promise<LightMyRequestResponse> =>
    tally.answered('GET', route, await app.inject({ url, headers: auth(READ) }))

  // Accepted.
  for (let i = 0; i < 5; i++) t.equal((await post(CHAT, [chatEvent('acme/m1', i), chatEvent('acme/m2', i)])).statusCode, 202)
  t.equal((await post(CHAT, chatEvent('acme/m1', 7))).statusCode, 202)
  t.equal((await post(FETCH, [{ gateway: 'eu-1', status: 'success', model_count: 12 }, { gateway: 'eu-1', status: 'error' }])).statusCode, 202)

  // Refused, one of each reason (and validation on both routes). Each meets an empty buffer, so the
  // cardinality case is refused for its ids and not first for want of room (the buffer bound is 30
  // entity-buckets, and what was accepted above holds about 24 until the next flush).
  await flushAll(app)
  const refusals: Array<[string, string, () => Promise<LightMyRequestResponse>, number]> = [
    [CHAT, 'validation', async () => await post(CHAT, { model: 'acme/m1' }), 400],
    [CHAT, 'validation', async () => await post(CHAT, '{"model": '), 400],
    [FETCH, 'validation', async () => await post(FETCH, { gateway: 'eu-1', status: 'maybe' }), 400],
    [CHAT, 'media_type', async () => await post(CHAT, '<event/>', INGEST, 'application/xml'), 415],
    [CHAT, 'auth', async () => await post(CHAT, chatEvent('acme/m1'), 'not-a-valid-token-000000'), 401],
    [CHAT, 'body_too_large', async () => await post(CHAT, JSON.stringify({ model: 'acme/m1', success: true, pad: 'x'.repeat(1_100_000) })), 413],
    [CHAT, 'cardinality', async () => await post(CHAT, ['acme/m1', 'acme/m3', 'acme/m4'].map((m) => chatEvent(m, 1))), 429],
    [CHAT, 'buffer_full', async () => await post(CHAT, Array.from({ length: 20 }, (_, i) => chatEvent(`full/m${i}`, 1))), 503]
  ]
  for (const [route, reason, send, status] of refusals) {
    t.equal((await send()).statusCode, status, `${reason}: ${status}`)
    tally.refused(route, reason)
  }
  // The rate limit counts per token: one token floods past it.
  let limited = 0
  for (let i = 0; i < 22; i++) {
    const res = await post(CHAT, chatEvent('acme/m2', i), FLOOD)
    if (res.statusCode === 429) {
      limited++
      tally.refused(CHAT, 'rate_limit')
    }
  }
  t.equal(limited, 2, 'the flood went 2 past the limit')

  // Reads: a key's first lookup loads from the store, the next ones are served from the cache.
  const reads: Array<[string, string]> = [
    ['/api/metrics/realtime?id=acme/m1', '/api/metrics/realtime'],
    ['/api/metrics/realtime?id=acme/m1', '/api/metrics/realtime'],
    ['/api/metrics/realtime?id=acme/m2&window=5m', '/api/metrics/realtime'],
    ['/api/metrics/health/leaderboard', '/api/metrics/health/leaderboard'],
    ['/api/metrics/health/leaderboard', '/api/metrics/health/leaderboard'],
    ['/api/metrics/realtime?id=acme/m1', '/api/metrics/realtime']
  ]
  const seen = new Set<string>()
  let misses = 0
  for (const [url, route] of reads) {
    await flushAll(app)
    t.equal((await get(url, route)).statusCode, 200, `GET ${url}`)
    if (!seen.has(url)) misses++
    seen.add(url)
  }
  tally.answered('GET', 'unmatched', await app.inject({ url: '/no/such/route?x=1' }))
  tally.answered('GET', 'unmatched', await app.inject({ url: '/no/other' }))
  tally.answered('HEAD', '/healthz', await app.inject({ method: 'HEAD', url: '/healthz' }))
  await flushAll(app)

  const m = await scrape(app, auth(READ))
  t.equal(sample(m, `${NS}events_accepted_total`, 'counter', { kind: 'chat' }), tally.chat, `chat events accepted: ${tally.chat}`)
  t.equal(sample(m, `${NS}events_accepted_total`, 'counter', { kind: 'fetch' }), tally.fetch, `fetch events accepted: ${tally.fetch}`)
  t.equal(sample(m, `${NS}events_flushed_total`, 'counter'), tally.chat + tally.fetch, 'every accepted event flushed')
  t.equal(sample(m, `${NS}events_dropped_total`, 'counter'), 0, 'none dropped')
  t.equal(sample(m, `${NS}buffer_pending_events`, 'gauge'), 0, 'nothing pending')
  t.equal(sample(m, `${NS}buffer_entity_buckets`, 'gauge'), 0, 'the buffer is empty')
  t.equal(histogram(m, `${NS}flush_duration_seconds`)?.count, store.applies, `one flush duration per write to the store (${store.applies})`)
  t.equal(sample(m, `${NS}flush_errors_total`, 'counter'), 0)

  for (const route of [CHAT, FETCH]) {
    for (const reason of REJECT_REASONS) {
      const expected = tally.rejected.get(`${route} ${reason}`) ?? 0
      t.equal(sample(m, `${NS}ingest_requests_rejected_total`, 'counter', { route, reason }), expected, `${route} refused for ${reason}: ${expected}`)
    }
  }
  t.equal(samples(m, `${NS}ingest_requests_rejected_total`, 'counter').length, 2 * REJECT_REASONS.length, 'one series per recording route and reason, no more')

  t.equal(sample(m, `${NS}read_cache_requests_total`, 'counter', { result: 'miss' }), misses, `cache misses: ${misses}`)
  t.equal(sample(m, `${NS}read_cache_requests_total`, 'counter', { result: 'hit' }), reads.length - misses, `cache hits: ${reads.length - misses}`)
  t.equal(sample(m, `${NS}store_read_errors_total`, 'counter'), 0)
  t.equal(sample(m, `${NS}redis_errors_total`, 'counter'), 0, 'no Redis: no Redis errors')
  t.equal(sample(m, `${NS}redis_reconnects_total`, 'counter'), 0)

  const timed = histograms(m, 'http_request_duration_seconds')
  for (const [key, n] of tally.http) {
    const [method, route, status] = key.split(' ') as [string, string, string]
    const h = histogram(m, 'http_request_duration_seconds', { method, route, status_code: status })
    t.equal(h?.count, n, `${key}: ${n} timed`)
    t.equal(h?.buckets['+Inf'], n, `${key}: all within +Inf`)
  }
  t.equal(timed.length, tally.http.size, 'one histogram per method, route pattern and status: raw URLs never become labels')
  t.ok(timed.every((h) => (h.sum ?? -1) >= 0), 'durations are not negative')

  t.ok(sample(m, 'process_cpu_user_seconds_total', 'counter')! > 0, 'default process metrics')
  t.ok(samples(m, 'nodejs_eventloop_lag_p99_seconds', 'gauge').length === 1, 'event-loop delay')
  t.notOk('gen_ai_client_operations' in m, 'no GenAI series unless METRICS_EXPORT_GENAI=true')

  const again = await scrape(app, auth(READ))
  t.equal(histogram(again, 'http_request_duration_seconds', { method: 'GET', route: '/metrics', status_code: '200' })?.count, 1, 'the scrape itself is timed too')
})

t.test('failed flushes and reads are counted', async (t) => {
  const store = new CountingStore()
  t.teardown(() => store.close())
  const { app } = await build(t, { store, config: { flushIntervalMs: 10 } })
  store.failApplies = 2
  t.equal((await app.inject({ method: 'POST', url: CHAT, payload: chatEvent('acme/m1', 1) })).statusCode, 202)
  for (let i = 0; i < 100 && app.flusher.pendingEvents > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(app.flusher.pendingEvents, 0, 'landed after the retries')
  store.failReads = true
  t.equal((await app.inject({ url: '/api/metrics/realtime?id=acme/m1' })).statusCode, 503)
  t.equal((await app.inject({ url: '/api/metrics/realtime?id=acme/m2' })).statusCode, 503)

  const m = await scrape(app)
  t.equal(sample(m, `${NS}flush_errors_total`, 'counter'), 2, 'two failed flushes')
  t.equal(histogram(m, `${NS}flush_duration_seconds`)?.count, store.applies, 'every attempt timed')
  t.equal(store.applies, 3, 'two failures, then the write that landed')
  t.equal(sample(m, `${NS}events_flushed_total`, 'counter'), 1)
  t.equal(sample(m, `${NS}store_read_errors_total`, 'counter'), 2, 'two reads answered 503')
  t.equal(sample(m, `${NS}read_cache_requests_total`, 'counter', { result: 'miss' }), 2)
})

t.test('events the store never confirmed are counted as dropped at shutdown', async (t) => {
  const store = new CountingStore()
  t.teardown(() => store.close())
  store.failApplies = Number.MAX_SAFE_INTEGER
  const app = await buildApp({ config: defaultConfig({ flushIntervalMs: 50 }), store, logger: false })
  await app.ready()
  t.equal((await app.inject({ method: 'POST', url: CHAT, payload: [chatEvent('acme/m1', 1), chatEvent('acme/m2', 2)] })).statusCode, 202)
  t.equal((await app.inject({ method: 'POST', url: CHAT, payload: chatEvent('acme/m1', 3) })).statusCode, 202)
  // Shutdown waits SHUTDOWN_DRAIN_MS (10 s) for the store, then gives up on the 3 events.
  await app.close()
  const m = await parseMetrics(await app.prometheus.scrape())
  t.equal(sample(m, `${NS}events_dropped_total`, 'counter'), 3, 'the 3 accepted events were given up')
  t.equal(sample(m, `${NS}events_flushed_total`, 'counter'), 0)
  t.equal(sample(m, `${NS}buffer_pending_events`, 'gauge'), 0, 'and nothing is left pending')
  t.equal(sample(m, `${NS}flush_errors_total`, 'counter'), store.applies, 'every attempt failed')
})

t.test('the reason of a refusal', async (t) => {
  t.equal(rejectReason({ statusCode: 400, code: 'FST_ERR_VALIDATION' }), 'validation')
  t.equal(rejectReason({ statusCode: 400, code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }), 'validation')
  t.equal(rejectReason({ statusCode: 429, code: 'METRICS_RATE_LIMITED' }), 'rate_limit')
  t.equal(rejectReason({ statusCode: 500 }), 'other', 'anything unforeseen is other')
})
