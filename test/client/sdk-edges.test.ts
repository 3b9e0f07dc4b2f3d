/**
 * What the SDK meets from something other than the service itself, on a fake clock and a fake
 * fetch: a proxy's Retry-After it cannot read, a proxy's 429 whose JSON body is not an object, and
 * errors of every shape from fetch, which onError describes.
 */
import t, { type Test } from 'tap'
import { createMetricsClient, type DeliveryError, type MetricsClient, type MetricsClientOptions } from '../../packages/client/src/index.js'

const NEVER = 1_000_000_000

interface Call { key: string | null, body: unknown[] }

/** A fetch answering from a script (the last answer repeats); a function answer may throw anything. */
function scripted (answers: Array<() => Response>): { fetch: typeof fetch, calls: Call[] } {
  const calls: Call[] = []
  const f = async (_input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({ key: new Headers(init?.headers).get('idempotency-key'), body: JSON.parse(String(init?.body)) as unknown[] })
    return answers[Math.min(calls.length, answers.length) - 1]!()
  }
  return { fetch: f as typeof fetch, calls }
}

const accepted = (): Response => new Response('{"accepted":1}', { status: 202 })

function client (t: Test, opts: Partial<MetricsClientOptions> & { fetch?: typeof fetch, now: () => number }): { c: MetricsClient, errors: DeliveryError[] } {
  const errors: DeliveryError[] = []
  const c = createMetricsClient({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: NEVER, closeTimeoutMs: 0, onError: (e) => { errors.push(e) }, ...opts })
  t.teardown(async () => { await c.close() })
  return { c, errors }
}

const record = (c: MetricsClient, n: number): void => {
  for (let i = 0; i < n; i++) c.recordChat({ model: 'edge/m', success: true, output_tokens: i })
}

for (const header of ['soon', 'Fri, 32 Foo 2026 25:00:00 GMT']) {
  t.test(`Retry-After ${JSON.stringify(header)} (neither seconds nor a date) is ignored: the retry follows the backoff, with the same key`, async (t) => {
    let clock = 0
    const { fetch, calls } = scripted([() => new Response(null, { status: 503, headers: { 'retry-after': header } }), accepted])
    const { c, errors } = client(t, { fetch, now: () => clock, retryBaseMs: 1000, retryMaxMs: 1000 })
    record(c, 2)
    await c.flush()
    t.equal(calls.length, 1)
    t.equal(c.stats().queued, 2, 'waiting for its retry')
    clock = 1000 // the longest backoff
    await c.flush()
    t.equal(calls.length, 2, 'sent again within retryMaxMs')
    t.equal(calls[1]?.key, calls[0]?.key, 'with the same key')
    t.same(c.stats(), { queued: 0, sent: 2, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 1 })
    t.same(errors, [])
  })
}

for (const body of ['"Too Many Requests"', 'null', '0']) {
  t.test(`429 from a proxy whose JSON body is ${body}: a rate limit, waited out with the same key, nothing refused`, async (t) => {
    let clock = 0
    const { fetch, calls } = scripted([() => new Response(body, { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '30' } }), accepted])
    const { c, errors } = client(t, { fetch, now: () => clock, retryBaseMs: 1, retryMaxMs: 1 })
    record(c, 3)
    await c.flush()
    t.equal(calls.length, 1)
    t.equal(c.stats().queued, 3, 'nothing set aside')
    clock = 29_999
    await c.flush()
    t.equal(calls.length, 1, 'nothing sent before Retry-After')
    clock = 30_000
    await c.flush()
    t.equal(calls.length, 2)
    t.equal(calls[1]?.key, calls[0]?.key, 'with the same key')
    t.same(calls[1]?.body, calls[0]?.body, 'the same events')
    t.same(c.stats(), { queued: 0, sent: 3, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 1 })
    t.same(errors, [])
  })
}

const thrown: Array<[string, () => unknown, string]> = [
  ['undici\'s error, caused by a code', () => new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) }), 'TypeError: fetch failed (ECONNREFUSED)'],
  ['undici\'s error, caused by an error without a code', () => new TypeError('fetch failed', { cause: new Error('redirect count exceeded') }), 'TypeError: fetch failed (redirect count exceeded)'],
  ['an error caused by a string', () => new Error('offline', { cause: 'no route to host' }), 'Error: offline (no route to host)'],
  ['an error with a null cause', () => new Error('offline', { cause: null }), 'Error: offline'],
  ['a string', () => 'offline', 'Error: offline'],
  ['undefined', () => undefined, 'Error: undefined']
]

for (const [name, error, described] of thrown) {
  t.test(`a fetch that throws ${name}: a network error, named in what onError reports`, async (t) => {
    let n = 0
    // A fetch given in the options may throw anything.
    const f = async (): Promise<Response> => { if (++n === 1) throw error(); return accepted() }
    const { c, errors } = client(t, { fetch: f as typeof fetch, now: () => 0, maxRetryMs: 0 })
    record(c, 2)
    await c.flush()
    t.equal(n, 1, 'no retry once maxRetryMs is spent')
    t.same(c.stats(), { queued: 0, sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 2, retries: 0 })
    t.same(errors.map((e) => [e.kind, e.count, e.message]), [['expired', 2, `not delivered within maxRetryMs (0 ms, 1 attempts); last: ${described}`]])
  })
}

t.test('a baseUrl of a scheme fetch cannot use: each batch expires, and onError names the cause undici gives', async (t) => {
  const { c, errors } = client(t, { baseUrl: 'ftp://127.0.0.1:9', now: () => 0, maxRetryMs: 0 })
  record(c, 2)
  await c.flush()
  t.same(c.stats(), { queued: 0, sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 2, retries: 0 })
  t.equal(errors.length, 1)
  t.match(errors[0]?.message, /last: TypeError: fetch failed \([^)]+\)$/, 'the cause, though it has no code')
})
