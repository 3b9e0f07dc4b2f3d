/**
 * Everything answered 202 is stored and read back: counts and sums exact, percentiles within 2 %,
 * for random batches that mix ordinary values with the extreme value of every field, and for whole
 * batches of extremes. Run against the embedded store and a real Redis.
 *
 * The expectations are computed here from the events as sent (nearest-rank percentiles over the
 * exact values), never from the service's own code.
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { MetricsStore } from '../../src/store/types.js'
import { startRedis } from '../helpers/redis.js'

const MAX_MS = 3_600_000
const MAX_TOKENS = 10_000_000
const RUNS = Number(process.env.FUZZ_RUNS ?? 0) > 0 ? Math.max(20, Math.round(Number(process.env.FUZZ_RUNS) / 100)) : 20
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 0x7fffffff))

interface Ev {
  model: string
  success: boolean
  error_type?: 'timeout' | 'rate_limit' | 'network' | 'other'
  ttft_ms?: number
  total_time_ms?: number
  input_tokens?: number
  output_tokens?: number
  streamed?: boolean
}

interface StatsBody { count: number, avg: number | null, min: number | null, max: number | null, p50: number | null, p90: number | null, p95: number | null, p99: number | null }

const ms = fc.oneof(
  fc.constantFrom(0, 0.001, 0.0004, 1, MAX_MS, MAX_MS - 0.001),
  fc.double({ min: 0, max: MAX_MS, noNaN: true }).map((v) => Math.round(v * 1000) / 1000),
  fc.integer({ min: 50, max: 5000 })
)
const tokens = fc.oneof(fc.constantFrom(0, 1, MAX_TOKENS), fc.integer({ min: 0, max: MAX_TOKENS }), fc.integer({ min: 1, max: 2000 }))

const event = (models: string[]): fc.Arbitrary<Ev> => fc.record({
  model: fc.constantFrom(...models),
  success: fc.boolean(),
  error_type: fc.option(fc.constantFrom('timeout', 'rate_limit', 'network', 'other'), { nil: undefined }),
  ttft_ms: fc.option(ms, { nil: undefined }),
  total_time_ms: fc.option(ms, { nil: undefined }),
  input_tokens: fc.option(tokens, { nil: undefined }),
  output_tokens: fc.option(tokens, { nil: undefined }),
  streamed: fc.option(fc.boolean(), { nil: undefined })
}, { requiredKeys: ['model', 'success'] }).map((e) => {
  const out: Ev = { ...e }
  for (const k of Object.keys(out) as Array<keyof Ev>) if (out[k] === undefined) delete out[k]
  if (out.success) delete out.error_type
  return out
})

/** What the service promises for tokens per second: streamed, all three known, generation ≥ 1 ms. */
function tps (e: Ev): number | undefined {
  if (e.streamed === false || e.output_tokens === undefined || e.ttft_ms === undefined || e.total_time_ms === undefined) return undefined
  const gen = e.total_time_ms - e.ttft_ms
  return gen >= 1 ? e.output_tokens / (gen / 1000) : undefined
}

function nearestRank (sorted: number[], p: number): number {
  return sorted[Math.max(1, Math.ceil((p * sorted.length) / 100)) - 1]!
}

/** Checks one Stats answer against the exact values: count, min, max and average exact; percentiles within 2 %. */
function checkStats (t: Test, got: StatsBody, values: number[], label: string): void {
  if (values.length === 0) {
    t.same(got, { count: 0, avg: null, min: null, max: null, p50: null, p90: null, p95: null, p99: null }, `${label}: no samples`)
    return
  }
  // Recorded in thousandths (µs for times), exactly: the reference rounds the same way.
  const units = values.map((v) => Math.round(v * 1000))
  const sorted = [...units].sort((a, b) => a - b)
  const sum = units.reduce((a, b) => a + b, 0)
  t.equal(got.count, values.length, `${label}: count`)
  t.equal(got.min, sorted[0]! / 1000, `${label}: min`)
  t.equal(got.max, sorted.at(-1)! / 1000, `${label}: max`)
  const avg = Math.round(sum / values.length) / 1000
  t.ok(Math.abs(got.avg! - avg) <= Math.max(1e-9, Math.abs(avg) * 1e-12), `${label}: avg ${got.avg} = ${avg}`)
  for (const p of [50, 90, 95, 99] as const) {
    const want = nearestRank(sorted, p) / 1000
    const v = got[`p${p}`]!
    // Within 2 % of the exact value, or within one recorded unit of it (values under one unit read as 0).
    t.ok(Math.abs(v - want) <= want * 0.02 + 0.001, `${label}: p${p} ${v} within 2 % of ${want}`)
  }
}

async function storedTokens (store: MetricsStore, model: string): Promise<{ in: number, out: number }> {
  const { entityKey } = await import('../../src/store/keys.js')
  const { bucketName } = await import('../../src/metrics/buckets.js')
  const hours = [bucketName('hour', Date.now() - 3_600_000), bucketName('hour', Date.now())]
  const [[f]] = await store.read([{ keys: hours.map((h) => entityKey('model', model, 'stats', h)), slots: [0, 0], nSlots: 1 }]) as [[Record<string, string>]]
  return { in: Number(f['tokens:in'] ?? 0), out: Number(f['tokens:out'] ?? 0) }
}

async function verify (t: Test, app: FastifyInstance, store: MetricsStore, model: string, events: Ev[]): Promise<void> {
  const mine = events.filter((e) => e.model === model)
  const res = await app.inject({ url: `/api/metrics/realtime?id=${encodeURIComponent(model)}&window=5m` })
  t.equal(res.statusCode, 200)
  const body = res.json() as { requests: number, successes: number, failures: number, errors: Record<string, number>, ttft_ms: StatsBody, total_time_ms: StatsBody, output_tokens_per_second: StatsBody }
  t.equal(body.requests, mine.length, `${model}: requests`)
  t.equal(body.successes, mine.filter((e) => e.success).length, `${model}: successes`)
  for (const type of ['timeout', 'rate_limit', 'network', 'other'] as const) {
    t.equal(body.errors[type], mine.filter((e) => !e.success && (e.error_type ?? 'other') === type).length, `${model}: errors.${type}`)
  }
  checkStats(t, body.ttft_ms, mine.flatMap((e) => e.ttft_ms === undefined ? [] : [e.ttft_ms]), `${model} ttft`)
  checkStats(t, body.total_time_ms, mine.flatMap((e) => e.total_time_ms === undefined ? [] : [e.total_time_ms]), `${model} total`)
  checkStats(t, body.output_tokens_per_second, mine.flatMap((e) => { const v = tps(e); return v === undefined ? [] : [v] }), `${model} tps`)
  const stored = await storedTokens(store, model)
  t.equal(stored.in, mine.reduce((a, e) => a + (e.input_tokens ?? 0), 0), `${model}: input token sum exact`)
  t.equal(stored.out, mine.reduce((a, e) => a + (e.output_tokens ?? 0), 0), `${model}: output token sum exact`)
}

async function roundTrips (t: Test, store: MetricsStore, label: string): Promise<void> {
  const config = defaultConfig({ flushIntervalMs: 20, cacheTtlMs: 0, rateLimitMax: 0 })
  const app = await buildApp({ config, store, logger: false })
  t.teardown(() => app.close())
  await app.ready()
  let run = 0

  t.test(`${label}: random batches of ordinary and extreme values`, async (t) => {
    await fc.assert(fc.asyncProperty(fc.array(fc.array(event(['a', 'b', 'c']), { minLength: 1, maxLength: 120 }), { minLength: 1, maxLength: 4 }), async (batches) => {
      const prefix = `rt${run++}`
      const named = batches.map((b) => b.map((e) => ({ ...e, model: `${prefix}/${e.model}` })))
      for (const b of named) {
        const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: b })
        if (res.statusCode !== 202) throw new Error(`${res.statusCode} ${res.body}`)
      }
      if (!(await app.flusher.flush())) throw new Error('not flushed')
      const all = named.flat()
      const sub = t.test(prefix, async (t) => { for (const m of new Set(all.map((e) => e.model))) await verify(t, app, store, m, all) })
      await sub
      return true
    }), { numRuns: RUNS, seed: SEED })
  })

  t.test(`${label}: whole batches of each field's extreme`, async (t) => {
    const extremes: Record<string, Ev> = {
      longest: { model: '', success: true, ttft_ms: 0, total_time_ms: MAX_MS, input_tokens: MAX_TOKENS, output_tokens: MAX_TOKENS },
      'ttft-at-end': { model: '', success: true, ttft_ms: MAX_MS, total_time_ms: MAX_MS, output_tokens: MAX_TOKENS },
      // The fastest generation that gives a sample: 10^7 tokens in 1 ms, 10^10 tokens/s.
      fastest: { model: '', success: true, ttft_ms: 0, total_time_ms: 1, output_tokens: MAX_TOKENS },
      instant: { model: '', success: true, ttft_ms: 0, total_time_ms: 0.001, output_tokens: MAX_TOKENS },
      whole: { model: '', success: true, ttft_ms: 10, total_time_ms: 2000, output_tokens: MAX_TOKENS, streamed: false },
      failed: { model: '', success: false, error_type: 'timeout', total_time_ms: MAX_MS }
    }
    for (const [name, e] of Object.entries(extremes)) {
      const model = `x-${label}/${name}`
      const events = Array.from({ length: 1000 }, () => ({ ...e, model }))
      for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: events })).statusCode, 202)
      t.ok(await app.flusher.flush(), `${name}: flushed`)
      await verify(t, app, store, model, [...events, ...events, ...events])
    }
    t.equal(app.flusher.setAsideGroups, 0, 'nothing set aside')
  })
}

t.test('embedded store', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await roundTrips(t, store, 'memory')
})

t.test('Redis', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const { RedisStore } = await import('../../src/store/redis-store.js')
  const store = new RedisStore({ url: redis.url })
  await store.connect(2000)
  t.teardown(() => store.close())
  await roundTrips(t, store, 'redis')
})
