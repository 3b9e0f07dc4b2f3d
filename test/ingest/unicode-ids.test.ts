/**
 * Ids reach Redis as UTF-8. A string holding an unpaired UTF-16 surrogate has no UTF-8 form (the
 * client sends U+FFFD in its place), so `sur/a\ud800` and `sur/a\udc00` would share every key and
 * one flush marker. Such ids are refused (400, naming the field); every accepted id keeps keys of
 * its own.
 */
import t from 'tap'
import fc from 'fast-check'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { chatValidator, fetchValidator } from '../../src/ingest/normalize.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { encodeId, entityKey, indexKey, markerKey, entityTag, pairKey } from '../../src/store/keys.js'
import { startRedis } from '../helpers/redis.js'
import { SCHEMA_KEY } from '../../src/store/layout.js'

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 0x7fffffff))
const RUNS = Number(process.env.FUZZ_RUNS ?? 0) > 0 ? Number(process.env.FUZZ_RUNS) : 2000
const NOW = Date.UTC(2026, 0, 1, 10, 30)
const chat = chatValidator(() => ({ now: NOW, retentionHours: 168 }))
const fetch = fetchValidator(() => ({ now: NOW, retentionHours: 168 }))

/** What Redis stores for a string: its UTF-8 bytes. */
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8')
/** Whether a string survives the trip to Redis and back unchanged (independently of the service's check). */
const survivesUtf8 = (s: string): boolean => utf8(s).toString('utf8') === s
/** The inverse of encodeId, written here from the key schema (docs/design.md). */
const decodeId = (s: string): string => s.replace(/%(25|7B|7D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))

t.test('an id holding an unpaired surrogate is refused, naming the field', async (t) => {
  const cases: Array<[string, unknown, 'chat' | 'fetch', string]> = [
    ['model, lone high surrogate', { model: 'sur/a\ud800', success: true }, 'chat', 'body.model'],
    ['model, lone low surrogate', { model: 'sur/a\udc00', success: true }, 'chat', 'body.model'],
    ['model, reversed pair', { model: 'sur/\ude00\ud83d', success: true }, 'chat', 'body.model'],
    ['provider', { model: 'a/b', provider: 'acme\udbff', success: true }, 'chat', 'body.provider'],
    ['gateway', { model: 'a/b', gateway: '\udfffeu', success: true }, 'chat', 'body.gateway'],
    ['in a batch', [{ model: 'a/b', success: true }, { model: 'a/\ud800b', success: true }], 'chat', 'body[1].model'],
    ['fetch gateway', { gateway: 'eu\ud800', status: 'success' }, 'fetch', 'body.gateway'],
    ['an id of a model list', { gateway: 'eu', status: 'success', models: ['a/b', 'a/\udc00'] }, 'fetch', 'body.models[1]']
  ]
  for (const [name, body, route, field] of cases) {
    const r = (route === 'chat' ? chat : fetch)(body)
    t.match(r, { error: { statusCode: 400, code: 'METRICS_INVALID_EVENT', message: new RegExp(`^${field.replace(/[[\].]/g, '\\$&')} must be well-formed Unicode: it holds an unpaired surrogate \\(\\\\ud[89a-f][0-9a-f]{2}\\)`) } }, name)
  }
  t.match(chat({ model: 'sur/a\u{10000}', provider: 'acme\u{1F600}', gateway: 'eu\u{10FFFF}', success: true }), { value: [{ model: 'sur/a\u{10000}' }] }, 'characters outside the BMP (surrogate pairs) are accepted')
  t.match(fetch({ gateway: 'eu', status: 'success', models: ['a/\u{1F600}'] }), { value: [{ models: ['a/\u{1F600}'] }] })
})

/** Strings built from pieces likely to make trouble: surrogate halves (which may pair up), key syntax, anything. */
const piece = fc.oneof(
  fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00', '%', '%25', '{', '}', '/', ':', 'a', 'é', '\u{10000}'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })
)
const anyId = fc.array(piece, { minLength: 1, maxLength: 6 }).map((parts) => parts.join(''))
const accepted = (model: string): boolean => 'value' in chat({ model, success: true })

t.test('every accepted id reaches Redis unchanged, and distinct accepted ids never share a key', async (t) => {
  let refusedLone = 0
  let acceptedIds = 0
  fc.assert(fc.property(anyId, (id) => {
    if (!survivesUtf8(id)) {
      // Not well-formed: always refused, so it can never merge with another id in Redis.
      if (accepted(id)) return false
      refusedLone++
      return true
    }
    if (!accepted(id)) return true // whitespace or control characters: refused for that
    acceptedIds++
    const keys = [entityKey('model', id, 'stats', '2026-01-01-10'), pairKey(id, 'gateway', id, 'dists', '2026-01-01-10'), markerKey(entityTag('gateway', id), 'abc'), id]
    return keys.every(survivesUtf8) && decodeId(encodeId(id)) === id
  }), { numRuns: RUNS, seed: SEED })
  t.ok(refusedLone > RUNS / 20, `ids with an unpaired surrogate were tried and refused (${refusedLone})`)
  t.ok(acceptedIds > RUNS / 20, `accepted ids were tried (${acceptedIds})`)

  let distinctPairs = 0
  fc.assert(fc.property(anyId, anyId, fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }), (a, b, gateway) => {
    if (a === b || !accepted(a) || !accepted(b)) return true
    distinctPairs++
    const differ = (x: string, y: string): boolean => !utf8(x).equals(utf8(y))
    return differ(entityKey('model', a, 'stats', 'h'), entityKey('model', b, 'stats', 'h')) &&
      differ(markerKey(entityTag('model', a), 'i'), markerKey(entityTag('model', b), 'i')) &&
      differ(pairKey(a, 'gateway', gateway, 'stats', 'h'), pairKey(b, 'gateway', gateway, 'stats', 'h')) &&
      differ(a, b) // as a field of the activity index
  }), { numRuns: RUNS, seed: SEED })
  t.ok(distinctPairs > RUNS / 20, `pairs of distinct accepted ids were tried (${distinctPairs})`)
  t.comment(`seed ${SEED}`)

  t.ok(utf8('sur/a\ud800').equals(utf8('sur/a\udc00')), 'the defect: two lone surrogates reach Redis as the same bytes')
})

t.test('against Redis: two ids differing only in a lone surrogate are refused; two differing only in a low surrogate of a pair stay apart', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const app = await buildApp({ config: defaultConfig({ redis: { url: redis.url }, flushIntervalMs: 20, cacheTtlMs: 0 }), logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const post = async (model: string, n: number): Promise<{ statusCode: number, body: { message?: string } }> => {
    const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(Array.from({ length: n }, () => ({ model, success: true }))) })
    return { statusCode: res.statusCode, body: res.json() }
  }
  const high = await post('sur/a\ud800', 3)
  const low = await post('sur/a\udc00', 1)
  t.equal(high.statusCode, 400, 'sur/a\\ud800: 400')
  t.match(high.body.message, /^body\[0\]\.model must be well-formed Unicode/)
  t.equal(low.statusCode, 400, 'sur/a\\udc00: 400')
  t.ok(await app.flusher.flush())
  t.same((await redis.client.keys('metrics:*')).filter((k) => k !== SCHEMA_KEY), [], 'nothing of them reached Redis')

  // U+10000 and U+10001 are \ud800\udc00 and \ud800\udc01: they differ in the low surrogate only.
  const a = 'sur/a\u{10000}'
  const b = 'sur/a\u{10001}'
  t.equal((await post(a, 3)).statusCode, 202)
  t.equal((await post(b, 1)).statusCode, 202)
  t.ok(await app.flusher.flush())
  const hour = bucketName('hour', Date.now())
  const n = async (id: string): Promise<number> => Number(await redis.client.hget(entityKey('model', id, 'stats', hour), 'n'))
  t.equal(await n(a), 3, `${a}: its 3 events`)
  t.equal(await n(b), 1, `${b}: its 1 event, counted apart`)
  const index = await redis.client.hgetall(indexKey('model', 'requests', hour))
  t.same(index, { [a]: '3', [b]: '1' }, 'two ids in the activity index')
  for (const [id, expected] of [[a, 3], [b, 1]] as const) {
    const rt = (await app.inject({ url: `/api/metrics/realtime?type=model&id=${encodeURIComponent(id)}&window=5m` })).json<{ requests: number }>()
    t.equal(rt.requests, expected, `${id}: realtime reads its own events`)
  }
})
