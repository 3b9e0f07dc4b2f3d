import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from '../helpers/app.js'

const MINUTE = 60_000
const HOUR = 3_600_000
const URL_BASE = '/api/metrics/realtime'

type Json = Record<string, unknown>
type EntityType = 'model' | 'provider' | 'gateway'
type WindowName = '5m' | '15m' | '1h' | '6h' | '24h'
type ErrorType = 'timeout' | 'rate_limit' | 'network' | 'other'

interface StatsBody { count: number, avg: number | null, min: number | null, max: number | null, p50: number | null, p90: number | null, p95: number | null, p99: number | null }
interface GatewayFetches { fetches: number, errors: number, timeouts: number, response_time_ms: StatsBody, last_model_count: number | null }
interface RealtimeBody {
  type: string
  id: string
  window: { from: string, to: string, seconds: number }
  requests: number
  successes: number
  failures: number
  success_rate: number | null
  errors: Record<ErrorType, number>
  ttft_ms: StatsBody
  total_time_ms: StatsBody
  output_tokens_per_second: StatsBody
  health_score: number | null
  generated_at: string
  gateway_fetches?: GatewayFetches
}
interface ErrorBody { statusCode: number, error: string, message: string, code?: string }

/** Window definitions as docs/api.md states them: bucket size, number of buckets, nominal seconds. */
const WINDOW_DEFS: Record<WindowName, { size: number, buckets: number, seconds: number }> = {
  '5m': { size: MINUTE, buckets: 5, seconds: 300 },
  '15m': { size: MINUTE, buckets: 15, seconds: 900 },
  '1h': { size: MINUTE, buckets: 60, seconds: 3600 },
  '6h': { size: HOUR, buckets: 6, seconds: 21_600 },
  '24h': { size: HOUR, buckets: 24, seconds: 86_400 }
}
const WINDOW_LIST = Object.keys(WINDOW_DEFS) as WindowName[]

/** Start of the oldest bucket a window counts when answered at `to`. */
function windowFrom (w: WindowName, to: number): number {
  const { size, buckets } = WINDOW_DEFS[w]
  return Math.floor(to / size) * size - (buckets - 1) * size
}

// ---------------------------------------------------------------------------------------------------
// Independent reference computations (docs/api.md), from the raw events

/** Deterministic PRNG (mulberry32) so the data set is the same on every run. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function round2 (x: number): number {
  return Math.round(x * 100) / 100
}

/** 100 × Wilson score lower bound, z = 1.96, written with counts: (s + z²/2 − z·√(s(n−s)/n + z²/4)) / (n + z²). */
function wilsonScore (s: number, n: number): number | null {
  if (n === 0) return null
  const z = 1.96
  const lower = (s + (z * z) / 2 - z * Math.sqrt((s * (n - s)) / n + (z * z) / 4)) / (n + z * z)
  return round2(100 * Math.max(0, lower))
}

interface ExpectedStats { count: number, avg: number | null, ranked: number[] }

/** count, exact avg (values rounded to the thousandth, mean rounded to 3 decimals), sorted samples. */
function expectStats (values: number[]): ExpectedStats {
  if (values.length === 0) return { count: 0, avg: null, ranked: [] }
  let units = 0
  for (const v of values) units += Math.round(v * 1000)
  return { count: values.length, avg: Math.round(units / values.length) / 1000, ranked: [...values].sort((a, b) => a - b) }
}

/** The sample of nearest rank ceil(p/100 × n), 1-based. */
function nearestRank (sorted: number[], p: number): number {
  const n = sorted.length
  const rank = Math.max(1, Math.floor((p * n + 99) / 100))
  const v = sorted[rank - 1]
  if (v === undefined) throw new Error('rank out of range')
  return v
}

function within2pct (t: Test, actual: number | null, expected: number, label: string): void {
  if (actual === null) {
    t.fail(`${label}: expected about ${expected}, got null`)
    return
  }
  // 2% of the sample's value, plus the rounding of reported values to 3 decimals
  const tol = 0.02 * Math.abs(expected) + 0.001
  t.ok(Math.abs(actual - expected) <= tol, `${label}: ${actual} within 2% of ${expected}`)
}

function checkStats (t: Test, actual: StatsBody, values: number[], label: string): void {
  const e = expectStats(values)
  t.equal(actual.count, e.count, `${label}.count`)
  if (e.count === 0) {
    t.same(actual, { count: 0, avg: null, min: null, max: null, p50: null, p90: null, p95: null, p99: null }, `${label}: empty stats`)
    return
  }
  t.equal(actual.avg, e.avg, `${label}.avg exact`)
  within2pct(t, actual.min, e.ranked[0] ?? NaN, `${label}.min`)
  within2pct(t, actual.max, e.ranked[e.ranked.length - 1] ?? NaN, `${label}.max`)
  for (const p of [50, 90, 95, 99] as const) within2pct(t, actual[`p${p}`], nearestRank(e.ranked, p), `${label}.p${p}`)
}

// ---------------------------------------------------------------------------------------------------
// The data set

interface ChatIn {
  model: string
  provider: string
  gateway: string
  success: boolean
  errorType: ErrorType
  ttft?: number
  total?: number
  out?: number
  ts: number
  body: Json
}

interface FetchIn {
  gateway: string
  success: boolean
  timeout: boolean
  modelCount?: number
  rt?: number
  ts: number
  arrival: number
  body: Json
}

const MODELS = [
  // [model, provider it belongs to, provider field to send (undefined: derived from the model), success probability]
  { model: 'alpha/model-one', provider: 'alpha', sendProvider: (r: number) => (r < 0.3 ? 'alpha' : undefined), pSuccess: 0.93 },
  { model: 'alpha/model-two:free', provider: 'alpha', sendProvider: () => undefined, pSuccess: 0.7 },
  { model: 'model-three', provider: 'beta', sendProvider: () => 'beta', pSuccess: 0.45 }
] as const
const ERROR_TYPES: ErrorType[] = ['timeout', 'rate_limit', 'network', 'other']

/** An event time `offset` ms before `t0`, sent as epoch ms, ISO Z or ISO +02:00. */
function tsField (ts: number, i: number): number | string {
  switch (i % 3) {
    case 0: return ts
    case 1: return new Date(ts).toISOString()
    default: return new Date(ts + 2 * HOUR).toISOString().replace('Z', '+02:00')
  }
}

/** Offsets: most in the last few minutes, some in the last hour, some hours back. */
function offsetOf (r: () => number): number {
  const x = r()
  if (x < 0.7) return Math.floor(r() * 13 * MINUTE)
  if (x < 0.8) return 16 * MINUTE + Math.floor(r() * 40 * MINUTE)
  if (x < 0.9) return 2 * HOUR + 5 * MINUTE + Math.floor(r() * 2 * HOUR)
  return 7 * HOUR + Math.floor(r() * 13 * HOUR)
}

/** A time in ms with at most 3 decimals, sometimes with a 4th one that rounds clearly. */
function msValue (r: () => number, max: number): number {
  const base = Math.floor(r() * max * 1000) / 1000
  const x = r()
  if (x < 0.05) return base + 0.0002
  if (x < 0.1) return base + 0.0008
  return base
}

function makeChats (t0: number): ChatIn[] {
  const r = rng(20240501)
  const out: ChatIn[] = []
  for (let i = 0; i < 1000; i++) {
    const m = MODELS[Math.floor(r() * MODELS.length)] ?? MODELS[0]
    const body: Json = { model: m.model }
    const sendProvider = m.sendProvider(r())
    if (sendProvider !== undefined) body.provider = sendProvider
    const g = r()
    const gateway = g < 0.5 ? 'gw-east' : 'default'
    if (g < 0.5) body.gateway = 'gw-east'
    else if (g < 0.6) body.gateway = 'default'
    const success = r() < m.pSuccess
    body.success = success
    let errorType: ErrorType = 'other'
    if (!success) {
      const e = r()
      if (e >= 0.2) {
        errorType = ERROR_TYPES[Math.floor(r() * ERROR_TYPES.length)] ?? 'other'
        body.error_type = errorType
      }
    }
    const ev: ChatIn = { model: m.model, provider: m.provider, gateway, success, errorType, ts: 0, body }

    const tt = r()
    if (tt >= 0.1) {
      ev.ttft = tt < 0.15 ? 0 : tt > 0.98 ? msValue(r, 3_600_000) : msValue(r, 3000)
      body.ttft_ms = ev.ttft
    }
    const tot = r()
    if (tot >= 0.1) {
      const start = ev.ttft ?? 0
      if (tot < 0.15) ev.total = start // generation time 0: no tokens per second
      else if (tot < 0.18) ev.total = Math.max(0, start - msValue(r, 500)) // total below ttft: no tokens per second
      else ev.total = Math.min(3_600_000, start + msValue(r, 20_000))
      body.total_time_ms = ev.total
    }
    const o = r()
    if (o >= 0.15) {
      ev.out = o < 0.2 ? 0 : Math.floor(r() * 4000)
      body.output_tokens = ev.out
    }
    if (r() < 0.7) body.input_tokens = Math.floor(r() * 20_000)

    ev.ts = t0 - offsetOf(r)
    body.timestamp = tsField(ev.ts, i)
    body.unknown_field = i
    out.push(ev)
  }
  return out
}

function makeFetches (t0: number): FetchIn[] {
  const r = rng(777)
  const out: FetchIn[] = []
  const push = (gateway: string, success: boolean, timeoutSent: 'timeout' | 'error' | undefined, modelCount: number | undefined, rt: number | undefined, ts: number): void => {
    const body: Json = { gateway, status: success ? 'success' : 'error', timestamp: tsField(ts, out.length) }
    if (timeoutSent !== undefined) body.error_type = timeoutSent
    if (modelCount !== undefined) body.model_count = modelCount
    if (rt !== undefined) body.response_time_ms = rt
    out.push({ gateway, success, timeout: timeoutSent === 'timeout', modelCount, rt, ts, arrival: out.length, body })
  }
  for (let i = 0; i < 120; i++) {
    const success = r() < 0.7
    let et: 'timeout' | 'error' | undefined
    if (!success) {
      const e = r()
      et = e < 0.4 ? 'timeout' : e < 0.7 ? 'error' : undefined
    }
    const mc = success ? 50 + Math.floor(r() * 450) : (r() < 0.3 ? 999 : undefined)
    const rt = r() < 0.1 ? undefined : msValue(r, 5000)
    push('gw-east', success, et, mc, rt, t0 - MINUTE - offsetOf(r))
  }
  // The latest successful fetches: two at the same time, the one that arrives later wins; a later
  // failed fetch with a count and an older successful one arriving last must not win.
  push('gw-east', true, undefined, 111, 10, t0 - 30_000)
  push('gw-east', true, undefined, 222, 20, t0 - 30_000)
  push('gw-east', false, 'timeout', 999, 30, t0 - 10_000)
  push('gw-east', true, undefined, 333, 40, t0 - 45_000)
  // a gateway with fetches and no chat traffic
  push('gw-fetch-only', false, undefined, undefined, 1500, t0 - 2 * MINUTE)
  push('gw-fetch-only', true, undefined, 42, 250.5, t0 - 3 * MINUTE)
  push('gw-fetch-only', false, 'timeout', undefined, undefined, t0 - 4 * HOUR)
  return out
}

function tokensPerSecond (e: ChatIn): number | undefined {
  if (e.out === undefined || e.total === undefined || e.ttft === undefined) return undefined
  const denominator = (e.total - e.ttft) / 1000
  return denominator > 0 ? e.out / denominator : undefined
}

function entityOf (e: ChatIn, type: EntityType): string {
  return type === 'model' ? e.model : type === 'provider' ? e.provider : e.gateway
}

function checkAnswer (t: Test, body: RealtimeBody, chats: ChatIn[], fetches: FetchIn[], type: EntityType, id: string, w: WindowName): void {
  const label = `${type}=${id} ${w}`
  const to = Date.parse(body.window.to)
  const from = windowFrom(w, to)
  t.equal(body.type, type, `${label}: type`)
  t.equal(body.id, id, `${label}: id`)
  t.equal(body.window.from, new Date(from).toISOString(), `${label}: window.from is the start of the oldest bucket`)
  t.equal(body.window.seconds, WINDOW_DEFS[w].seconds, `${label}: window.seconds`)
  t.ok(Number.isFinite(Date.parse(body.generated_at)), `${label}: generated_at is a time`)

  const sel = chats.filter((e) => entityOf(e, type) === id && e.ts >= from && e.ts <= to)
  const n = sel.length
  const s = sel.filter((e) => e.success).length
  t.equal(body.requests, n, `${label}: requests`)
  t.equal(body.successes, s, `${label}: successes`)
  t.equal(body.failures, n - s, `${label}: failures`)
  const errors: Record<ErrorType, number> = { timeout: 0, rate_limit: 0, network: 0, other: 0 }
  for (const e of sel) if (!e.success) errors[e.errorType]++
  t.same(body.errors, errors, `${label}: errors by type`)
  t.equal(body.success_rate, n === 0 ? null : round2((100 * s) / n), `${label}: success_rate`)
  t.equal(body.health_score, wilsonScore(s, n), `${label}: health_score`)
  checkStats(t, body.ttft_ms, sel.flatMap((e) => (e.ttft === undefined ? [] : [e.ttft])), `${label}: ttft_ms`)
  checkStats(t, body.total_time_ms, sel.flatMap((e) => (e.total === undefined ? [] : [e.total])), `${label}: total_time_ms`)
  checkStats(t, body.output_tokens_per_second, sel.flatMap((e) => { const v = tokensPerSecond(e); return v === undefined ? [] : [v] }), `${label}: output_tokens_per_second`)

  if (type !== 'gateway') {
    t.notOk('gateway_fetches' in body, `${label}: no gateway_fetches`)
    return
  }
  const gf = body.gateway_fetches
  if (gf === undefined) {
    t.fail(`${label}: gateway_fetches present`)
    return
  }
  const fs = fetches.filter((f) => f.gateway === id && f.ts >= from && f.ts <= to)
  t.equal(gf.fetches, fs.length, `${label}: gateway_fetches.fetches`)
  t.equal(gf.errors, fs.filter((f) => !f.success).length, `${label}: gateway_fetches.errors`)
  t.equal(gf.timeouts, fs.filter((f) => !f.success && f.timeout).length, `${label}: gateway_fetches.timeouts`)
  checkStats(t, gf.response_time_ms, fs.flatMap((f) => (f.rt === undefined ? [] : [f.rt])), `${label}: gateway_fetches.response_time_ms`)
  let latest: FetchIn | undefined
  for (const f of fs) {
    if (!f.success || f.modelCount === undefined) continue
    if (latest === undefined || f.ts > latest.ts || (f.ts === latest.ts && f.arrival > latest.arrival)) latest = f
  }
  t.equal(gf.last_model_count, latest?.modelCount ?? null, `${label}: gateway_fetches.last_model_count`)
}

async function get (app: FastifyInstance, query: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url: `${URL_BASE}${query}` })
}

async function flushAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 20; i++) if (await app.flusher.flush()) return
  throw new Error('buffer did not flush')
}

async function post (app: FastifyInstance, url: string, body: unknown): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
}

const q = (type: string, id: string, w: string): string => `?type=${type}&id=${encodeURIComponent(id)}&window=${w}`

const EMPTY_STATS: StatsBody = { count: 0, avg: null, min: null, max: null, p50: null, p90: null, p95: null, p99: null }

t.test('GET /api/metrics/realtime', async (t) => {
  t.test('1000 events over 3 models, 2 providers, 2 gateways: every entity and window', async (t) => {
    const { app } = await build(t)
    const t0 = Date.now()
    const chats = makeChats(t0)
    const fetches = makeFetches(t0)

    // sanity of the data set itself: the test exercises what it claims to
    t.equal(new Set(chats.map((e) => e.model)).size, 3, 'three models')
    t.equal(new Set(chats.map((e) => e.provider)).size, 2, 'two providers')
    t.equal(new Set(chats.map((e) => e.gateway)).size, 2, 'two gateways')
    t.ok(chats.some((e) => e.ttft !== undefined && e.total !== undefined && e.total <= e.ttft && e.out !== undefined), 'some events without a positive generation time')

    const res = await post(app, '/api/metrics/chat', chats.map((e) => e.body))
    t.equal(res.statusCode, 202, 'chat batch accepted')
    t.same(res.json(), { accepted: 1000 })
    const fr = await post(app, '/api/metrics/gateway/fetch', fetches.map((f) => f.body))
    t.equal(fr.statusCode, 202, 'fetch batch accepted')
    t.same(fr.json(), { accepted: fetches.length })
    await flushAll(app)

    const entities: Array<[EntityType, string]> = [
      ['model', 'alpha/model-one'],
      ['model', 'alpha/model-two:free'],
      ['model', 'model-three'],
      ['provider', 'alpha'],
      ['provider', 'beta'],
      ['gateway', 'gw-east'],
      ['gateway', 'default'],
      ['gateway', 'gw-fetch-only']
    ]
    for (const [type, id] of entities) {
      for (const w of WINDOW_LIST) {
        const r = await get(app, q(type, id, w))
        t.equal(r.statusCode, 200, `${type}=${id} ${w}: 200`)
        t.match(String(r.headers['cache-control']), /max-age=\d+/, `${type}=${id} ${w}: Cache-Control max-age`)
        checkAnswer(t, r.json<RealtimeBody>(), chats, fetches, type, id, w)
      }
    }

    // the windows really differ on this data set
    const counts = await Promise.all(WINDOW_LIST.map(async (w) => (await get(app, q('provider', 'alpha', w))).json<RealtimeBody>().requests))
    t.ok(counts.every((c, i) => i === 0 || c > (counts[i - 1] ?? 0)), `each window counts more than the shorter one: ${counts.join(' < ')}`)

    // defaults: type=model, window=1h
    const d = await get(app, `?id=${encodeURIComponent('alpha/model-one')}`)
    t.equal(d.statusCode, 200)
    const db = d.json<RealtimeBody>()
    t.equal(db.type, 'model', 'type defaults to model')
    t.equal(db.window.seconds, 3600, 'window defaults to 1h')
    checkAnswer(t, db, chats, fetches, 'model', 'alpha/model-one', '1h')
    const dg = await get(app, '?type=gateway&id=gw-east')
    checkAnswer(t, dg.json<RealtimeBody>(), chats, fetches, 'gateway', 'gw-east', '1h')
  })

  t.test('an id with no traffic answers 200 with zero counts and null stats', async (t) => {
    const { app } = await build(t)
    t.equal((await post(app, '/api/metrics/chat', { model: 'acme/busy', success: true, ttft_ms: 5 })).statusCode, 202)
    await flushAll(app)
    for (const type of ['model', 'provider', 'gateway'] as const) {
      for (const w of WINDOW_LIST) {
        const r = await get(app, q(type, 'nobody/nothing', w))
        t.equal(r.statusCode, 200, `${type} ${w}: 200`)
        const b = r.json<RealtimeBody>()
        t.match(b, {
          type,
          id: 'nobody/nothing',
          requests: 0,
          successes: 0,
          failures: 0,
          success_rate: null,
          health_score: null,
          errors: { timeout: 0, rate_limit: 0, network: 0, other: 0 },
          window: { seconds: WINDOW_DEFS[w].seconds }
        }, `${type} ${w}: zero counts`)
        t.same(b.ttft_ms, EMPTY_STATS, `${type} ${w}: ttft null stats`)
        t.same(b.total_time_ms, EMPTY_STATS, `${type} ${w}: total null stats`)
        t.same(b.output_tokens_per_second, EMPTY_STATS, `${type} ${w}: tps null stats`)
        if (type === 'gateway') {
          t.same(b.gateway_fetches, { fetches: 0, errors: 0, timeouts: 0, response_time_ms: EMPTY_STATS, last_model_count: null }, `${w}: gateway_fetches zero`)
        } else {
          t.notOk('gateway_fetches' in b, `${type} ${w}: no gateway_fetches`)
        }
      }
    }
  })

  t.test('window object: from is the start of the oldest bucket, to the answer time', async (t) => {
    const { app } = await build(t)
    for (const w of WINDOW_LIST) {
      const before = Date.now()
      const b = (await get(app, q('model', 'x', w))).json<RealtimeBody>()
      const after = Date.now()
      const to = Date.parse(b.window.to)
      t.ok(to >= before && to <= after, `${w}: to is the time of the answer`)
      t.equal(b.window.to, new Date(to).toISOString(), `${w}: to is ISO 8601 UTC`)
      const { size, buckets } = WINDOW_DEFS[w]
      const currentStart = to - (to % size)
      const from = Date.parse(b.window.from)
      t.equal(from, currentStart - (buckets - 1) * size, `${w}: from = start of the bucket ${buckets - 1} before the current one`)
      t.equal(from % size, 0, `${w}: from on a bucket boundary`)
      t.equal(b.window.seconds, WINDOW_DEFS[w].seconds, `${w}: seconds`)
    }
  })

  t.test('an event 3 hours ago counts in 6h and 24h, not in 1h', async (t) => {
    const { app } = await build(t)
    const ts = Date.now() - 3 * HOUR
    const r = await post(app, '/api/metrics/chat', { model: 'acme/three-hours', gateway: 'gw-3h', success: false, error_type: 'network', ttft_ms: 120, total_time_ms: 1120, output_tokens: 500, timestamp: new Date(ts).toISOString() })
    t.equal(r.statusCode, 202)
    const f = await post(app, '/api/metrics/gateway/fetch', { gateway: 'gw-3h', status: 'success', model_count: 17, response_time_ms: 80, timestamp: ts })
    t.equal(f.statusCode, 202)
    await flushAll(app)
    for (const w of WINDOW_LIST) {
      const inWindow = w === '6h' || w === '24h'
      for (const [type, id] of [['model', 'acme/three-hours'], ['provider', 'acme'], ['gateway', 'gw-3h']] as const) {
        const b = (await get(app, q(type, id, w))).json<RealtimeBody>()
        t.equal(b.requests, inWindow ? 1 : 0, `${type} ${w}: requests`)
        t.equal(b.errors.network, inWindow ? 1 : 0, `${type} ${w}: errors.network`)
        if (inWindow) {
          t.match(b.output_tokens_per_second, { count: 1, avg: 500, min: 500, max: 500 }, `${type} ${w}: 500 tokens in 1 s`)
          t.equal(b.success_rate, 0, `${type} ${w}: success_rate`)
          t.equal(b.health_score, 0, `${type} ${w}: health_score`)
        }
        if (type === 'gateway') {
          t.match(b.gateway_fetches, { fetches: inWindow ? 1 : 0, errors: 0, timeouts: 0, last_model_count: inWindow ? 17 : null }, `gateway ${w}: gateway_fetches`)
        }
      }
    }
  })

  t.test('small exact cases: health score, success rate, percentiles by nearest rank', async (t) => {
    const { app } = await build(t)
    const ts = Date.now() - MINUTE
    // 10 ttft values 1..10 ms; nearest rank: p50 = 5, p90 = 9, p95 = 10, p99 = 10
    const events = Array.from({ length: 10 }, (_, i) => ({ model: 'acme/ten', success: i < 7, ttft_ms: i + 1, total_time_ms: (i + 1) * 100, output_tokens: 99 * (i + 1), timestamp: ts }))
    t.equal((await post(app, '/api/metrics/chat', events)).statusCode, 202)
    await flushAll(app)
    const b = (await get(app, q('model', 'acme/ten', '5m'))).json<RealtimeBody>()
    t.equal(b.requests, 10)
    t.equal(b.successes, 7)
    t.equal(b.success_rate, 70)
    t.equal(b.health_score, wilsonScore(7, 10))
    t.equal(b.health_score, 39.68, 'Wilson lower bound of 7/10 is 39.68 %')
    t.equal(b.ttft_ms.avg, 5.5)
    t.equal(b.ttft_ms.min, 1)
    t.equal(b.ttft_ms.max, 10)
    within2pct(t, b.ttft_ms.p50, 5, 'p50')
    within2pct(t, b.ttft_ms.p90, 9, 'p90')
    within2pct(t, b.ttft_ms.p95, 10, 'p95')
    within2pct(t, b.ttft_ms.p99, 10, 'p99')
    // output tokens per second: 99(i+1) / ((100(i+1) − (i+1)) / 1000) = 1000 for every event
    t.match(b.output_tokens_per_second, { count: 10, avg: 1000, min: 1000, max: 1000 })
  })

  t.test('ids with key-significant characters stay separate and add up over buckets', async (t) => {
    const { app } = await build(t)
    const now = Date.now()
    // [id, events 3 minutes ago, events 1 minute ago]
    const ids: Array<[string, number, number]> = [
      ['a{b}', 1, 2],
      ['a%7Bb%7D', 2, 1],
      ['acme/x:max', 2, 1],
      ['acme/x:min', 1, 3],
      ['last:x', 1, 1],
      ['acme/%', 3, 0]
    ]
    const events = ids.flatMap(([model, older, newer]) => [
      ...Array.from({ length: older }, () => ({ model, gateway: `gw-${model}`, success: true, ttft_ms: 10, timestamp: now - 3 * MINUTE })),
      ...Array.from({ length: newer }, () => ({ model, gateway: `gw-${model}`, success: false, ttft_ms: 30, timestamp: now - MINUTE }))
    ])
    t.equal((await post(app, '/api/metrics/chat', events)).statusCode, 202)
    await flushAll(app)
    for (const [id, older, newer] of ids) {
      for (const type of ['model', 'gateway'] as const) {
        const entity = type === 'model' ? id : `gw-${id}`
        const b = (await get(app, q(type, entity, '15m'))).json<RealtimeBody>()
        t.equal(b.id, entity, `${type} ${entity}: id echoed`)
        t.equal(b.requests, older + newer, `${type} ${entity}: requests`)
        t.equal(b.successes, older, `${type} ${entity}: successes`)
        t.equal(b.ttft_ms.count, older + newer, `${type} ${entity}: ttft count`)
      }
    }
  })

  t.test('bad query parameters answer 400 naming the parameter', async (t) => {
    const { app } = await build(t)
    const cases: Array<[string, string, string]> = [
      ['missing id', '', 'querystring.id'],
      ['missing id with type and window', '?type=model&window=5m', 'querystring.id'],
      ['empty id', '?id=', 'querystring.id'],
      ['id over 256 chars', `?id=${'x'.repeat(257)}`, 'querystring.id'],
      ['bad type', '?id=x&type=region', 'querystring.type'],
      ['bad type (case)', '?id=x&type=Model', 'querystring.type'],
      ['bad window', '?id=x&window=2h', 'querystring.window'],
      ['bad window (number)', '?id=x&window=60', 'querystring.window'],
      ['empty window', '?id=x&window=', 'querystring.window']
    ]
    for (const [name, query, field] of cases) {
      const r = await get(app, query)
      t.equal(r.statusCode, 400, `${name}: 400`)
      const b = r.json<ErrorBody>()
      t.equal(b.statusCode, 400, `${name}: statusCode`)
      t.equal(b.error, 'Bad Request', `${name}: error`)
      t.ok(b.message.includes(field), `${name}: message names ${field} (${b.message})`)
    }
  })

  t.test('Cache-Control carries max-age', async (t) => {
    const { app } = await build(t)
    const r = await get(app, q('model', 'x', '5m'))
    t.equal(r.statusCode, 200)
    t.match(String(r.headers['cache-control']), /(^|,\s*)max-age=\d+/)
    const { app: cached } = await build(t, { config: { cacheTtlMs: 30_000 } })
    const c = await get(cached, q('model', 'x', '5m'))
    const m = /max-age=(\d+)/.exec(String(c.headers['cache-control']))
    t.ok(m !== null, 'max-age with the cache on')
    const age = Number(m?.[1])
    t.ok(age >= 0 && age <= 30, `max-age ${age} within the cache lifetime`)
  })
})
