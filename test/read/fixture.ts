/**
 * A deterministic fixture for the read side (leaderboard, provider summary, trends) and reference
 * computations made from the raw events only: nothing here imports from src/, so every expectation
 * is independent of the implementation it checks.
 *
 * Events are generated relative to a `now` (epoch ms) by a seeded PRNG; the same seed and `now`
 * give the same events. Which events a read counts is decided after the read, from the window the
 * answer reports (`window.from`) or the points' `t`s, so a minute or hour boundary passing between
 * posting and reading never makes an expectation wrong.
 */
import type { FastifyInstance } from 'fastify'

export const MINUTE = 60_000
export const HOUR = 3_600_000
export const CHAT_URL = '/api/metrics/chat'

export const ERROR_TYPES = ['timeout', 'rate_limit', 'network', 'other'] as const
export type ErrorType = typeof ERROR_TYPES[number]

/** One chat event exactly as posted (optional fields absent, not undefined, in the JSON). */
export interface FixtureEvent {
  model: string
  provider?: string
  gateway?: string
  success: boolean
  error_type?: ErrorType
  ttft_ms?: number
  total_time_ms?: number
  input_tokens?: number
  output_tokens?: number
  timestamp: number
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32) and a few distributions
// ---------------------------------------------------------------------------------------------

export type Rng = () => number

export function mulberry32 (seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4_294_967_296
  }
}

function normal (r: Rng): number {
  const u = Math.max(r(), 1e-12)
  const v = r()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

function intBetween (r: Rng, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1))
}

function pick<T> (r: Rng, items: readonly T[]): T {
  const item = items[Math.floor(r() * items.length)]
  if (item === undefined) throw new Error('pick from an empty list')
  return item
}

function shuffle<T> (r: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    const a = items[i] as T
    items[i] = items[j] as T
    items[j] = a
  }
  return items
}

/** A time in ms with at most 3 decimals (whole microseconds), so sums are exact in integer µs. */
function micros (ms: number): number {
  return Math.round(ms * 1000) / 1000
}

// ---------------------------------------------------------------------------------------------
// The fixture
// ---------------------------------------------------------------------------------------------

interface ModelSpec {
  model: string
  /** Events spread uniformly over [span[0], span[1]] ms before now. */
  count: number
  span: [number, number]
  /** Extra events in the last 12 minutes (so the 5m and 15m windows have traffic). */
  recent?: number
  /** Exactly this many successes among all the model's events (ties); else each succeeds with okRate. */
  successes?: number
  okRate?: number
  /** The `provider` field to post, or undefined to let the service default it from the model id. */
  provider: (r: Rng) => string | undefined
  /** Whether the events carry ttft/total/tokens at all. */
  timings: boolean
  /** Typical time to first token, ms. */
  ttftBase: number
}

const SECOND = 1000
const GATEWAYS: ReadonlyArray<string | undefined> = ['gw-east', 'gw-west', undefined]

/**
 * ~10 models, 3 active providers (openai, anthropic, mistral) plus `legacy`, whose only traffic is
 * 25–30 h old. Deliberate properties (checked by `fixtureFacts`):
 * - mistral:large (21/26) and mistral:medium (13/15): the same 2-decimal health score (62.12), different
 *   request totals: the tie goes to more requests, whatever the order;
 * - anthropic/claude-3-haiku and anthropic/claude-3-opus: both 18/20, a tie decided by model id;
 * - mistral:tiny: 2 requests, no timings (p50s null), for min_requests;
 * - llama-3-70b: provider set explicitly, sometimes `mistral`, sometimes `openai` (its leaderboard
 *   provider is its latest event's; it counts as a model of both providers);
 * - openai/gpt-4o, anthropic/claude-3.5-sonnet: provider explicit on some events, defaulted on others.
 */
export const MODEL_SPECS: readonly ModelSpec[] = [
  { model: 'openai/gpt-4o', count: 650, span: [10 * SECOND, 30 * HOUR], recent: 40, okRate: 0.96, provider: (r) => r() < 0.3 ? 'openai' : undefined, timings: true, ttftBase: 420 },
  { model: 'openai/gpt-4o-mini', count: 450, span: [10 * SECOND, 30 * HOUR], recent: 30, okRate: 0.9, provider: () => undefined, timings: true, ttftBase: 260 },
  { model: 'anthropic/claude-3.5-sonnet', count: 550, span: [10 * SECOND, 30 * HOUR], recent: 35, okRate: 0.93, provider: (r) => r() < 0.5 ? 'anthropic' : undefined, timings: true, ttftBase: 610 },
  { model: 'anthropic/claude-3-haiku', count: 20, span: [2 * MINUTE, 40 * MINUTE], successes: 18, provider: () => 'anthropic', timings: true, ttftBase: 180 },
  { model: 'anthropic/claude-3-opus', count: 20, span: [2 * MINUTE, 40 * MINUTE], successes: 18, provider: () => undefined, timings: true, ttftBase: 1400 },
  { model: 'mistral:large', count: 26, span: [2 * MINUTE, 40 * MINUTE], successes: 21, provider: () => undefined, timings: true, ttftBase: 520 },
  { model: 'mistral:medium', count: 15, span: [2 * MINUTE, 40 * MINUTE], successes: 13, provider: () => 'mistral', timings: true, ttftBase: 350 },
  { model: 'mistral:tiny', count: 2, span: [3 * MINUTE, 20 * MINUTE], successes: 1, provider: () => undefined, timings: false, ttftBase: 0 },
  { model: 'llama-3-70b', count: 280, span: [10 * SECOND, 20 * HOUR], recent: 20, okRate: 0.8, provider: (r) => r() < 0.5 ? 'mistral' : 'openai', timings: true, ttftBase: 900 },
  { model: 'legacy/old-model', count: 80, span: [25 * HOUR, 30 * HOUR], okRate: 0.7, provider: () => undefined, timings: true, ttftBase: 2000 }
]

export const FIXTURE_SEED = 0x5EED2024

/** The fixture's events for `now`, shuffled, every timestamp distinct and in the past. */
export function makeFixture (now: number, seed = FIXTURE_SEED): FixtureEvent[] {
  const r = mulberry32(seed)
  const used = new Set<number>()
  const stamp = (offset: number): number => {
    let ts = Math.round(now - offset)
    while (used.has(ts)) ts--
    used.add(ts)
    return ts
  }
  const events: FixtureEvent[] = []
  for (const spec of MODEL_SPECS) {
    const offsets: number[] = []
    for (let i = 0; i < spec.count; i++) offsets.push(spec.span[0] + r() * (spec.span[1] - spec.span[0]))
    for (let i = 0; i < (spec.recent ?? 0); i++) offsets.push(10 * SECOND + r() * (12 * MINUTE - 10 * SECOND))
    const n = offsets.length
    let flags: boolean[]
    if (spec.successes !== undefined) {
      flags = shuffle(r, Array.from({ length: n }, (_, i) => i < (spec.successes ?? 0)))
    } else {
      flags = Array.from({ length: n }, () => r() < (spec.okRate ?? 1))
    }
    offsets.forEach((offset, i) => {
      const success = flags[i] ?? true
      const e: FixtureEvent = { model: spec.model, success, timestamp: stamp(offset) }
      const provider = spec.provider(r)
      if (provider !== undefined) e.provider = provider
      const gateway = GATEWAYS[Math.floor(r() * GATEWAYS.length)]
      if (gateway !== undefined) e.gateway = gateway
      if (!success) {
        const roll = r()
        // some failures leave error_type out: it counts as `other`
        if (roll >= 0.15) e.error_type = pick(r, ERROR_TYPES)
      }
      if (spec.timings) {
        const ttft = micros(Math.min(60_000, Math.max(5, spec.ttftBase * Math.exp(0.6 * normal(r)))))
        const hasTtft = success ? r() >= 0.05 : r() >= 0.5
        const hasTotal = r() >= 0.04
        if (hasTtft) e.ttft_ms = ttft
        if (hasTotal) {
          // 2 % of the events have total = ttft: no generation time, so no tokens/s sample
          e.total_time_ms = r() < 0.02 ? ttft : micros(ttft + 50 + ttft * 6 * r() + 3000 * r())
        }
        if (r() >= 0.05) e.output_tokens = intBetween(r, 5, 1500)
        if (r() >= 0.1) e.input_tokens = intBetween(r, 10, 20_000)
      }
      events.push(e)
    })
  }
  return shuffle(r, events)
}

// ---------------------------------------------------------------------------------------------
// Posting
// ---------------------------------------------------------------------------------------------

/** Flushes until nothing is pending (a timer-started flush may be running when we ask). */
export async function flushAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) if (await app.flusher.flush()) return
  throw new Error('the ingest buffer did not flush')
}

/** Posts `events` in batches via POST /api/metrics/chat, then flushes them to the store. */
export async function postEvents (app: FastifyInstance, events: readonly FixtureEvent[], batchSize = 500): Promise<void> {
  for (let i = 0; i < events.length; i += batchSize) {
    const batch = events.slice(i, i + batchSize)
    const res = await app.inject({ method: 'POST', url: CHAT_URL, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(batch) })
    if (res.statusCode !== 202) throw new Error(`POST ${CHAT_URL} answered ${res.statusCode}: ${res.body}`)
    const body = res.json<{ accepted: number }>()
    if (body.accepted !== batch.length) throw new Error(`accepted ${body.accepted} of ${batch.length}`)
  }
  await flushAll(app)
}

// ---------------------------------------------------------------------------------------------
// Reference computations (docs/api.md), from the raw events only
// ---------------------------------------------------------------------------------------------

/** docs/api.md: the part before the first `/`, else before the first `:`, else `unknown`; empty → unknown. */
export function defaultProvider (model: string): string {
  const m = /^([^/]*)\//.exec(model) ?? /^([^:]*):/.exec(model)
  const part = m?.[1]
  return part === undefined || part === '' ? 'unknown' : part
}

export function providerOf (e: FixtureEvent): string {
  return e.provider ?? defaultProvider(e.model)
}

export function gatewayOf (e: FixtureEvent): string {
  return e.gateway ?? 'default'
}

export function errorTypeOf (e: FixtureEvent): ErrorType | null {
  return e.success ? null : (e.error_type ?? 'other')
}

/** Output tokens per second of one event (docs/api.md), or undefined. */
export function tokensPerSecond (e: FixtureEvent): number | undefined {
  if (e.output_tokens === undefined || e.ttft_ms === undefined || e.total_time_ms === undefined) return undefined
  const genMs = e.total_time_ms - e.ttft_ms
  return genMs > 0 ? e.output_tokens / (genMs / 1000) : undefined
}

/** Events the window starting at `fromMs` counts (every fixture event is in the past). */
export function inWindow (events: readonly FixtureEvent[], fromMs: number): FixtureEvent[] {
  return events.filter((e) => e.timestamp >= fromMs)
}

/** Start of the UTC hour / minute holding `ms`. */
export function floorTo (ms: number, size: number): number {
  return ms - (((ms % size) + size) % size)
}

/** 100 × the Wilson score lower bound (z = 1.96), unrounded; written as (s + z²/2 − z√(s(n−s)/n + z²/4)) / (n + z²). */
export function wilsonLowerPct (successes: number, requests: number): number {
  const z = 1.96
  const z2 = z * z
  const lower = (successes + z2 / 2 - z * Math.sqrt((successes * (requests - successes)) / requests + z2 / 4)) / (requests + z2)
  return 100 * Math.max(0, lower)
}

export function healthScore (successes: number, requests: number): number | null {
  if (requests === 0) return null
  return Math.round(wilsonLowerPct(successes, requests) * 100) / 100
}

/** 100 × s / n rounded half up to 2 decimals, in exact integer arithmetic. */
export function successRate (successes: number, requests: number): number | null {
  if (requests === 0) return null
  const hundredths = Math.floor((20_000 * successes + requests) / (2 * requests))
  return hundredths / 100
}

export interface Counts {
  requests: number
  successes: number
  failures: number
  errors: Record<ErrorType, number>
  success_rate: number | null
  health_score: number | null
}

export function counts (events: readonly FixtureEvent[]): Counts {
  const errors: Record<ErrorType, number> = { timeout: 0, rate_limit: 0, network: 0, other: 0 }
  let successes = 0
  for (const e of events) {
    const et = errorTypeOf(e)
    if (et === null) successes++
    else errors[et]++
  }
  return {
    requests: events.length,
    successes,
    failures: events.length - successes,
    errors,
    success_rate: successRate(successes, events.length),
    health_score: healthScore(successes, events.length)
  }
}

/** docs/api.md "Token totals": the sums of the events' input_tokens and output_tokens; an event without one adds nothing. */
export interface TokenSums { input_tokens: number, output_tokens: number }

export function tokenSums (events: readonly FixtureEvent[]): TokenSums {
  let input = 0n
  let output = 0n
  for (const e of events) {
    input += BigInt(e.input_tokens ?? 0)
    output += BigInt(e.output_tokens ?? 0)
  }
  // Sums past 2^53 could not be told apart from their neighbours in a JSON number: keep tests below it.
  if (input > BigInt(Number.MAX_SAFE_INTEGER) || output > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('token sums past 2^53 − 1')
  return { input_tokens: Number(input), output_tokens: Number(output) }
}

export type StatName = 'avg' | 'min' | 'max' | 'p50' | 'p90' | 'p95' | 'p99'
export const STAT_NAMES: readonly StatName[] = ['avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99']

export interface RefStats {
  count: number
  avg: number | null
  min: number | null
  max: number | null
  p50: number | null
  p90: number | null
  p95: number | null
  p99: number | null
}

/** The sample of rank ceil(p/100 × n) (1-based) in ascending order; rank computed in integers. */
export function nearestRank (sortedAsc: readonly number[], p: number): number {
  const n = sortedAsc.length
  const rank = Math.max(1, Math.ceil((p * n) / 100))
  const v = sortedAsc[rank - 1]
  if (v === undefined) throw new Error(`no sample of rank ${rank} among ${n}`)
  return v
}

/** The exact mean rounded to 3 decimals. Times are whole µs, so their mean is taken in integers. */
export function exactAvg (values: readonly number[], wholeMicros: boolean): number {
  if (wholeMicros) {
    const sumUs = values.reduce((s, v) => s + Math.round(v * 1000), 0)
    return Math.round(sumUs / values.length) / 1000
  }
  return Math.round((values.reduce((s, v) => s + v, 0) / values.length) * 1000) / 1000
}

export function refStats (values: readonly number[], wholeMicros = true): RefStats {
  if (values.length === 0) return { count: 0, avg: null, min: null, max: null, p50: null, p90: null, p95: null, p99: null }
  const sorted = [...values].sort((a, b) => a - b)
  return {
    count: values.length,
    avg: exactAvg(values, wholeMicros),
    min: sorted[0] ?? null,
    max: sorted[sorted.length - 1] ?? null,
    p50: nearestRank(sorted, 50),
    p90: nearestRank(sorted, 90),
    p95: nearestRank(sorted, 95),
    p99: nearestRank(sorted, 99)
  }
}

export type DistMetric = 'ttft' | 'total_time' | 'output_tokens_per_second'
export const DIST_METRICS: readonly DistMetric[] = ['ttft', 'total_time', 'output_tokens_per_second']
export type RateMetric = 'requests' | 'errors' | 'success_rate'
export const RATE_METRICS: readonly RateMetric[] = ['requests', 'errors', 'success_rate']
/** Token sums per bucket: value = input + output, count = requests. */
export type SumMetric = 'tokens'

export function samples (events: readonly FixtureEvent[], metric: DistMetric): number[] {
  const out: number[] = []
  for (const e of events) {
    const v = metric === 'ttft' ? e.ttft_ms : metric === 'total_time' ? e.total_time_ms : tokensPerSecond(e)
    if (v !== undefined) out.push(v)
  }
  return out
}

export function statOf (values: readonly number[], stat: StatName, wholeMicros: boolean): number | null {
  return refStats(values, wholeMicros)[stat]
}

/** Distinct models per provider. */
export function modelsByProvider (events: readonly FixtureEvent[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const e of events) {
    const p = providerOf(e)
    let s = out.get(p)
    if (s === undefined) out.set(p, s = new Set())
    s.add(e.model)
  }
  return out
}

/** The provider of `model`'s latest event (by timestamp; fixture timestamps are distinct). */
export function latestProvider (events: readonly FixtureEvent[], model: string): string | null {
  let best: FixtureEvent | null = null
  for (const e of events) if (e.model === model && (best === null || e.timestamp > best.timestamp)) best = e
  return best === null ? null : providerOf(best)
}

function byId (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export interface RefEntry extends TokenSums {
  rank: number
  model: string
  provider: string | null
  health_score: number | null
  success_rate: number | null
  requests: number
  ttft_p50_ms: number | null
  total_time_p50_ms: number | null
  /** 100 × successes / (requests − rate limits), 2 decimals. */
  uptime: number | null
}

/** The leaderboard (docs/api.md) over `events` (already restricted to the window). */
export function refLeaderboard (events: readonly FixtureEvent[], q: { order: 'asc' | 'desc', limit: number, minRequests: number }): RefEntry[] {
  const byModel = new Map<string, FixtureEvent[]>()
  for (const e of events) {
    let list = byModel.get(e.model)
    if (list === undefined) byModel.set(e.model, list = [])
    list.push(e)
  }
  const rows: Array<Omit<RefEntry, 'rank'> & { score: number }> = []
  for (const [model, list] of byModel) {
    if (list.length < q.minRequests) continue
    const c = counts(list)
    rows.push({
      model,
      provider: latestProvider(list, model),
      health_score: c.health_score,
      score: c.health_score ?? 0,
      success_rate: c.success_rate,
      requests: c.requests,
      ...tokenSums(list),
      ttft_p50_ms: statOf(samples(list, 'ttft'), 'p50', true),
      total_time_p50_ms: statOf(samples(list, 'total_time'), 'p50', true),
      uptime: successRate(c.successes, c.requests - c.errors.rate_limit)
    })
  }
  rows.sort((a, b) => {
    const byScore = q.order === 'desc' ? b.score - a.score : a.score - b.score
    return byScore !== 0 ? byScore : b.requests !== a.requests ? b.requests - a.requests : byId(a.model, b.model)
  })
  return rows.slice(0, q.limit).map(({ score: _score, ...row }, i) => ({ rank: i + 1, ...row }))
}

export interface RefProvider extends Counts, TokenSums {
  provider: string
  models: number
  ttft_ms: RefStats
  total_time_ms: RefStats
}

/** The provider summary (docs/api.md) over `events` (already restricted to the window). */
export function refProviders (events: readonly FixtureEvent[]): RefProvider[] {
  const byProvider = new Map<string, FixtureEvent[]>()
  for (const e of events) {
    const p = providerOf(e)
    let list = byProvider.get(p)
    if (list === undefined) byProvider.set(p, list = [])
    list.push(e)
  }
  const rows: RefProvider[] = []
  for (const [provider, list] of byProvider) {
    rows.push({
      provider,
      models: new Set(list.map((e) => e.model)).size,
      ...counts(list),
      ...tokenSums(list),
      ttft_ms: refStats(samples(list, 'ttft')),
      total_time_ms: refStats(samples(list, 'total_time'))
    })
  }
  return rows.sort((a, b) => b.requests - a.requests || byId(a.provider, b.provider))
}

export type EntityType = 'model' | 'provider' | 'gateway'

export function matches (e: FixtureEvent, type: EntityType, id: string): boolean {
  return type === 'model' ? e.model === id : type === 'provider' ? providerOf(e) === id : gatewayOf(e) === id
}

export interface RefPoint { t: number, count: number, value: number | null, input_tokens?: number, output_tokens?: number }

/**
 * One trends point per bucket start in `starts` (bucket size `size` ms): events bucketed by the
 * UTC hour/minute holding their timestamp.
 */
export function refTrendPoints (events: readonly FixtureEvent[], starts: readonly number[], size: number, metric: DistMetric | RateMetric | SumMetric, stat: StatName | null): RefPoint[] {
  const byStart = new Map<number, FixtureEvent[]>()
  for (const e of events) {
    const s = floorTo(e.timestamp, size)
    let list = byStart.get(s)
    if (list === undefined) byStart.set(s, list = [])
    list.push(e)
  }
  return starts.map((t) => {
    const list = byStart.get(t) ?? []
    if (metric === 'tokens') {
      const sums = tokenSums(list)
      return { t, count: list.length, value: list.length === 0 ? null : sums.input_tokens + sums.output_tokens, ...sums }
    }
    if (metric === 'requests' || metric === 'errors' || metric === 'success_rate') {
      const c = counts(list)
      const value = c.requests === 0 ? null : metric === 'requests' ? c.requests : metric === 'errors' ? c.failures : c.success_rate
      return { t, count: c.requests, value }
    }
    const values = samples(list, metric)
    return { t, count: values.length, value: statOf(values, stat ?? 'p50', metric !== 'output_tokens_per_second') }
  })
}

/** Facts the fixture is built to have, checked by the suite so a fixture edit cannot drop them silently. */
export const FIXTURE_FACTS = {
  sameScoreDifferentRequests: ['mistral:large', 'mistral:medium'] as const,
  sameCountsTieById: ['anthropic/claude-3-haiku', 'anthropic/claude-3-opus'] as const,
  fewRequests: 'mistral:tiny',
  multiProviderModel: 'llama-3-70b',
  oldOnlyProvider: 'legacy',
  activeProviders: ['anthropic', 'mistral', 'openai'] as const,
  gateways: ['default', 'gw-east', 'gw-west'] as const
}
