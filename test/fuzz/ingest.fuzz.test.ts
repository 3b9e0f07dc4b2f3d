/**
 * Property-based fuzzing of the recording routes (POST /api/metrics/chat, POST /api/metrics/gateway/fetch).
 *
 * Every generated body is a raw string (so it can be malformed JSON, hold duplicate keys, escaped
 * keys, lone surrogates, 1e400 …) and is judged by `reference`, an independent validator written from
 * docs/api.md's tables, which never imports anything from src/. The app must agree with it:
 *   - never a 5xx;
 *   - 202 `{accepted: N}` exactly when the reference says valid (N = its event count);
 *   - otherwise 400/413/415/429 in Fastify's error shape;
 *   - Object.prototype is never polluted;
 *   - an invalid body leaves nothing in the store;
 *   - accepted events are counted exactly (realtime deltas per model, provider and gateway).
 *
 * Replay a failure with FUZZ_SEED=<seed printed by fast-check>; FUZZ_RUNS scales the big properties.
 */
import t from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from '../helpers/app.js'

const CHAT = '/api/metrics/chat'
const FETCH = '/api/metrics/gateway/fetch'
type Route = 'chat' | 'fetch'
const URL_OF: Record<Route, string> = { chat: CHAT, fetch: FETCH }

const RUNS = envInt('FUZZ_RUNS', 4_000)
const INVALID_RUNS = Math.max(1, Math.round(RUNS / 4))
const COUNT_RUNS = 40
const SEED = envInt('FUZZ_SEED', Math.floor(Math.random() * 0x7fffffff))

function envInt (name: string, dflt: number): number {
  const v = process.env[name]
  return v === undefined || v.trim() === '' ? dflt : Number.parseInt(v, 10)
}

const MINUTE = 60_000
const HOUR = 3_600_000
const RETENTION_HOURS = 168
const FUTURE_MS = 5 * MINUTE
/** Generated times stay this far from the window's edges: the app reads the clock a little later than the reference. */
const MARGIN = 10_000

/** Limits and cardinality out of the way: this file is about validation. */
const CONFIG = {
  rateLimitMax: 0,
  retentionHours: RETENTION_HOURS,
  maxIds: { model: 1_000_000, provider: 1_000_000, gateway: 1_000_000 },
  maxPairs: { model_gateway: 10_000_000, model_provider: 10_000_000 },
  maxBufferedKeys: 10_000_000
}

// ---------------------------------------------------------------------------------------------
// The reference validator (docs/api.md), independent of src/
// ---------------------------------------------------------------------------------------------

const BODY_LIMIT = 1_048_576
const MAX_BATCH = 1000
const MAX_MS = 3_600_000
const MAX_TOKENS = 10_000_000
/** The fetch fields' bounds (docs/api.md): model_count 0..1 000 000, response_time_ms 0..3 600 000. */
const MAX_MODEL_COUNT = 1_000_000
const CHAT_ERRORS = ['timeout', 'rate_limit', 'network', 'other']
const FETCH_ERRORS = ['timeout', 'error']

/**
 * Whitespace: Unicode White_Space, plus U+FEFF (ZERO WIDTH NO-BREAK SPACE, whitespace in ECMAScript
 * and so in JSON Schema's `\s`). Control characters: General_Category Cc.
 */
const WHITESPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

type Json = Record<string, unknown>
type Verdict = { ok: true, events: number } | { ok: false, why: string }

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const own = (o: Json, k: string): unknown => hasOwn(o, k) ? o[k] : undefined
/** Length in characters (Unicode code points; a lone surrogate counts as one). */
const chars = (s: string): number => Array.from(s).length

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
/** Ids must be well-formed Unicode (no lone surrogate from a `\ud800` escape): two such ids would reach the store as one. */
function isId (v: unknown, max: number, noWhitespace: boolean): boolean {
  return typeof v === 'string' && !LONE_SURROGATE.test(v) && chars(v) >= 1 && chars(v) <= max && !CONTROL.test(v) && !(noWhitespace && WHITESPACE.test(v))
}
const isMs = (v: unknown): boolean => typeof v === 'number' && v >= 0 && v <= MAX_MS
const isCount = (v: unknown, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max

/**
 * ISO 8601 date-time with seconds and a zone, as RFC 3339 profiles it (`T`/`t`/space separator,
 * `Z`/`z`), plus ISO 8601's other offset forms `±hhmm` and `±hh`.
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2})(?::?(\d{2}))?)$/

function daysIn (y: number, m: number): number {
  return [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] ?? 0
}

function parseIso (s: string): number | undefined {
  const m = ISO.exec(s)
  if (m === null) return undefined
  const [y, mo, d, h, mi, se] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]))
  if (y === undefined || mo === undefined || d === undefined || h === undefined || mi === undefined || se === undefined) return undefined
  // No leap second can fall inside the accepted window (the last was in 2016), so :60 is refused.
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || se > 59) return undefined
  const oh = Number(m[9] ?? 0)
  const om = Number(m[10] ?? 0)
  if (oh > 23 || om > 59) return undefined
  const frac = Number((m[7] ?? '').slice(0, 3).padEnd(3, '0'))
  const date = new Date(0)
  date.setUTCFullYear(y, mo - 1, d)
  date.setUTCHours(h, mi, se, frac)
  return date.getTime() - (m[8] === '-' ? -1 : 1) * (oh * 60 + om) * MINUTE
}

function timeProblem (v: unknown, now: number): string | null {
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? parseIso(v) : undefined
  if (ms === undefined || !Number.isFinite(ms)) return 'timestamp is not epoch ms or an ISO 8601 string with a zone'
  if (ms < now - RETENTION_HOURS * HOUR) return 'timestamp older than the retention'
  if (ms > now + FUTURE_MS) return 'timestamp more than 5 minutes ahead'
  return null
}

function chatProblem (e: unknown, now: number): string | null {
  if (!isObject(e)) return 'event is not an object'
  if (!isId(own(e, 'model'), 256, true)) return 'model'
  if (hasOwn(e, 'provider') && !isId(e.provider, 64, false)) return 'provider'
  if (hasOwn(e, 'gateway') && !isId(e.gateway, 64, false)) return 'gateway'
  const success = own(e, 'success')
  if (typeof success !== 'boolean') return 'success'
  for (const f of ['ttft_ms', 'total_time_ms']) if (hasOwn(e, f) && !isMs(e[f])) return f
  if (hasOwn(e, 'error_type')) {
    if (!CHAT_ERRORS.includes(e.error_type as string)) return 'error_type not in the enum'
    if (success) return 'error_type with success: true'
  }
  for (const f of ['input_tokens', 'output_tokens']) if (hasOwn(e, f) && !isCount(e[f], MAX_TOKENS)) return f
  if (hasOwn(e, 'streamed') && typeof e.streamed !== 'boolean') return 'streamed'
  if (hasOwn(e, 'timestamp')) return timeProblem(e.timestamp, now)
  return null
}

function fetchProblem (e: unknown, now: number): string | null {
  if (!isObject(e)) return 'event is not an object'
  if (!isId(own(e, 'gateway'), 64, false)) return 'gateway'
  const status = own(e, 'status')
  if (status !== 'success' && status !== 'error') return 'status'
  if (hasOwn(e, 'model_count') && !isCount(e.model_count, MAX_MODEL_COUNT)) return 'model_count'
  if (hasOwn(e, 'response_time_ms') && !isMs(e.response_time_ms)) return 'response_time_ms'
  if (hasOwn(e, 'error_type')) {
    if (!FETCH_ERRORS.includes(e.error_type as string)) return 'error_type not in the enum'
    if (status !== 'error') return 'error_type with status: success'
  }
  if (hasOwn(e, 'timestamp')) return timeProblem(e.timestamp, now)
  return null
}

/**
 * Fastify's JSON parser refuses, with a 400, a body holding a `__proto__` key, or a `constructor`
 * key whose value is an object with a `prototype` key, at any depth (onProtoPoisoning and
 * onConstructorPoisoning, both 'error' by default), as docs/api.md ("Errors") says beside "unknown fields
 * are ignored"; the reference follows the framework here.
 */
function poisoned (root: unknown): boolean {
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const node = stack.pop()
    if (typeof node !== 'object' || node === null) continue
    if (hasOwn(node, '__proto__')) return true
    if (hasOwn(node, 'constructor')) {
      const c = (node as Json).constructor
      if (typeof c === 'object' && c !== null && hasOwn(c, 'prototype')) return true
    }
    for (const v of Object.values(node)) stack.push(v)
  }
  return false
}

function reference (route: Route, payload: string, contentType: string | undefined, now: number): Verdict {
  const media = contentType?.split(';')[0]?.trim().toLowerCase()
  if (media !== 'application/json') return { ok: false, why: `content-type ${String(contentType)}` }
  if (Buffer.byteLength(payload, 'utf8') > BODY_LIMIT) return { ok: false, why: 'body over 1 MiB' }
  // What the server reads: the UTF-8 bytes decoded (a raw lone surrogate arrives as U+FFFD); a BOM is skipped.
  let text = Buffer.from(payload, 'utf8').toString('utf8')
  if (text.startsWith('\ufeff')) text = text.slice(1)
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return { ok: false, why: 'not JSON' }
  }
  if (poisoned(body)) return { ok: false, why: 'prototype-poisoning key' }
  if (!Array.isArray(body) && !isObject(body)) return { ok: false, why: 'body is neither an event nor an array' }
  const items: unknown[] = Array.isArray(body) ? body : [body]
  if (items.length < 1 || items.length > MAX_BATCH) return { ok: false, why: `batch of ${items.length}` }
  for (let i = 0; i < items.length; i++) {
    const why = route === 'chat' ? chatProblem(items[i], now) : fetchProblem(items[i], now)
    if (why !== null) return { ok: false, why: `event ${i}: ${why}` }
  }
  return { ok: true, events: items.length }
}

/** docs/api.md: the part before the first `/`, else before the first `:`, else `unknown`; an empty part is `unknown`. */
function providerOf (model: string): string {
  const slash = model.indexOf('/')
  const cut = slash >= 0 ? slash : model.indexOf(':')
  return cut > 0 ? model.slice(0, cut) : 'unknown'
}

// ---------------------------------------------------------------------------------------------
// Generators: JSON text, valid and invalid
// ---------------------------------------------------------------------------------------------

type Arb<T> = fc.Arbitrary<T>
const pick = <T>(...xs: T[]): Arb<T> => fc.constantFrom(...xs)
const w = <T>(weight: number, arbitrary: Arb<T>): { weight: number, arbitrary: Arb<T> } => ({ weight, arbitrary })
/** `arb`'s value with probability `p`, else undefined. */
const maybe = <T>(arb: Arb<T>, p: number): Arb<T | undefined> => fc.oneof(w(Math.round((1 - p) * 100), fc.constant(undefined)), w(Math.round(p * 100), arb))

const SAFE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/:@+'
/** Characters an id may hold: emoji, RTL, combining marks, format characters, lone surrogates, JSON/URL syntax. */
const UNICODE = ['é', 'ß', '中文', 'עברית', 'العربية', '\u202e', '\u200f', '\u200d', 'e\u0301', '\u0301', '\u0336\u0336', '😀', '👩\u200d💻', '🇫🇷',
  '\ud800', '\udfff', '\udc00\ud800', '\u00ad', '\u180e', '\u200b', '\ufffd', '\uffff', '𝕏', '"', '\\', '%', '&', '#', '?', '=', '{', '}', '[', ']', ',', "'", '<', '>', '+']
const SPACES = [' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u1680', '\u2000', '\u2003', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff']
const CONTROLS = ['\u0000', '\u0001', '\u0007', '\u0008', '\u001b', '\u001f', '\u007f', '\u0080', '\u0085', '\u009f']
/** Names that are special to JavaScript objects: as ids they must be counted like any other. */
const OBJECT_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']
const TYPICAL = ['anthropic/claude-3.5-sonnet', 'openai/gpt-4o:online', 'meta-llama/llama-3.1-405b-instruct:free', 'mistral:latest',
  ':free', '/x', 'x/', 'x:', 'a', '0', '123', '-1', '1e400', 'NaN', 'Infinity', 'null', 'true', ...OBJECT_NAMES, '__proto__/x', 'constructor:y']

const idChunk: Arb<string> = fc.oneof(
  w(12, fc.constantFrom(...SAFE.split(''))),
  w(3, fc.constantFrom(...UNICODE)),
  w(1, fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }))
)
/** Mostly valid ids, `max` code points at most when the chunks are single characters. */
const cleanId = (maxChunks: number): Arb<string> => fc.oneof(
  w(8, fc.array(idChunk, { minLength: 1, maxLength: maxChunks }).map((a) => a.join(''))),
  w(2, fc.constantFrom(...TYPICAL))
)
const boundaryId = (max: number): Arb<string> => pick(
  'x'.repeat(max), 'x'.repeat(max + 1), '😀'.repeat(max), '😀'.repeat(max + 1), 'é'.repeat(max), '\ud800'.repeat(max), '\ud800'.repeat(max + 1),
  'e\u0301'.repeat(max / 2), 'e\u0301'.repeat(max / 2 + 1), 'a'.repeat(10_000), 'שלום'.repeat(2500)
)
const insertAt = (s: string, c: string, at: number): string => {
  const cs = Array.from(s)
  cs.splice(at % (cs.length + 1), 0, c)
  return cs.join('')
}
const dirtyId = (maxChunks: number, max: number): Arb<string> => fc.oneof(
  fc.tuple(cleanId(maxChunks), fc.constantFrom(...SPACES), fc.nat()).map(([s, c, at]) => insertAt(s, c, at)),
  fc.tuple(cleanId(maxChunks), fc.constantFrom(...CONTROLS), fc.nat()).map(([s, c, at]) => insertAt(s, c, at)),
  fc.tuple(cleanId(maxChunks), fc.constantFrom(...SPACES)).map(([s, c]) => c + s + c),
  pick('', ' ', '\t', '\u0000', '\u00a0'),
  boundaryId(max)
)

type StrStyle = 'std' | 'raw' | 'escapeAll'
/** A JSON string literal: standard, with lone surrogates left raw (sent as U+FFFD), or every unit escaped. */
function jsonStr (s: string, style: StrStyle = 'std'): string {
  if (style === 'std') return JSON.stringify(s)
  // eslint-disable-next-line no-control-regex -- the characters JSON must escape
  if (style === 'raw') return '"' + s.replace(/["\\\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1)) + '"'
  let out = '"'
  for (let i = 0; i < s.length; i++) out += '\\u' + s.charCodeAt(i).toString(16).padStart(4, '0')
  return out + '"'
}
const strStyle: Arb<StrStyle> = fc.oneof(w(20, fc.constant<StrStyle>('std')), w(1, fc.constant<StrStyle>('raw')), w(1, fc.constant<StrStyle>('escapeAll')))
const strText = (s: Arb<string>): Arb<string> => fc.tuple(s, strStyle).map(([v, st]) => jsonStr(v, st))

/** Values of the wrong type, numeric strings, NaN/Infinity strings, huge numbers, deep nesting. */
const deep = (n: number, kind: 'array' | 'object' | 'mixed'): string =>
  kind === 'array' ? '['.repeat(n) + ']'.repeat(n) : kind === 'object' ? '{"a":'.repeat(n) + '1' + '}'.repeat(n) : '[{"a":'.repeat(n) + '1' + '}]'.repeat(n)
const wrongType: Arb<string> = fc.oneof(
  pick('null', 'true', 'false', '0', '-0', '1', '1e308', '-1e308', '1e400', '-1e400', '9007199254740993', '5e-324', '[]', '{}', '["a"]', '{"a":1}',
    '""', '" "', '"0"', '"123"', '"-1"', '"1e3"', '"NaN"', '"Infinity"', '"-Infinity"', '"true"', '"false"', '"null"', '"undefined"'),
  pick(deep(1000, 'array'), deep(1000, 'object'), deep(300, 'mixed')),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v))
)

const ms = {
  clean: fc.oneof(
    w(6, fc.integer({ min: 0, max: MAX_MS }).map(String)),
    w(3, fc.double({ min: 0, max: MAX_MS, noNaN: true }).map((n) => JSON.stringify(n))),
    w(2, pick('0', '-0', '0.0', '-0.0', '3600000', '3600000.0', '3.6e6', '36E5', '1e-7', '0e5', '5E-324'))
  ),
  bad: fc.oneof(
    pick('-1', '-0.001', '3600000.0001', '3600001', '1e308', '-1e308', '1e400', '-1e400', '9007199254740993', '1.7976931348623157e308', '"100"', '"NaN"', '"Infinity"'),
    fc.double({ min: MAX_MS, noNaN: true, noDefaultInfinity: true, minExcluded: true }).map((n) => JSON.stringify(n)),
    fc.double({ max: -1e-9, noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
    wrongType
  )
}
const tokens = (max: number): { clean: Arb<string>, bad: Arb<string> } => ({
  clean: fc.oneof(w(6, fc.integer({ min: 0, max }).map(String)), w(1, pick('0', '-0', '1.0', '1e3', `${max}`, `${max}.0`, '0.0e0', '1E0'))),
  bad: fc.oneof(pick(`${max + 1}`, '-1', '1.5', '0.1', '9007199254740993', '1e308', '1e400', '-1e400', '1e-7', `${max}.5`, '"5"', '[1]'), wrongType)
})
const bool = {
  clean: pick('true', 'false'),
  bad: fc.oneof(pick('"true"', '"false"', '1', '0', 'null', '"yes"', '[]', '{}', '[true]'), wrongType)
}
const enumOf = (values: string[], near: string[]): { clean: Arb<string>, bad: Arb<string> } => ({
  clean: fc.constantFrom(...values.map((v) => JSON.stringify(v))),
  bad: fc.oneof(fc.constantFrom(...[...near, ...values.map((v) => v.toUpperCase()), ...values.map((v) => `${v} `), ''].map((v) => JSON.stringify(v))), wrongType)
})

/** Timestamps are written when generated (just before the request), relative to the clock. */
type TsFormat = { kind: 'int' } | { kind: 'frac' } | { kind: 'exp' } | { kind: 'iso', sep: string, frac: string, zone: string, offMin: number }
const offsets = [0, 0, 0, 60, -60, 120, -120, 330, 345, -570, 840, -720, 600, 59]
const zoneOf = (offMin: number, style: number): string => {
  if (offMin === 0 && style % 3 === 0) return style % 2 === 0 ? 'Z' : 'z'
  const sign = offMin < 0 || (offMin === 0 && style === 4) ? '-' : '+'
  const hh = String(Math.floor(Math.abs(offMin) / 60)).padStart(2, '0')
  const mm = String(Math.abs(offMin) % 60).padStart(2, '0')
  if (style === 1 && mm === '00') return sign + hh
  return style === 2 ? sign + hh + mm : `${sign}${hh}:${mm}`
}
const tsFormat: Arb<TsFormat> = fc.oneof(
  w(3, pick<TsFormat>({ kind: 'int' }, { kind: 'frac' }, { kind: 'exp' })),
  w(7, fc.record({
    kind: fc.constant<'iso'>('iso'),
    // RFC 3339 also allows `t` and a space; other whitespace is neither RFC 3339 nor ISO 8601
    sep: fc.oneof(w(16, fc.constant('T')), w(2, pick('t', ' ')), w(1, pick('\t', '\n', '\r', '\f', '\v', '\u00a0', '\u3000', '\u2028', '\ufeff', '_', '  ', 'TT'))),
    frac: pick('', '', '.5', '.123', '.123456', '.123456789', '.0000000001'),
    offMin: fc.constantFrom(...offsets),
    style: fc.nat(5)
  }).map((r): TsFormat => ({ kind: 'iso', sep: r.sep, frac: r.frac, offMin: r.offMin, zone: zoneOf(r.offMin, r.style) })))
)
function renderTs (at: number, f: TsFormat): string {
  if (f.kind === 'int') return String(Math.round(at))
  if (f.kind === 'frac') return String(Math.round(at) + 0.25)
  if (f.kind === 'exp') return Math.round(at).toExponential(12)
  const local = new Date(Math.floor(at) + f.offMin * MINUTE).toISOString()
  return JSON.stringify(`${local.slice(0, 10)}${f.sep}${local.slice(11, 19)}${f.frac}${f.zone}`)
}
const OLDEST = -RETENTION_HOURS * HOUR
const validOffset: Arb<number> = fc.oneof(
  w(6, fc.integer({ min: -2 * HOUR, max: FUTURE_MS - MARGIN })),
  w(3, fc.integer({ min: OLDEST + MARGIN, max: 0 })),
  w(1, fc.integer({ min: OLDEST + MARGIN, max: OLDEST + 3 * HOUR })),
  w(1, fc.integer({ min: FUTURE_MS - 3 * MINUTE, max: FUTURE_MS - MARGIN }))
)
const invalidOffset: Arb<number> = fc.oneof(
  fc.integer({ min: OLDEST - 3 * HOUR, max: OLDEST - MARGIN }),
  fc.integer({ min: FUTURE_MS + MARGIN, max: 3 * HOUR }),
  fc.integer({ min: -50 * 365 * 24 * HOUR, max: 50 * 365 * 24 * HOUR })
)
const isoNoZone = (at: number): string => new Date(at).toISOString().slice(0, 19)
const badTs: Arb<string> = fc.oneof(
  fc.integer({ min: -2 * HOUR, max: 0 }).chain((off) => {
    const at = Date.now() + off
    const iso = new Date(at).toISOString()
    const day = iso.slice(0, 10)
    return pick(
      isoNoZone(at), isoNoZone(at) + '.123', day, iso.slice(0, 16) + 'Z', iso.replace(/[-:]/g, ''), isoNoZone(at) + ',5Z',
      `${day}T24:00:00Z`, `${day}T25:00:00Z`, `${day}T${iso.slice(11, 13)}:60:00Z`, `${day}T23:59:60Z`, `${day}T${iso.slice(11, 16)}:61Z`,
      `${iso.slice(0, 8)}32T00:00:00Z`, `${iso.slice(0, 8)}00T00:00:00Z`, `${iso.slice(0, 5)}13${iso.slice(7)}`, `${iso.slice(0, 5)}00${iso.slice(7)}`,
      isoNoZone(at) + '+24:00', isoNoZone(at) + '+23:60', isoNoZone(at) + '+2', isoNoZone(at) + '+2:00', isoNoZone(at) + 'UTC', isoNoZone(at) + ' Z', isoNoZone(at) + 'GMT',
      `${day}\t${iso.slice(11)}`, `${day}\n${iso.slice(11)}`, `${day}_${iso.slice(11)}`, `${day}\u00a0${iso.slice(11)}`, `${day}  ${iso.slice(11)}`,
      ` ${iso}`, `${iso} `, `${iso}\u0000`, new Date(at).toUTCString(), new Date(at).toString(), day.replace(/-/g, '/') + ' ' + iso.slice(11),
      String(at), String(at / 1000), 'now', 'yesterday', '', ' ', 'NaN', 'Infinity', '-Infinity', '0', '-0', '1e400', `+0${iso}`
    ).map((s) => JSON.stringify(s))
  }),
  fc.constant(null).chain(() => {
    const now = Date.now()
    return pick(String(Math.round(now / 1000)), String(now * 1000), '-0', '0', '1e308', '1e400', '-1e400', '9007199254740993', `[${now}]`, `{"ms":${now}}`)
  }),
  wrongType
)
const ts = {
  clean: fc.tuple(validOffset, tsFormat).map(([off, f]) => renderTs(Date.now() + off, f)),
  bad: fc.oneof(w(2, fc.tuple(invalidOffset, tsFormat).map(([off, f]) => renderTs(Date.now() + off, f))), w(3, badTs))
}

/** A JSON object member: key text (maybe escaped) and value text. */
interface Member { key: string, value: string }
const keyText = (k: string): Arb<string> => fc.oneof(w(25, fc.constant(JSON.stringify(k))), w(1, fc.constant(jsonStr(k, 'escapeAll'))))
const PROTO_KEYS = ['"__proto__"', '"\\u005f\\u005fproto\\u005f\\u005f"', '"__\\u0070roto__"', '"constructor"', '"\\u0063onstructor"', '"prototype"', '"__proto__ "']
const PROTO_VALUES = ['{"polluted":"yes"}', '{"prototype":{"polluted":"yes"}}', '{"model":"evil","success":true,"isAdmin":true}', '1', 'null', '[]',
  '{"constructor":{"prototype":{"polluted":"yes"}}}', '[{"__proto__":{"polluted":"yes"}}]', '{"__proto__":{"isAdmin":true}}']
const protoMember: Arb<Member> = fc.record({ key: fc.constantFrom(...PROTO_KEYS), value: fc.constantFrom(...PROTO_VALUES) })
/** An unknown field: ignored, whatever it holds. */
const plainUnknown: Arb<Member> = fc.record({
  key: fc.oneof(pick('extra', 'meta', 'x-request-id', 'Model', 'MODEL', 'model ', 'success_', 'ttft', 'timestamp_ms', 'id', '', 'provider_id', 'tokens'),
    fc.string({ unit: 'binary', maxLength: 8 })).map((k) => JSON.stringify(k)),
  value: fc.oneof(w(4, fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v))), w(1, wrongType), w(1, pick('"' + 'x'.repeat(10_000) + '"')))
})
const unknownMember: Arb<Member> = fc.oneof(
  w(8, plainUnknown),
  w(1, protoMember),
  w(1, fc.record({ key: pick('"nested"', '"meta"'), value: fc.array(protoMember, { minLength: 1, maxLength: 2 }).map((ms) => `{"a":{${ms.map((m) => `${m.key}:${m.value}`).join(',')}}}`) }))
)

type Mode = 'clean' | 'dirty'
interface FieldGen { clean: Arb<string>, bad: Arb<string> }
const valueOf = (g: FieldGen, mode: Mode): Arb<string> => mode === 'clean' ? g.clean : fc.oneof(w(5, g.clean), w(1, g.bad))
/** A field that is present `presence` of the time (always, when 1). */
const field = (name: string, g: FieldGen, mode: Mode, presence: number): Arb<Member | undefined> => {
  const m = fc.record({ key: keyText(name), value: valueOf(g, mode) })
  return presence >= 1 ? m : fc.option(m, { nil: undefined, freq: Math.max(2, Math.round(1 / (1 - presence))) })
}
const WS = ['', '', '', ' ', '\n', '\t', '\r\n', '  \n  ']

function objectText (members: Array<Member | undefined>, extras: Member[], dup: { at: number, value: string } | null, ws: string): string {
  const list = members.filter((m): m is Member => m !== undefined)
  for (const [i, e] of extras.entries()) list.splice((i * 7) % (list.length + 1), 0, e)
  if (dup !== null && list.length > 0) {
    const target = list[dup.at % list.length]
    // the duplicate goes before or after the original: JSON.parse keeps the last one
    if (target !== undefined) list.splice(dup.at % 2 === 0 ? 0 : list.length, 0, { key: target.key, value: dup.value })
  }
  return `{${ws}${list.map((m) => `${m.key}${ws}:${ws}${m.value}`).join(`,${ws}`)}${ws}}`
}

const anyValue: Arb<string> = fc.oneof(bool.clean, ms.clean, strText(cleanId(8)), wrongType)
const extrasArb = (mode: Mode): Arb<Member[]> => mode === 'clean' ? fc.array(plainUnknown, { maxLength: 1 }) : fc.array(unknownMember, { maxLength: 3 })
const dupArb = (mode: Mode): Arb<{ at: number, value: string } | null> => mode === 'clean' ? fc.constant(null) : maybe(fc.record({ at: fc.nat(), value: anyValue }), 1 / 8).map((d) => d ?? null)

const model = { clean: strText(cleanId(24)), bad: fc.oneof(w(3, strText(dirtyId(24, 256))), w(1, wrongType)) }
const name64 = { clean: strText(cleanId(12)), bad: fc.oneof(w(3, strText(dirtyId(12, 64))), w(1, wrongType)) }
const chatErr = enumOf(CHAT_ERRORS, ['error', 'unknown', 'fatal', 'Timeout'])
const fetchErr = enumOf(FETCH_ERRORS, ['network', 'other', 'rate_limit', 'Timeout'])
const status = enumOf(['success', 'error'], ['ok', 'failure', 'succeeded'])

function chatEvent (mode: Mode): Arb<string> {
  const dirty = mode === 'dirty'
  return fc.record({
    model: field('model', model, mode, dirty ? 0.95 : 1),
    provider: field('provider', name64, mode, 0.4),
    gateway: field('gateway', name64, mode, 0.4),
    success: field('success', bool, mode, dirty ? 0.95 : 1),
    ttft: field('ttft_ms', ms, mode, 0.5),
    total: field('total_time_ms', ms, mode, 0.5),
    error: field('error_type', chatErr, mode, 0.4),
    input: field('input_tokens', tokens(MAX_TOKENS), mode, 0.4),
    output: field('output_tokens', tokens(MAX_TOKENS), mode, 0.4),
    ts: field('timestamp', ts, mode, 0.5),
    extras: extrasArb(mode),
    dup: dupArb(mode),
    ws: fc.constantFrom(...WS)
  }).map((r) => {
    // a clean event only has error_type on a failure
    const error = mode === 'clean' && r.success?.value === 'true' ? undefined : r.error
    return objectText([r.model, r.provider, r.gateway, r.success, r.ttft, r.total, error, r.input, r.output, r.ts], r.extras, r.dup, r.ws)
  })
}

function fetchEvent (mode: Mode): Arb<string> {
  const dirty = mode === 'dirty'
  return fc.record({
    gateway: field('gateway', name64, mode, dirty ? 0.95 : 1),
    status: field('status', status, mode, dirty ? 0.95 : 1),
    count: field('model_count', tokens(MAX_MODEL_COUNT), mode, 0.5),
    rt: field('response_time_ms', ms, mode, 0.5),
    error: field('error_type', fetchErr, mode, 0.4),
    ts: field('timestamp', ts, mode, 0.5),
    extras: extrasArb(mode),
    dup: dupArb(mode),
    ws: fc.constantFrom(...WS)
  }).map((r) => {
    const error = mode === 'clean' && r.status?.value === '"success"' ? undefined : r.error
    return objectText([r.gateway, r.status, r.count, r.rt, error, r.ts], r.extras, r.dup, r.ws)
  })
}

const eventOf = (route: Route, mode: Mode): Arb<string> => route === 'chat' ? chatEvent(mode) : fetchEvent(mode)
const batchText = (items: string[], ws: string): string => `[${ws}${items.join(`,${ws}`)}${ws}]`

/** Breaks the JSON syntax of a body in one of the usual ways. */
const malformed = (body: Arb<string>): Arb<string> => fc.tuple(body, fc.nat(), fc.nat(12), fc.string({ unit: 'binary', minLength: 1, maxLength: 2 })).map(([s, n, how, junk]) => {
  const at = s.length === 0 ? 0 : n % s.length
  switch (how) {
    case 0: return s.slice(0, at)
    case 1: return s.slice(0, at) + junk + s.slice(at)
    case 2: return s.slice(0, at) + s.slice(at + 1)
    case 3: return s.replace(/"/g, "'")
    case 4: return s.replace(/}\s*$/, ',}')
    case 5: return '// comment\n' + s
    case 6: return s.replace(/:(\s*)[^,{}[\]]+/, ':$1NaN')
    case 7: return s + '}'
    case 8: return ")]}'\n" + s
    case 9: return s + s
    case 10: return s.replace(/"([a-z_]+)"(\s*):/, '$1$2:')
    case 11: return s.replace('"', '"\u0001')
    default: return s.replace(/:(\s*)-?\d+/, ':$1Infinity')
  }
})

const garbage: Arb<string> = pick('', ' ', '\n', 'null', 'true', 'false', '0', '-0', '1e400', '"model"', '"{}"', '{', '}', '[', ']', '[[]]', '[{}]', '[null]', '[1,2]',
  '{"model":}', '{"model"}', '{model:"a"}', "{'model':'a'}", '[,]', '{,}', 'NaN', 'undefined', '\u0000', '\ufeff', '\ufeff\ufeff{}',
  deep(1000, 'array'), deep(1000, 'object'), deep(10_000, 'array'), deep(10_000, 'object'), '[' + deep(1000, 'mixed') + ']')

/** A clean event with a prototype-pollution key at the top level, nested, or in a batch. */
const protoBody = (route: Route): Arb<string> => fc.tuple(eventOf(route, 'clean'), protoMember, fc.nat(3)).map(([e, m, where]) => {
  const inner = `${m.key}:${m.value}`
  if (where === 0) return e.replace(/^\{/, `{${inner},`).replace(/,(\s*)}$/, '$1}')
  if (where === 1) return e.replace(/}$/, `${/^\{\s*\}$/.test(e) ? '' : ','}"ext":{"deeper":[{${inner}}]}}`)
  if (where === 2) return `[${e},{${inner}}]`
  return `[${e.replace(/^\{/, `{${inner},`).replace(/,(\s*)}$/, '$1}')}]`
})

interface Req { payload: string, contentType: string | undefined }

const contentType: Arb<string | undefined> = fc.oneof(
  w(60, fc.constant('application/json')),
  w(3, pick('application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON')),
  w(1, pick(undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/vnd.api+json', 'multipart/form-data', 'application/jsonx'))
)

/** A whole request: mostly events (clean or not), sometimes batches of 0/1/999/1000/1001, malformed JSON, garbage. */
function requestArb (route: Route): Arb<Req> {
  const clean = eventOf(route, 'clean')
  const dirty = eventOf(route, 'dirty')
  const mostlyClean = fc.oneof(w(8, clean), w(1, dirty))
  const big = fc.tuple(clean, maybe(dirty, 1 / 3), fc.constantFrom(0, 1, 2, 999, 1000, 1001), fc.nat(), fc.constantFrom(...WS)).map(([tpl, bad, n, at, ws]) => {
    const items = Array.from({ length: n }, () => tpl)
    if (bad !== undefined && n > 0) items[at % n] = bad
    return batchText(items, ws)
  })
  const body: Arb<string> = fc.oneof(
    w(30, clean),
    w(30, dirty),
    w(12, fc.tuple(fc.array(mostlyClean, { minLength: 1, maxLength: 5 }), fc.constantFrom(...WS)).map(([a, ws]) => batchText(a, ws))),
    w(3, fc.tuple(fc.array(clean, { minLength: 6, maxLength: 40 }), maybe(dirty, 1 / 2), fc.nat()).map(([a, bad, at]) => {
      if (bad !== undefined) a[at % a.length] = bad
      return batchText(a, '')
    })),
    w(2, big),
    w(1, pick('[]', '[ ]', '[\n]')),
    w(6, malformed(fc.oneof(clean, fc.array(clean, { minLength: 1, maxLength: 3 }).map((a) => batchText(a, ''))))),
    w(3, garbage),
    w(5, protoBody(route)),
    w(2, fc.tuple(clean, pick(' ', '\n', '\t', '\r\n', '\ufeff', ' \ufeff', '\u00a0', '\u2028')).map(([e, pad]) => pad + e + (pad.startsWith('\ufeff') ? '' : pad)))
  )
  return fc.record({ payload: body, contentType })
}

// ---------------------------------------------------------------------------------------------
// Checking answers
// ---------------------------------------------------------------------------------------------

const preview = (s: string): string => s.length <= 400 ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, 400))}… (${s.length} chars)`

async function send (app: FastifyInstance, route: Route, req: Req): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {}
  if (req.contentType !== undefined) headers['content-type'] = req.contentType
  return await app.inject({ method: 'POST', url: URL_OF[route], headers, payload: req.payload })
}

const ERROR_KEYS = ['statusCode', 'code', 'error', 'message']

/** Throws (for fast-check) unless the answer is what the reference verdict allows. */
function check (res: LightMyRequestResponse, verdict: Verdict, req: Req): void {
  const s = res.statusCode
  const ctx = (): string => `status ${s}, reference ${verdict.ok ? `valid (${verdict.events} events)` : `invalid: ${verdict.why}`}; content-type ${String(req.contentType)}; body ${preview(req.payload)}; answer ${preview(res.body)}`
  if (s >= 500) throw new Error(`5xx: ${ctx()}`)
  if (verdict.ok) {
    if (s !== 202) throw new Error(`a valid body was refused: ${ctx()}`)
    const body = res.json<{ accepted?: unknown }>()
    if (body.accepted !== verdict.events) throw new Error(`accepted ${String(body.accepted)} instead of ${verdict.events}: ${ctx()}`)
    return
  }
  if (![400, 413, 415, 429].includes(s)) throw new Error(`an invalid body was answered ${s}: ${ctx()}`)
  let body: Json
  try {
    body = res.json<Json>()
  } catch {
    throw new Error(`error answer is not JSON: ${ctx()}`)
  }
  const extra = Object.keys(body).filter((k) => !ERROR_KEYS.includes(k))
  if (body.statusCode !== s || typeof body.error !== 'string' || typeof body.message !== 'string' || body.message === '' ||
    (body.code !== undefined && typeof body.code !== 'string') || extra.length > 0) {
    throw new Error(`error answer not in Fastify's shape: ${ctx()}`)
  }
}

const SENTINELS = ['polluted', 'isAdmin']
function assertNotPolluted (): void {
  for (const k of SENTINELS) {
    if (k in {} || hasOwn(Object.prototype, k) || k in []) throw new Error(`Object.prototype polluted with ${k}`)
  }
}

/** fast-check's report (seed, path, counterexample) and the error the property threw. */
function failure (err: unknown): string {
  const e = err as Error & { cause?: unknown }
  return e.cause instanceof Error ? `${e.message}\n${e.cause.message}` : e.message
}

type Tally = Map<number, number>
const tally = (m: Tally, status: number): void => { m.set(status, (m.get(status) ?? 0) + 1) }
const show = (m: Tally): string => [...m.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}: ${v}`).join(', ')

async function flushAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) if (await app.flusher.flush()) return
  throw new Error('buffer did not flush')
}

const protoKeysBefore = Reflect.ownKeys(Object.prototype).map(String).sort()
const arrayProtoKeysBefore = Reflect.ownKeys(Array.prototype).map(String).sort()
const fcParams = <T>(numRuns: number): fc.Parameters<T> => ({ numRuns, seed: SEED })

t.comment(`fast-check seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${RUNS} runs per route`)

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

for (const route of ['chat', 'fetch'] as const) {
  t.test(`POST ${URL_OF[route]}: ${RUNS} generated bodies agree with the reference, never a 5xx`, async (t) => {
    const { app } = await build(t, { config: CONFIG })
    const statuses: Tally = new Map()
    const reasons = new Map<string, number>()
    let valid = 0
    let invalid = 0
    try {
      await fc.assert(fc.asyncProperty(requestArb(route), async (req) => {
        const verdict = reference(route, req.payload, req.contentType, Date.now())
        const res = await send(app, route, req)
        tally(statuses, res.statusCode)
        if (verdict.ok) valid++
        else {
          invalid++
          const why = verdict.why.replace(/^event \d+: /, '').replace(/batch of \d+/, 'batch size').replace(/content-type .*/, 'content-type')
          reasons.set(why, (reasons.get(why) ?? 0) + 1)
        }
        check(res, verdict, req)
        assertNotPolluted()
      }), fcParams(RUNS))
      t.pass('every answer agreed with the reference')
    } catch (err) {
      t.fail(failure(err))
    }
    const fiveXX = [...statuses.entries()].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0)
    t.equal(fiveXX, 0, 'no 5xx')
    t.comment(`${route}: ${valid + invalid} requests (${valid} valid, ${invalid} invalid by the reference); statuses ${show(statuses)}; 5xx: ${fiveXX}`)
    t.comment(`${route}: why the reference refused: ${[...reasons.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join('; ')}`)
  })

  t.test(`POST ${URL_OF[route]}: invalid bodies (${INVALID_RUNS}) are refused with a 4xx and leave no key in the store`, async (t) => {
    const { app, store } = await build(t, { config: CONFIG })
    t.same(await store.keys(), [], 'a fresh store is empty')
    const statuses: Tally = new Map()
    const invalidReq = requestArb(route).filter((r) => !reference(route, r.payload, r.contentType, Date.now()).ok)
    try {
      await fc.assert(fc.asyncProperty(invalidReq, async (req) => {
        const verdict = reference(route, req.payload, req.contentType, Date.now())
        fc.pre(!verdict.ok)
        // flushed and counted first, so that shrinking after a failure is not misled by what it left
        await flushAll(app)
        const keysBefore = (await store.keys()).length
        const res = await send(app, route, req)
        tally(statuses, res.statusCode)
        check(res, verdict, req)
        if (res.statusCode < 400 || res.statusCode > 499) throw new Error(`not a 4xx: ${res.statusCode}`)
        if (!(await app.flusher.flush())) throw new Error('events pending after an invalid body')
        const keys = await store.keys()
        if (keys.length > keysBefore) throw new Error(`an invalid body left ${keys.length} keys (${keys.slice(0, 3).join(', ')}): ${preview(req.payload)}`)
      }), fcParams(INVALID_RUNS))
      t.pass('every invalid body was refused and recorded nothing')
    } catch (err) {
      t.fail(failure(err))
    }
    await flushAll(app)
    t.same(await store.keys(), [], 'the store is still empty')
    t.comment(`${route} (invalid only): statuses ${show(statuses)}`)
  })
}

// Accepted events are counted exactly: realtime deltas per model, provider and gateway.

interface RealtimeBody { requests: number, successes: number, gateway_fetches?: { fetches: number, errors: number } }

/** Ids for the counting property: valid, no lone surrogates (a URL cannot carry them), JS-special names included. */
const countId = (maxChunks: number, max: number): Arb<string> => fc.oneof(cleanId(maxChunks), fc.constantFrom(...OBJECT_NAMES))
  .filter((s) => !/\p{Cs}/u.test(s) && isId(s, max, max === 256))

interface Sent { route: Route, req: Req }

const countRun = fc.record({
  models: fc.uniqueArray(countId(20, 256), { minLength: 1, maxLength: 4 }),
  providers: fc.uniqueArray(countId(10, 64), { minLength: 1, maxLength: 3 }),
  gateways: fc.uniqueArray(countId(10, 64), { minLength: 1, maxLength: 3 }),
  requests: fc.array(fc.record({
    route: pick<Route>('chat', 'fetch'),
    events: fc.array(fc.record({
      m: fc.nat(),
      p: fc.option(fc.nat(), { nil: undefined }),
      g: fc.option(fc.nat(), { nil: undefined }),
      success: fc.boolean(),
      ago: fc.integer({ min: 0, max: 30 * MINUTE }),
      tsKind: fc.nat(3),
      ttft: fc.option(fc.nat(MAX_MS), { nil: undefined })
    }), { minLength: 1, maxLength: 30 }),
    /** an invalid request in between must change nothing */
    spoiler: maybe(fc.nat(), 1 / 4)
  }), { minLength: 1, maxLength: 6 })
})

t.test(`accepted events are counted exactly (${COUNT_RUNS} runs of 1..6 requests)`, async (t) => {
  const { app } = await build(t, { config: CONFIG })
  const realtime = async (type: string, id: string): Promise<RealtimeBody> => {
    const res = await app.inject({ method: 'GET', url: `/api/metrics/realtime?type=${type}&id=${encodeURIComponent(id)}&window=1h` })
    if (res.statusCode !== 200) throw new Error(`realtime ${type} ${JSON.stringify(id)} answered ${res.statusCode}: ${res.body}`)
    return res.json<RealtimeBody>()
  }
  let requests = 0
  let events = 0
  try {
    await fc.assert(fc.asyncProperty(countRun, async (run) => {
      const at = <T>(xs: T[], i: number): T => xs[i % xs.length] as T
      const sent: Sent[] = []
      const expected = { model: new Map<string, number>(), provider: new Map<string, number>(), gateway: new Map<string, number>(), fetch: new Map<string, number>() }
      const bump = (m: Map<string, number>, k: string): void => { m.set(k, (m.get(k) ?? 0) + 1) }
      for (const r of run.requests) {
        const now = Date.now()
        const items = r.events.map((e) => {
          const stamp = [undefined, now - e.ago, new Date(now - e.ago).toISOString(), new Date(now - e.ago + 2 * HOUR).toISOString().replace('Z', '+02:00')][e.tsKind]
          if (r.route === 'fetch') {
            return { gateway: at(run.gateways, e.m), status: e.success ? 'success' : 'error', ...(e.ttft !== undefined ? { response_time_ms: e.ttft } : {}), ...(stamp !== undefined ? { timestamp: stamp } : {}) }
          }
          return {
            model: at(run.models, e.m),
            ...(e.p !== undefined ? { provider: at(run.providers, e.p) } : {}),
            ...(e.g !== undefined ? { gateway: at(run.gateways, e.g) } : {}),
            success: e.success,
            ...(e.ttft !== undefined ? { ttft_ms: e.ttft } : {}),
            ...(stamp !== undefined ? { timestamp: stamp } : {})
          }
        })
        if (r.spoiler !== undefined) {
          // the same batch with one event broken: all or nothing
          const broken = items.map((e) => ({ ...e }))
          const victim = broken[r.spoiler % broken.length] as Json
          victim.timestamp = now + HOUR
          sent.push({ route: r.route, req: { payload: JSON.stringify(broken), contentType: 'application/json' } })
        }
        sent.push({ route: r.route, req: { payload: JSON.stringify(items.length === 1 ? items[0] : items), contentType: 'application/json' } })
        for (const e of items as Json[]) {
          if (r.route === 'fetch') bump(expected.fetch, e.gateway as string)
          else {
            bump(expected.model, e.model as string)
            bump(expected.provider, (e.provider as string | undefined) ?? providerOf(e.model as string))
            bump(expected.gateway, (e.gateway as string | undefined) ?? 'default')
          }
        }
      }
      await flushAll(app)
      const ids = {
        model: [...expected.model.keys()],
        provider: [...expected.provider.keys()],
        gateway: [...new Set([...expected.gateway.keys(), ...expected.fetch.keys()])]
      }
      const before = {
        model: await Promise.all(ids.model.map(async (id) => await realtime('model', id))),
        provider: await Promise.all(ids.provider.map(async (id) => await realtime('provider', id))),
        gateway: await Promise.all(ids.gateway.map(async (id) => await realtime('gateway', id)))
      }
      let acceptedChat = 0
      let acceptedFetch = 0
      for (const s of sent) {
        const verdict = reference(s.route, s.req.payload, s.req.contentType, Date.now())
        const res = await send(app, s.route, s.req)
        requests++
        check(res, verdict, s.req)
        if (verdict.ok) {
          events += verdict.events
          if (s.route === 'chat') acceptedChat += verdict.events
          else acceptedFetch += verdict.events
        }
      }
      await flushAll(app)
      const delta = async (type: 'model' | 'provider' | 'gateway', i: number, id: string): Promise<RealtimeBody & { fetches: number }> => {
        const a = await realtime(type, id)
        const b = before[type][i] as RealtimeBody
        return { requests: a.requests - b.requests, successes: a.successes - b.successes, fetches: (a.gateway_fetches?.fetches ?? 0) - (b.gateway_fetches?.fetches ?? 0) }
      }
      let sumModels = 0
      for (const [i, id] of ids.model.entries()) {
        const d = await delta('model', i, id)
        sumModels += d.requests
        if (d.requests !== expected.model.get(id)) throw new Error(`model ${JSON.stringify(id)}: ${d.requests} requests counted, ${String(expected.model.get(id))} sent`)
      }
      if (sumModels !== acceptedChat) throw new Error(`sum of accepted chat events ${acceptedChat} != ${sumModels} requests over the models`)
      for (const [i, id] of ids.provider.entries()) {
        const d = await delta('provider', i, id)
        if (d.requests !== expected.provider.get(id)) throw new Error(`provider ${JSON.stringify(id)}: ${d.requests} requests counted, ${String(expected.provider.get(id))} sent`)
      }
      let sumFetches = 0
      for (const [i, id] of ids.gateway.entries()) {
        const d = await delta('gateway', i, id)
        sumFetches += d.fetches
        if (d.requests !== (expected.gateway.get(id) ?? 0)) throw new Error(`gateway ${JSON.stringify(id)}: ${d.requests} requests counted, ${String(expected.gateway.get(id) ?? 0)} sent`)
        if (d.fetches !== (expected.fetch.get(id) ?? 0)) throw new Error(`gateway ${JSON.stringify(id)}: ${d.fetches} fetches counted, ${String(expected.fetch.get(id) ?? 0)} sent`)
      }
      if (sumFetches !== acceptedFetch) throw new Error(`sum of accepted fetch events ${acceptedFetch} != ${sumFetches} fetches over the gateways`)
      assertNotPolluted()
    }), fcParams(COUNT_RUNS))
    t.pass('every accepted event was counted once')
  } catch (err) {
    t.fail(failure(err))
  }
  t.comment(`counting: ${requests} requests, ${events} accepted events checked`)
})

t.test('Object.prototype and Array.prototype are untouched after the runs', async (t) => {
  t.same(Reflect.ownKeys(Object.prototype).map(String).sort(), protoKeysBefore, 'Object.prototype has the same own keys')
  t.same(Reflect.ownKeys(Array.prototype).map(String).sort(), arrayProtoKeysBefore, 'Array.prototype has the same own keys')
  for (const k of SENTINELS) t.notOk(k in {}, `no inherited ${k}`)
})
