/**
 * Property-based fuzzing of the GET routes: realtime, leaderboard, provider summary, trends.
 *
 * Query strings are built from logical (key, value) pairs — documented names and junk; values that
 * are valid, near misses, numbers (negative, huge, floats, 1e400, Infinity), empty, unicode, control
 * characters — each pair encoded its own way (percent-encoded, every byte encoded, `+` for spaces,
 * raw, double-encoded, malformed %), keys repeated into arrays. Properties, per route:
 *   - never a 5xx: only 200 or 400;
 *   - a 400 has Fastify's error shape and its message names `querystring.<param>` of the route;
 *   - a 200 has the documented top-level shape (and the documented sizes: at most 100 leaderboard
 *     entries, `hours` (×60) trend points);
 *   - a small reference from docs/api.md: a query whose every documented parameter is plainly valid is
 *     answered 200 (echoing it), one with a plainly invalid parameter 400 naming it; anything in
 *     between (repeated keys, `5.0`, ` 5`, `0x10`, …) only has to be a 200 or a 400.
 *
 * Replay a failure with FUZZ_SEED=<seed printed by fast-check>; FUZZ_RUNS scales the properties.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from '../helpers/app.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUNS = envInt('FUZZ_RUNS', 4_000)
const SEED = envInt('FUZZ_SEED', Math.floor(Math.random() * 0x7fffffff))

function envInt (name: string, dflt: number): number {
  const v = process.env[name]
  return v === undefined || v.trim() === '' ? dflt : Number.parseInt(v, 10)
}

const CONFIG = {
  rateLimitMax: 0,
  maxIds: { model: 1_000_000, provider: 1_000_000, gateway: 1_000_000 },
  maxPairs: { model_gateway: 10_000_000, model_provider: 10_000_000 },
  maxBufferedKeys: 10_000_000
}

// ---------------------------------------------------------------------------------------------
// The routes and their parameters (docs/api.md "Reading")
// ---------------------------------------------------------------------------------------------

type Param = { kind: 'enum', values: readonly string[] } | { kind: 'int', min: number, max: number } | { kind: 'str', max: number }
type RouteName = 'realtime' | 'leaderboard' | 'summary' | 'trends'

const WINDOWS = ['5m', '15m', '1h', '6h', '24h'] as const
const WINDOW_SECONDS: Record<string, number> = { '5m': 300, '15m': 900, '1h': 3600, '6h': 21_600, '24h': 86_400 }
const TYPES = ['model', 'provider', 'gateway'] as const
const METRICS = ['ttft', 'total_time', 'output_tokens_per_second', 'success_rate', 'requests', 'errors'] as const
const RATE_METRICS: readonly string[] = ['success_rate', 'requests', 'errors']
const STATS = ['avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99'] as const

const enumP = (values: readonly string[]): Param => ({ kind: 'enum', values })
const ROUTES: Record<RouteName, { path: string, params: Record<string, Param> }> = {
  realtime: {
    path: '/api/metrics/realtime',
    params: { type: enumP(TYPES), id: { kind: 'str', max: 256 }, window: enumP(WINDOWS) }
  },
  leaderboard: {
    path: '/api/metrics/health/leaderboard',
    params: { order: enumP(['desc', 'asc']), limit: { kind: 'int', min: 1, max: 100 }, window: enumP(WINDOWS), min_requests: { kind: 'int', min: 1, max: 1_000_000_000 } }
  },
  summary: {
    path: '/api/metrics/provider/summary',
    params: { window: enumP(WINDOWS), provider: { kind: 'str', max: 64 } }
  },
  trends: {
    path: '/api/metrics/trends',
    params: {
      type: enumP(TYPES),
      id: { kind: 'str', max: 256 },
      model: { kind: 'str', max: 256 },
      metric: enumP(METRICS),
      stat: enumP(STATS),
      hours: { kind: 'int', min: 1, max: 168 },
      resolution: enumP(['hour', 'minute'])
    }
  }
}
const ALL_PARAM_NAMES = [...new Set(Object.values(ROUTES).flatMap((r) => Object.keys(r.params)))]

// ---------------------------------------------------------------------------------------------
// The reference (docs/api.md), independent of src/
// ---------------------------------------------------------------------------------------------

/** A query parameter as the client meant it; `value: null` when its encoding is broken (no claim made). */
interface Pair { key: string | null, value: string | null, raw: string }

type Cls = { c: 'valid', v: string | number } | { c: 'invalid' } | { c: 'unknown' }
const chars = (s: string): number => Array.from(s).length

/**
 * One value of a parameter. Integers: plain decimal in range is valid; anything that is not an
 * integer in range under any reading (`abc`, ``, `1.5`, `-3`, `1e400`, `Infinity`, `NaN`) is
 * invalid; other spellings of an integer in range (`05`, ` 5`, `+5`, `5.0`, `1e1`, `0x10`) are left open.
 */
function classify (p: Param, v: string | null): Cls {
  if (v === null) return { c: 'unknown' }
  switch (p.kind) {
    case 'enum': return p.values.includes(v) ? { c: 'valid', v } : { c: 'invalid' }
    case 'str': return chars(v) >= 1 && chars(v) <= p.max ? { c: 'valid', v } : { c: 'unknown' }
    case 'int': {
      const n = Number(v)
      if (v.trim() === '' || Number.isNaN(n) || !Number.isInteger(n) || n < p.min || n > p.max) return { c: 'invalid' }
      return /^(0|[1-9]\d*)$/.test(v) ? { c: 'valid', v: n } : { c: 'unknown' }
    }
  }
}

interface Expectation {
  verdict: 'valid' | 'invalid' | 'unknown'
  /** Parameters a 400's message may name. */
  blame: Set<string>
  /** The effective value of each documented parameter when the verdict is valid (defaults filled in). */
  eff: Record<string, string | number | undefined>
}

const DEFAULTS: Record<RouteName, Record<string, string | number>> = {
  realtime: { type: 'model', window: '1h' },
  leaderboard: { order: 'desc', limit: 10, window: '1h', min_requests: 1 },
  summary: { window: '1h' },
  trends: { metric: 'ttft', hours: 6, resolution: 'hour' }
}

function expectation (route: RouteName, pairs: Pair[]): Expectation {
  const spec = ROUTES[route].params
  const seen = new Map<string, Pair[]>()
  for (const p of pairs) {
    if (p.key !== null && Object.prototype.hasOwnProperty.call(spec, p.key)) seen.set(p.key, [...(seen.get(p.key) ?? []), p])
  }
  const cls: Record<string, Cls> = {}
  for (const [name, ps] of seen) {
    const param = spec[name]
    const only = ps[0]
    // a repeated key arrives as an array: docs/api.md does not say what that means
    cls[name] = param === undefined || only === undefined || ps.length > 1 ? { c: 'unknown' } : classify(param, only.value)
  }
  const present = (n: string): boolean => seen.has(n)
  const invalid = new Set(Object.keys(cls).filter((n) => cls[n]?.c === 'invalid'))
  const unknown = new Set(Object.keys(cls).filter((n) => cls[n]?.c === 'unknown'))
  const eff: Record<string, string | number | undefined> = { ...DEFAULTS[route] }
  for (const [n, c] of Object.entries(cls)) if (c.c === 'valid') eff[n] = c.v
  const known = (n: string): boolean => !present(n) || cls[n]?.c === 'valid'

  // realtime's id is required by the schema; trends' rules between parameters are checked after it
  if (route === 'realtime' && !present('id')) invalid.add('id')
  const cross = new Set<string>()
  if (route === 'trends') {
    if (present('model') && (present('type') || present('id'))) ['model', 'type', 'id'].forEach((n) => cross.add(n))
    if (!present('model') && !present('id')) ['model', 'id'].forEach((n) => cross.add(n))
    if (present('stat') && known('metric') && RATE_METRICS.includes(String(eff.metric))) ['stat', 'metric'].forEach((n) => cross.add(n))
    if (known('resolution') && known('hours') && eff.resolution === 'minute' && Number(eff.hours) > 2) ['resolution', 'hours'].forEach((n) => cross.add(n))
  }
  // docs/api.md does not order the checks: a 400 may name any parameter at fault (or one the reference has no view on)
  if (invalid.size > 0 || cross.size > 0) return { verdict: 'invalid', blame: new Set([...invalid, ...cross, ...unknown]), eff }
  if (unknown.size > 0) return { verdict: 'unknown', blame: unknown, eff }
  return { verdict: 'valid', blame: new Set(), eff }
}

/**
 * GET /api/metrics/trends with `hours` read as +Infinity (`Infinity`, `1e400`, …) must answer 400;
 * the last test checks it in a child process with a small heap, and such queries stay out of the
 * in-process properties, so that a regression fails one test instead of taking the whole run down.
 */
function killsTheProcess (route: RouteName, pairs: Pair[]): boolean {
  if (route !== 'trends') return false
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '))
    } catch {
      return s
    }
  }
  return pairs.some((p) => {
    const rawValue = p.raw.split('=').slice(1).join('=')
    return (p.key === 'hours' || decode(p.raw.split('=')[0] ?? '') === 'hours') && [p.value, rawValue, decode(rawValue)].some((v) => v !== null && Number(v) === Infinity)
  })
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

type Arb<T> = fc.Arbitrary<T>
const pick = <T>(...xs: T[]): Arb<T> => fc.constantFrom(...xs)
const w = <T>(weight: number, arbitrary: Arb<T>): { weight: number, arbitrary: Arb<T> } => ({ weight, arbitrary })
/** `arb`'s value with probability `p`, else undefined. */
const maybe = <T>(arb: Arb<T>, p: number): Arb<T | undefined> => fc.oneof(w(Math.round((1 - p) * 100), fc.constant(undefined)), w(Math.round(p * 100), arb))

/** Ids that have traffic (seeded below), so that 200s carry real figures. */
const SEEDED = {
  models: Array.from({ length: 105 }, (_, i) => [`acme/m-${i}`, `beta/m-${i}`, `gamma:m-${i}`, `m-${i}`, `délta/模型-${i}`][i % 5] as string),
  providers: ['acme', 'beta', 'gamma', 'unknown', 'délta'],
  gateways: ['gw-a', 'gw-b', 'default']
}

const junkValue: Arb<string> = fc.oneof(
  w(6, pick('', ' ', '-1', '0', '-0', '1', '101', '169', '1e308', '1e400', '-1e400', 'Infinity', '-Infinity', '+Infinity', 'NaN', '9007199254740993', '1.5', '0.5e1', '1e-400',
    '0x10', '0b1', '1e1', ' 5', '5 ', '+5', '05', '5.0', 'true', 'null', 'undefined', '[]', '{}', '😀', 'עברית', 'e\u0301', '\u202e', '\u0000', '\u0001', '\u001f', '\u007f',
    '\u0085', '%', '&', '=', '#', '+', '?', '/', '..', '\\', '"', "'", '<script>', '__proto__', 'constructor', 'x'.repeat(257), 'x'.repeat(10_000))),
  w(3, fc.string({ unit: 'binary', maxLength: 12 })),
  w(1, fc.string({ unit: 'grapheme', maxLength: 6 }))
)

function valueFor (p: Param): Arb<string> {
  switch (p.kind) {
    case 'enum': return fc.oneof(
      w(12, fc.constantFrom(...p.values)),
      w(1, fc.constantFrom(...p.values).chain((v) => pick(v.toUpperCase(), ` ${v}`, `${v} `, `${v}x`, v.slice(0, -1), `${v}\u0000`, `${v},${v}`))),
      w(1, junkValue)
    )
    case 'int': return fc.oneof(
      w(12, fc.integer({ min: p.min, max: p.max }).map(String)),
      w(1, pick(String(p.min - 1), String(p.min), String(p.max), String(p.max + 1), String(-p.max), `${p.max}.0`, `${p.min}.5`, `0${p.min}`)),
      w(1, junkValue)
    )
    case 'str': return fc.oneof(
      w(5, fc.constantFrom(...SEEDED.models, ...SEEDED.providers, ...SEEDED.gateways)),
      w(3, fc.string({ unit: 'binary', minLength: 1, maxLength: 20 })),
      w(1, pick('x'.repeat(p.max), 'x'.repeat(p.max + 1), '😀'.repeat(p.max), '😀'.repeat(p.max + 1), 'a b', 'a+b', 'a&b=c', 'a#b', '%41', '\u0000x', 'x\u0001', '\ud800', '\udc00x')),
      w(2, junkValue)
    )
  }
}

type Enc = 'pct' | 'all' | 'plus' | 'raw' | 'double' | 'malformed'
const encArb: Arb<Enc> = fc.oneof(w(12, fc.constant<Enc>('pct')), w(2, pick<Enc>('all', 'plus', 'raw')), w(1, pick<Enc>('double', 'malformed')))
const wellFormed = (s: string): boolean => !/\p{Cs}/u.test(s)
const RAW_OK = /^[\p{L}\p{N}\-._~!$'()*,;:@/]*$/u

/** Encodes one side of a pair; returns the text and what a correct decoder reads back (null: no claim). */
function encode (s: string, enc: Enc, noise: number): { text: string, decoded: string | null } {
  if (!wellFormed(s)) {
    // a lone surrogate has no UTF-8 form: sent as the bytes it would have (WTF-8), which no decoder accepts
    const text = Array.from(s).map((c) => wellFormed(c) ? encodeURIComponent(c) : '%' + [0xe0 | (c.charCodeAt(0) >> 12), 0x80 | ((c.charCodeAt(0) >> 6) & 0x3f), 0x80 | (c.charCodeAt(0) & 0x3f)].map((b) => b.toString(16).toUpperCase()).join('%')).join('')
    return { text, decoded: null }
  }
  switch (enc) {
    case 'pct': return { text: encodeURIComponent(s), decoded: s }
    case 'all': return { text: [...Buffer.from(s, 'utf8')].map((b) => '%' + b.toString(16).padStart(2, '0')).join(''), decoded: s }
    case 'plus': return { text: encodeURIComponent(s).replace(/%20/g, '+'), decoded: s }
    case 'raw': return RAW_OK.test(s) ? { text: s, decoded: s } : { text: encodeURIComponent(s), decoded: s }
    case 'double': return { text: encodeURIComponent(encodeURIComponent(s)), decoded: encodeURIComponent(s) }
    case 'malformed': return { text: encodeURIComponent(s) + ['%', '%G1', '%E0%A4', '%FF', '%C0%AF', '%u0041'][noise % 6], decoded: null }
  }
}

interface GenPair { key: string, value: string | undefined, kenc: Enc, venc: Enc, noise: number }
interface Query { url: string, pairs: Pair[] }

function pairArb (route: RouteName): Arb<GenPair> {
  const spec = ROUTES[route].params
  const names = Object.keys(spec)
  const required = route === 'realtime' ? 'id' : route === 'trends' ? 'model' : ''
  // the required parameter usually comes from the base of the query; here it would mostly make a repeated key
  const documented = fc.oneof(w(12, fc.constantFrom(...names.filter((n) => n !== required && !(route === 'trends' && n === 'id')))), w(1, fc.constantFrom(...names))).chain((key) => {
    const p = spec[key]
    return fc.record({ key: fc.constant(key), value: p === undefined ? junkValue : valueFor(p) })
  })
  const junkKey = fc.oneof(
    pick('__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', 'ID', 'Window', 'id[]', 'id[0]', 'window.x', '', ' id', 'id ', 'ïd', '__proto__[x]', 'constructor[prototype][x]'),
    fc.constantFrom(...ALL_PARAM_NAMES.filter((n) => !names.includes(n))),
    fc.string({ unit: 'binary', maxLength: 6 })
  )
  const other = fc.record({ key: junkKey, value: junkValue })
  return fc.record({
    kv: fc.oneof(w(8, documented), w(2, other)),
    keyOnly: fc.nat(19).map((n) => n === 0),
    kenc: fc.oneof(w(10, fc.constant<Enc>('pct')), w(1, pick<Enc>('all', 'plus', 'raw', 'malformed'))),
    venc: encArb,
    noise: fc.nat()
  }).map((r) => ({ key: r.kv.key, value: r.keyOnly ? undefined : r.kv.value, kenc: r.kenc, venc: r.venc, noise: r.noise }))
}

/** A required parameter is usually there, so that most queries get past it. */
function queryArb (route: RouteName): Arb<Query> {
  const required = route === 'realtime' ? 'id' : route === 'trends' ? 'model' : undefined
  const base = required === undefined
    ? fc.constant<GenPair[]>([])
    : fc.option(fc.record({
      key: fc.constant(route === 'trends' ? 'model' : 'id'),
      value: fc.constantFrom(...SEEDED.models, ...SEEDED.providers, ...SEEDED.gateways) as Arb<string | undefined>,
      kenc: fc.constant<Enc>('pct'),
      venc: fc.constant<Enc>('pct'),
      noise: fc.constant(0)
    }).map((p) => [p]), { nil: [], freq: 6 })
  return fc.record({
    base,
    // keys repeat only through `repeat`
    pairs: fc.uniqueArray(pairArb(route), { maxLength: 5, selector: (p) => p.key }),
    repeat: maybe(fc.nat(), 1 / 8),
    shuffle: fc.nat(),
    sep: fc.oneof(w(20, fc.constant('&')), w(1, pick('&&', '&;', '&amp;'))),
    tail: fc.oneof(w(20, fc.constant('')), w(1, pick('&', '#frag', '&=', '&&&', '?x=1')))
  }).map((r) => {
    const gen = [...r.base, ...r.pairs]
    const first = gen[0]
    // a repeated key becomes an array
    if (r.repeat !== undefined && gen.length > 0) {
      const p = gen[r.repeat % gen.length]
      if (p !== undefined) gen.push({ ...p, value: r.repeat % 2 === 0 ? p.value : (first?.value ?? '') })
    }
    if (gen.length > 1) gen.push(...gen.splice(0, r.shuffle % gen.length))
    const pairs: Pair[] = []
    const texts: string[] = []
    // `&&` adds an empty pair; with `&;` and `&amp;` every key after the first starts with `;` or `amp;`
    const glued = r.sep.slice(1).replace('&', '')
    for (const [i, g] of gen.entries()) {
      const k = encode(g.key, g.kenc, g.noise)
      const v = g.value === undefined ? { text: '', decoded: '' } : encode(g.value, g.venc, g.noise)
      const raw = g.value === undefined ? k.text : `${k.text}=${v.text}`
      texts.push(raw)
      pairs.push({ key: i > 0 && k.decoded !== null ? glued + k.decoded : k.decoded, value: v.decoded, raw: i > 0 ? glued + raw : raw })
    }
    // `?x=1` after the query is part of the last value (no claim about it)
    if (r.tail === '?x=1' && pairs.length > 0) {
      const last = pairs[pairs.length - 1]
      if (last !== undefined) pairs[pairs.length - 1] = { key: last.raw.includes('=') ? last.key : null, value: null, raw: last.raw + r.tail }
    }
    if (r.tail === '&=') pairs.push({ key: '', value: '', raw: '=' })
    const qs = texts.join(r.sep) + r.tail
    return { url: `${ROUTES[route].path}${qs === '' ? '' : '?'}${qs}`, pairs }
  })
}

// ---------------------------------------------------------------------------------------------
// Checking answers
// ---------------------------------------------------------------------------------------------

type Json = Record<string, unknown>
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const isInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0
const isNumOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isFinite(v))
const isTime = (v: unknown): boolean => typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v) && Number.isFinite(Date.parse(v))

function need (ok: boolean, what: string): void {
  if (!ok) throw new Error(what)
}
function stats (v: unknown, name: string): void {
  need(isObj(v), `${name} is an object`)
  const s = v as Json
  need(isInt(s.count), `${name}.count is a count`)
  for (const k of ['avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99']) {
    need(isNumOrNull(s[k]), `${name}.${k} is a number or null`)
    if (s.count === 0) need(s[k] === null, `${name}.${k} is null with no samples`)
  }
}
function errorsObj (v: unknown, name: string): void {
  need(isObj(v), `${name} is an object`)
  for (const k of ['timeout', 'rate_limit', 'network', 'other']) need(isInt((v as Json)[k]), `${name}.${k} is a count`)
}
function windowObj (v: unknown, expected: string | number | undefined): void {
  need(isObj(v), 'window is an object')
  const win = v as Json
  need(isTime(win.from) && isTime(win.to) && isInt(win.seconds), 'window is {from, to, seconds}')
  need(Date.parse(win.from as string) <= Date.parse(win.to as string), 'window.from <= window.to')
  if (typeof expected === 'string') need(win.seconds === WINDOW_SECONDS[expected], `window.seconds is ${String(WINDOW_SECONDS[expected])} for ${expected}`)
}

/** The documented top-level shape of a 200; with a valid query, its parameters echoed. */
function checkOk (route: RouteName, body: unknown, ex: Expectation): void {
  need(isObj(body), 'the answer is an object')
  const b = body as Json
  const valid = ex.verdict === 'valid'
  const e = ex.eff
  if (route !== 'trends') windowObj(b.window, valid ? e.window : undefined)
  switch (route) {
    case 'realtime': {
      need(typeof b.type === 'string' && (TYPES as readonly string[]).includes(b.type) && typeof b.id === 'string', 'type and id')
      for (const k of ['requests', 'successes', 'failures']) need(isInt(b[k]), `${k} is a count`)
      need(b.successes as number + (b.failures as number) === b.requests, 'successes + failures = requests')
      need(isNumOrNull(b.success_rate) && isNumOrNull(b.health_score), 'success_rate and health_score')
      errorsObj(b.errors, 'errors')
      for (const k of ['ttft_ms', 'total_time_ms', 'output_tokens_per_second']) stats(b[k], k)
      need(isTime(b.generated_at), 'generated_at is an ISO time')
      need((b.gateway_fetches !== undefined) === (b.type === 'gateway'), 'gateway_fetches exactly with type=gateway')
      if (b.gateway_fetches !== undefined) {
        const g = b.gateway_fetches as Json
        need(isInt(g.fetches) && isInt(g.errors) && isInt(g.timeouts), 'gateway_fetches counts')
        stats(g.response_time_ms, 'gateway_fetches.response_time_ms')
        need(g.last_model_count === null || isInt(g.last_model_count), 'last_model_count')
      }
      if (valid) need(b.type === e.type && b.id === e.id, `echoes type ${String(e.type)} and id ${JSON.stringify(e.id)}`)
      return
    }
    case 'leaderboard': {
      need(b.order === 'desc' || b.order === 'asc', 'order')
      need(Array.isArray(b.entries), 'entries is an array')
      const entries = b.entries as unknown[]
      need(entries.length <= 100, `at most 100 entries (limit is 1..100), got ${entries.length}`)
      entries.forEach((x, i) => {
        need(isObj(x), 'entry is an object')
        const en = x as Json
        need(en.rank === i + 1, 'ranks are 1..n')
        need(typeof en.model === 'string' && (en.provider === null || typeof en.provider === 'string') && isInt(en.requests), 'entry model/provider/requests')
        for (const k of ['health_score', 'success_rate', 'ttft_p50_ms', 'total_time_p50_ms']) need(isNumOrNull(en[k]), `entry ${k}`)
      })
      if (valid) {
        need(b.order === e.order, `echoes order ${String(e.order)}`)
        need(entries.length <= Number(e.limit), `at most limit=${String(e.limit)} entries, got ${entries.length}`)
        need(entries.every((x) => Number((x as Json).requests) >= Number(e.min_requests)), `every entry has >= min_requests=${String(e.min_requests)}`)
      }
      return
    }
    case 'summary': {
      need(Array.isArray(b.providers), 'providers is an array')
      for (const x of b.providers as unknown[]) {
        need(isObj(x), 'provider entry is an object')
        const p = x as Json
        need(typeof p.provider === 'string', 'provider name')
        for (const k of ['models', 'requests', 'successes', 'failures']) need(isInt(p[k]), `provider ${k}`)
        need(isNumOrNull(p.success_rate) && isNumOrNull(p.health_score), 'provider rates')
        errorsObj(p.errors, 'provider errors')
        stats(p.ttft_ms, 'provider ttft_ms')
        stats(p.total_time_ms, 'provider total_time_ms')
      }
      if (valid && e.provider !== undefined) need((b.providers as Json[]).every((p) => p.provider === e.provider) && (b.providers as unknown[]).length <= 1, `only provider ${JSON.stringify(e.provider)}`)
      return
    }
    case 'trends': {
      need(typeof b.type === 'string' && (TYPES as readonly string[]).includes(b.type) && typeof b.id === 'string', 'type and id')
      need(typeof b.metric === 'string' && (METRICS as readonly string[]).includes(b.metric), 'metric')
      need(b.stat === null || (typeof b.stat === 'string' && (STATS as readonly string[]).includes(b.stat)), 'stat')
      need((b.stat === null) === RATE_METRICS.includes(b.metric as string), 'stat is null exactly for rate metrics')
      need(b.resolution === 'hour' || b.resolution === 'minute', 'resolution')
      need(Array.isArray(b.points), 'points is an array')
      const points = b.points as unknown[]
      const max = b.resolution === 'hour' ? 168 : 120
      need(points.length >= 1 && points.length <= max, `1..${max} points (hours is 1..168, minute needs hours <= 2), got ${points.length}`)
      let last = -Infinity
      for (const x of points) {
        need(isObj(x), 'point is an object')
        const p = x as Json
        need(isTime(p.t) && isInt(p.count) && isNumOrNull(p.value), 'point {t, count, value}')
        need((p.count === 0) === (p.value === null), 'value is null exactly when count is 0')
        const at = Date.parse(p.t as string)
        need(at > last, 'points oldest first')
        last = at
      }
      if (valid) {
        const type = e.model !== undefined ? 'model' : (e.type ?? 'model')
        const id = e.model ?? e.id
        need(b.type === type && b.id === id, `echoes type ${String(type)} and id ${JSON.stringify(id)}`)
        need(b.metric === e.metric && b.resolution === e.resolution, 'echoes metric and resolution')
        need(b.stat === (RATE_METRICS.includes(String(e.metric)) ? null : (e.stat ?? 'p50')), 'stat (default p50, null for rate metrics)')
        need(points.length === Number(e.hours) * (e.resolution === 'minute' ? 60 : 1), `hours=${String(e.hours)} gives ${Number(e.hours) * (e.resolution === 'minute' ? 60 : 1)} points, got ${points.length}`)
      }
    }
  }
}

const ERROR_KEYS = ['statusCode', 'code', 'error', 'message']

function checkAnswer (route: RouteName, q: Query, res: LightMyRequestResponse, ex: Expectation): void {
  const s = res.statusCode
  const ctx = `GET ${q.url.length > 500 ? q.url.slice(0, 500) + '…' : q.url} → ${s} ${res.body.slice(0, 300)}; reference: ${ex.verdict}${ex.blame.size > 0 ? ` (${[...ex.blame].join(', ')})` : ''}`
  if (s >= 500) throw new Error(`5xx: ${ctx}`)
  if (s !== 200 && s !== 400) throw new Error(`neither 200 nor 400: ${ctx}`)
  let body: unknown
  try {
    body = res.json()
  } catch {
    throw new Error(`not JSON: ${ctx}`)
  }
  if (ex.verdict === 'valid' && s !== 200) throw new Error(`a valid query was refused: ${ctx}`)
  if (ex.verdict === 'invalid' && s !== 400) throw new Error(`an invalid query was answered ${s}: ${ctx}`)
  if (s === 200) {
    try {
      checkOk(route, body, ex)
    } catch (err) {
      throw new Error(`200 not as documented: ${(err as Error).message}: ${ctx}`)
    }
    return
  }
  const b = body as Json
  const extra = isObj(b) ? Object.keys(b).filter((k) => !ERROR_KEYS.includes(k)) : ['(not an object)']
  if (extra.length > 0 || b.statusCode !== 400 || b.error !== 'Bad Request' || typeof b.message !== 'string' || (b.code !== undefined && typeof b.code !== 'string')) {
    throw new Error(`400 not in Fastify's error shape: ${ctx}`)
  }
  const named = /querystring\.([A-Za-z_]+)/.exec(b.message)?.[1]
  if (named === undefined || !Object.prototype.hasOwnProperty.call(ROUTES[route].params, named)) throw new Error(`400 message names no querystring.<param> of the route: ${ctx}`)
  if (ex.verdict === 'invalid' && !ex.blame.has(named)) throw new Error(`400 names querystring.${named}, expected one of ${[...ex.blame].join(', ')}: ${ctx}`)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

function failure (err: unknown): string {
  const e = err as Error & { cause?: unknown }
  return e.cause instanceof Error ? `${e.message}\n${e.cause.message}` : e.message
}

async function flushAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) if (await app.flusher.flush()) return
  throw new Error('buffer did not flush')
}

/** Some traffic for every seeded id, so that answers carry entries, stats and points. */
async function seed (app: FastifyInstance): Promise<void> {
  const now = Date.now()
  const chat = SEEDED.models.map((model, i) => ({
    model,
    ...(i % 7 === 0 ? { provider: SEEDED.providers[i % SEEDED.providers.length] } : {}),
    gateway: SEEDED.gateways[i % SEEDED.gateways.length],
    success: i % 4 !== 0,
    ...(i % 4 === 0 ? { error_type: ['timeout', 'rate_limit', 'network', 'other'][(i / 4) % 4] } : {}),
    ttft_ms: 100 + i,
    total_time_ms: 1000 + 10 * i,
    output_tokens: 50 + i,
    timestamp: now - (i % 30) * 60_000 - (i % 3) * 3_600_000
  }))
  const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', headers: { 'content-type': 'application/json' }, payload: JSON.stringify([...chat, ...chat.slice(0, 40)]) })
  if (res.statusCode !== 202) throw new Error(`seeding chat: ${res.statusCode} ${res.body}`)
  const fetches = SEEDED.gateways.map((gateway, i) => ({ gateway, status: i === 1 ? 'error' : 'success', ...(i === 1 ? { error_type: 'timeout' } : { model_count: 10 + i }), response_time_ms: 200 + i }))
  const r2 = await app.inject({ method: 'POST', url: '/api/metrics/gateway/fetch', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(fetches) })
  if (r2.statusCode !== 202) throw new Error(`seeding fetches: ${r2.statusCode} ${r2.body}`)
  await flushAll(app)
}

t.comment(`fast-check seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${RUNS} runs per route`)

/** The child processes of the last test start now, so that they run while the properties do. */
const HAZARD_URLS = ['/api/metrics/trends?model=a&hours=168', '/api/metrics/trends?model=a&hours=Infinity', '/api/metrics/trends?type=gateway&id=g&metric=requests&hours=1e400']
const hazardResults = Promise.all(HAZARD_URLS.map(async (url) => await getInChild(url, 60_000)))

for (const route of Object.keys(ROUTES) as RouteName[]) {
  t.test(`GET ${ROUTES[route].path}: ${RUNS} generated query strings, only 200 or 400, as documented`, async (t) => {
    const { app } = await build(t, { config: CONFIG })
    await seed(app)
    const statuses = new Map<number, number>()
    const verdicts = new Map<string, number>()
    const named = new Map<string, number>()
    let withheld = 0
    try {
      await fc.assert(fc.asyncProperty(queryArb(route), async (q) => {
        const ex = expectation(route, q.pairs)
        if (killsTheProcess(route, q.pairs)) withheld++
        // skipped, not counted in numRuns: fast-check generates another
        fc.pre(!killsTheProcess(route, q.pairs))
        verdicts.set(ex.verdict, (verdicts.get(ex.verdict) ?? 0) + 1)
        const res = await app.inject({ method: 'GET', url: q.url })
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        if (res.statusCode === 400) {
          const n = /querystring\.([A-Za-z_]+)/.exec(res.body)?.[1] ?? '?'
          named.set(n, (named.get(n) ?? 0) + 1)
        }
        checkAnswer(route, q, res, ex)
      }), { numRuns: RUNS, seed: SEED })
      t.pass('every answer was a documented 200 or 400')
    } catch (err) {
      t.fail(failure(err))
    }
    const fiveXX = [...statuses.entries()].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0)
    t.equal(fiveXX, 0, 'no 5xx')
    const show = (m: Map<string | number, number>): string => [...m.entries()].map(([k, v]) => `${k}: ${v}`).join(', ')
    t.comment(`${route}: ${[...statuses.values()].reduce((a, b) => a + b, 0)} requests; statuses ${show(statuses)}; reference ${show(verdicts)}; 5xx: ${fiveXX}; withheld (would kill the process): ${withheld}; 400s name ${show(named)}`)
  })
}

// ---------------------------------------------------------------------------------------------
// What cannot run in-process: a query that never answers. Shown in a child process with a small heap.
// ---------------------------------------------------------------------------------------------

interface ChildResult { status?: number, body?: string, code: number | null, signal: string | null, timedOut: boolean, stderr: string }

async function getInChild (url: string, timeoutMs: number): Promise<ChildResult> {
  const src = (f: string): string => JSON.stringify(new URL(`../../src/${f}`, import.meta.url).href)
  const code = `
    const { buildApp } = await import(${src('app.ts')})
    const { defaultConfig } = await import(${src('config.ts')})
    const { MemoryStore } = await import(${src('store/memory-store.ts')})
    const store = new MemoryStore()
    const app = await buildApp({ config: defaultConfig({ cacheTtlMs: 0, rateLimitMax: 0 }), store, logger: false })
    await app.ready()
    const res = await app.inject(${JSON.stringify(url)})
    process.stdout.write(JSON.stringify({ status: res.statusCode, body: res.body.slice(0, 200) }))
    await app.close()
    await store.close()
  `
  return await new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, '--max-old-space-size=96', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let timedOut = false
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      let parsed: { status?: number, body?: string } = {}
      try {
        parsed = JSON.parse(out) as { status?: number, body?: string }
      } catch {}
      resolve({ ...parsed, code, signal, timedOut, stderr: err.split('\n').filter((l) => /heap|FATAL|Error/.test(l)).slice(0, 2).join(' | ') })
    })
  })
}

t.test('GET /api/metrics/trends with hours read as +Infinity answers 400 instead of exhausting the heap (child process)', async (t) => {
  const urls = HAZARD_URLS
  const results = await hazardResults
  const [control, ...hazards] = results
  t.equal(control?.status, 200, `the child harness works: ${urls[0] ?? ''} answers 200`)
  hazards.forEach((r, i) => {
    const url = urls[i + 1] ?? ''
    const how = r.status !== undefined ? `answered ${r.status} ${r.body ?? ''}` : r.timedOut ? 'did not answer within 60 s' : `killed the process (exit ${String(r.code)}, signal ${String(r.signal)}): ${r.stderr}`
    t.equal(r.status, 400, `${url} answers 400 (${how})`)
  })
})
