/**
 * METRICS_EXPORT_GENAI=true: the recorded model metrics on GET /metrics as OpenTelemetry GenAI
 * series, the top N models by requests named and the rest as `other`. Expectations are computed here
 * from the events posted (nearest-rank percentiles, within the 2 % the API promises).
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../../src/config.js'
import { readGenAiRows } from '../../src/observability/genai.js'
import { resolveWindow } from '../../src/read/window.js'
import { indexKey } from '../../src/store/keys.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Fields, MergeRead } from '../../src/store/types.js'
import { build } from '../helpers/app.js'
import { sample, samples, scrape, type PromMetrics } from '../helpers/prometheus.js'

const ERROR_TYPES = ['timeout', 'rate_limit', 'network', 'other'] as const
type ErrorType = typeof ERROR_TYPES[number]

interface Event { model: string, provider?: string, success: boolean, error_type?: ErrorType, ttft_ms?: number, total_time_ms: number, timestamp: number }

/** The embedded store with its reads counted, and made to fail on demand. */
class CountingStore extends MemoryStore {
  reads = 0
  failReads = false

  override async read (reads: MergeRead[]): Promise<Fields[][]> {
    this.reads++
    if (this.failReads) throw new Error('the store is down (test)')
    return await super.read(reads)
  }
}

/** `n` events of `model`, every third one failed (error types in turn), times spread by `seed`. */
function eventsOf (model: string, n: number, seed: number, now: number, opts: { ttft?: boolean, provider?: (i: number) => string } = {}): Event[] {
  return Array.from({ length: n }, (_, i) => {
    const failed = i % 3 === 2
    return {
      model,
      ...(opts.provider !== undefined ? { provider: opts.provider(i) } : {}),
      success: !failed,
      ...(failed ? { error_type: ERROR_TYPES[(i + seed) % ERROR_TYPES.length] } : {}),
      ...(opts.ttft === false ? {} : { ttft_ms: 40 + ((i * 37 + seed * 11) % 400) }),
      total_time_ms: 700 + ((i * 173 + seed * 29) % 3000),
      // Oldest first, all within the last two minutes: inside the 5-minute window.
      timestamp: now - 90_000 + i * 1000
    }
  })
}

function nearestRank (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!
}

interface Expected { model: string, provider: string, events: Event[] }

function check (t: Test, m: PromMetrics, want: Expected): void {
  const labels = { gen_ai_request_model: want.model, gen_ai_provider_name: want.provider }
  const ok = want.events.filter((e) => e.success).length
  t.equal(sample(m, 'gen_ai_client_operations', 'gauge', labels), ok, `${want.model}: ${ok} successful`)
  for (const type of ERROR_TYPES) {
    const n = want.events.filter((e) => e.error_type === type).length
    t.equal(sample(m, 'gen_ai_client_operations', 'gauge', { ...labels, error_type: type }), n, `${want.model}: ${n} failed with ${type}`)
  }
  const ttfts = want.events.flatMap((e) => e.ttft_ms === undefined ? [] : [e.ttft_ms])
  const totals = want.events.map((e) => e.total_time_ms)
  for (const [quantile, p] of [['0.5', 50], ['0.9', 90], ['0.95', 95], ['0.99', 99]] as const) {
    const ttft = sample(m, 'gen_ai_server_time_to_first_token', 'gauge', { ...labels, quantile })
    if (ttfts.length === 0) t.equal(ttft, undefined, `${want.model}: no time to first token recorded, no series`)
    else {
      const exact = nearestRank(ttfts, p) / 1000
      t.ok(ttft !== undefined && Math.abs(ttft - exact) <= 0.02 * exact, `${want.model}: TTFT q${quantile} ${ttft} s within 2 % of ${exact} s`)
    }
    const total = sample(m, 'gen_ai_client_operation_duration', 'gauge', { ...labels, quantile })
    const exact = nearestRank(totals, p) / 1000
    t.ok(total !== undefined && Math.abs(total - exact) <= 0.02 * exact, `${want.model}: duration q${quantile} ${total} s within 2 % of ${exact} s`)
  }
}

async function post (t: Test, app: FastifyInstance, events: Event[]): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: events })
  t.equal(res.statusCode, 202)
  for (let i = 0; i < 50 && !(await app.flusher.flush()); i++);
}

t.test('the top N models by requests are named, the rest aggregated as other', async (t) => {
  const store = new CountingStore()
  t.teardown(() => store.close())
  const { app } = await build(t, { store, config: { genAiExport: { enabled: true, topModels: 2 }, cacheTtlMs: 60_000 } })
  const now = Date.now()
  const m1 = eventsOf('acme/m1', 9, 1, now, { provider: (i) => i < 5 ? 'acme-legacy' : 'acme-cloud' })
  const m2 = eventsOf('acme/m2', 7, 2, now, { ttft: false })
  // As many requests as acme/m2: the tie goes to the smaller id, so this one is in `other`.
  const m2b = eventsOf('acme/m2b', 7, 3, now)
  const m3 = eventsOf('beta/m3', 4, 4, now)
  const m4 = eventsOf('gamma/m4', 2, 5, now)
  await post(t, app, [...m4, ...m3, ...m2b, ...m2, ...m1])

  const m = await scrape(app)
  const expected: Expected[] = [
    { model: 'acme/m1', provider: 'acme-cloud', events: m1 },
    { model: 'acme/m2', provider: 'acme', events: m2 },
    { model: 'other', provider: 'other', events: [...m2b, ...m3, ...m4] }
  ]
  for (const want of expected) check(t, m, want)
  const models = new Set(samples(m, 'gen_ai_client_operations', 'gauge').map((d) => d.labels.gen_ai_request_model))
  t.same([...models].sort(), ['acme/m1', 'acme/m2', 'other'], 'the label set is bounded: N models and other')
  t.equal(samples(m, 'gen_ai_client_operations', 'gauge').length, 3 * (1 + ERROR_TYPES.length), 'one success and one series per error type for each')

  const readsBefore = store.reads
  const cached = await scrape(app)
  t.equal(store.reads, readsBefore, 'a second scrape within METRICS_CACHE_TTL_MS does not read the store')
  t.same(samples(cached, 'gen_ai_client_operations', 'gauge'), samples(m, 'gen_ai_client_operations', 'gauge'), 'and exports the same figures')
  t.equal(sample(cached, 'llm_gateway_metrics_read_cache_requests_total', 'counter', { result: 'hit' }), 1, 'from the read cache')
  t.equal(sample(cached, 'llm_gateway_metrics_genai_export_errors_total', 'counter'), 0)
})

t.test('with no more models than N there is no other; with no traffic no series', async (t) => {
  const { app } = await build(t, { config: { genAiExport: { enabled: true, topModels: 20 } } })
  const empty = await scrape(app)
  t.same(samples(empty, 'gen_ai_client_operations', 'gauge'), [], 'no traffic: no series')
  t.same(samples(empty, 'gen_ai_server_time_to_first_token', 'gauge'), [])
  const now = Date.now()
  const a = eventsOf('acme/a', 3, 1, now)
  const b = eventsOf('beta/b', 2, 2, now)
  await post(t, app, [...a, ...b])
  const m = await scrape(app)
  check(t, m, { model: 'acme/a', provider: 'acme', events: a })
  check(t, m, { model: 'beta/b', provider: 'beta', events: b })
  t.notOk(samples(m, 'gen_ai_client_operations', 'gauge').some((d) => d.labels.gen_ai_request_model === 'other'), 'no other')
})

t.test('a store that cannot answer leaves the GenAI series out, not the scrape', async (t) => {
  const store = new CountingStore()
  t.teardown(() => store.close())
  const { app } = await build(t, { store, config: { genAiExport: { enabled: true, topModels: 2 } } })
  await post(t, app, eventsOf('acme/m1', 3, 1, Date.now()))
  t.ok(samples(await scrape(app), 'gen_ai_client_operations', 'gauge').length > 0, 'exported while the store answers')
  store.failReads = true
  const m = await scrape(app)
  t.same(samples(m, 'gen_ai_client_operations', 'gauge'), [], 'left out while it does not')
  t.same(samples(m, 'gen_ai_client_operation_duration', 'gauge'), [])
  t.equal(sample(m, 'llm_gateway_metrics_genai_export_errors_total', 'counter'), 1, 'and counted')
  t.equal(sample(m, 'llm_gateway_metrics_events_accepted_total', 'counter', { kind: 'chat' }), 3, 'the service series are still there')
})

t.test('a model whose figures are not readable yet is exported with provider unknown', async (t) => {
  // The activity index and a model's own keys land in separate groups of a flush: the index can
  // briefly name a model whose figures have not landed yet.
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const now = Date.now()
  const bucket = resolveWindow('5m', now).buckets.at(-1)!
  await store.applyGroups(1, [{ marker: 'test-marker', keys: [{ key: indexKey('model', 'requests', bucket.name), expireAt: now + 3_600_000, ops: [['i', 'ghost/m', '2']] }] }])
  const rows = await readGenAiRows(store, 5, now)
  t.match(rows, [{ model: 'ghost/m', provider: 'unknown', successes: 0, errors: { timeout: 0, rate_limit: 0, network: 0, other: 0 }, ttft: { count: 0 }, total: { count: 0 } }])
})

t.test('METRICS_EXPORT_GENAI and METRICS_EXPORT_GENAI_TOP', async (t) => {
  t.same(loadConfig({}).genAiExport, { enabled: false, topModels: 20 }, 'off by default, top 20')
  t.same(loadConfig({ METRICS_EXPORT_GENAI: 'true', METRICS_EXPORT_GENAI_TOP: '5' }).genAiExport, { enabled: true, topModels: 5 })
  t.throws(() => loadConfig({ METRICS_EXPORT_GENAI: 'yes' }), /^invalid METRICS_EXPORT_GENAI="yes": expected one of true, false$/)
  t.throws(() => loadConfig({ METRICS_EXPORT_GENAI_TOP: '0' }), /^invalid METRICS_EXPORT_GENAI_TOP\b/)
})
