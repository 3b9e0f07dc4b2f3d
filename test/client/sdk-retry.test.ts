/**
 * The SDK's retry schedule on a fake clock and a fake fetch, so nothing depends on how long anything
 * takes: Retry-After (seconds or a date) is waited for, backoff never exceeds retryMaxMs, a batch
 * expires after maxRetryMs (never past the service's 10-minute idempotency window), and which
 * answers are retried at all.
 */
import t, { type Test } from 'tap'
import { createMetricsClient, type DeliveryError, type MetricsClient, type MetricsClientOptions } from '../../packages/client/src/index.js'

const NEVER = 1_000_000_000

interface Call { key: string | null, body: unknown[] }
type Answer = Response | Error | ((call: Call) => Response | Error)

/** A fetch answering from a script (the last answer repeats), recording each call. */
function scripted (answers: Answer[]): { fetch: typeof fetch, calls: Call[] } {
  const calls: Call[] = []
  const f = async (_input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const call = { key: new Headers(init?.headers).get('idempotency-key'), body: JSON.parse(String(init?.body)) as unknown[] }
    calls.push(call)
    let a = answers[Math.min(calls.length, answers.length) - 1]!
    if (typeof a === 'function') a = a(call)
    if (a instanceof Error) throw a
    return a.clone()
  }
  return { fetch: f as typeof fetch, calls }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
const accepted = (): Response => new Response('{"accepted":1}', { status: 202 })

function client (t: Test, opts: Partial<MetricsClientOptions> & { fetch: typeof fetch, now: () => number }): { c: MetricsClient, errors: DeliveryError[] } {
  const errors: DeliveryError[] = []
  const c = createMetricsClient({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: NEVER, closeTimeoutMs: 0, onError: (e) => { errors.push(e) }, ...opts })
  t.teardown(async () => { await c.close() })
  return { c, errors }
}

const record = (c: MetricsClient, n: number): void => {
  for (let i = 0; i < n; i++) c.recordChat({ model: 'retry/m', success: true, output_tokens: i })
}

const busy: Array<[string, () => Response]> = [
  ['503 METRICS_BUFFER_FULL', () => json(503, { statusCode: 503, code: 'METRICS_BUFFER_FULL', message: 'the buffer is full' }, { 'retry-after': '30' })],
  ['429 from the rate limiter (METRICS_RATE_LIMITED)', () => json(429, { statusCode: 429, code: 'METRICS_RATE_LIMITED', message: 'rate limit' }, { 'retry-after': '30' })],
  ['429 FST_ERR_RATE_LIMIT', () => json(429, { statusCode: 429, code: 'FST_ERR_RATE_LIMIT', message: 'Rate limit exceeded' }, { 'retry-after': '30' })],
  ['429 with statusCode only', () => json(429, { statusCode: 429 }, { 'retry-after': '30' })],
  ['502 from a proxy', () => new Response('bad gateway', { status: 502, headers: { 'retry-after': '30' } })],
  ['504 from a proxy', () => new Response(null, { status: 504, headers: { 'retry-after': '30.0' } })]
]

for (const [name, answer] of busy) {
  t.test(`${name} with Retry-After: 30: the same batch, with the same key, not before 30 s`, async (t) => {
    let clock = 1000
    const { fetch, calls } = scripted([answer(), accepted()])
    const { c, errors } = client(t, { fetch, now: () => clock, retryBaseMs: 1, retryMaxMs: 1 })
    record(c, 3)
    await c.flush()
    t.equal(calls.length, 1)
    t.equal(c.stats().queued, 3, 'still queued')
    clock += 29_999
    await c.flush()
    t.equal(calls.length, 1, 'nothing sent before Retry-After')
    clock += 1
    await c.flush()
    t.equal(calls.length, 2, 'sent again once it has passed')
    t.equal(calls[1]?.key, calls[0]?.key, 'with the same key')
    t.same(calls[1]?.body, calls[0]?.body, 'the same events')
    t.same(c.stats(), { queued: 0, sent: 3, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 1 })
    t.same(errors, [])
  })
}

t.test('Retry-After as an HTTP date', async (t) => {
  let clock = 0
  const { fetch, calls } = scripted([() => new Response(null, { status: 503, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } }), accepted()])
  const { c } = client(t, { fetch, now: () => clock, retryBaseMs: 1, retryMaxMs: 1 })
  record(c, 1)
  await c.flush()
  clock = 55_000
  await c.flush()
  t.equal(calls.length, 1, 'not before the date')
  clock = 61_000
  await c.flush()
  t.equal(calls.length, 2)
  t.equal(c.stats().sent, 1)
})

t.test('while one route waits for its retry, the other keeps sending, and new events queue behind the waiting batch', async (t) => {
  let clock = 0
  const chatCalls: Call[] = []
  const fetchCalls: Call[] = []
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const call = { key: new Headers(init?.headers).get('idempotency-key'), body: JSON.parse(String(init?.body)) as unknown[] }
    if (String(input).endsWith('/chat')) {
      chatCalls.push(call)
      return chatCalls.length === 1 ? new Response(null, { status: 503, headers: { 'retry-after': '10' } }) : accepted()
    }
    fetchCalls.push(call)
    return accepted()
  }
  const { c } = client(t, { fetch: f as typeof fetch, now: () => clock, maxBatch: 2 })
  record(c, 2)
  await c.flush()
  record(c, 5) // queued behind the waiting batch: no request now, even past maxBatch
  c.recordGatewayFetch({ gateway: 'gw', status: 'success' })
  await c.flush()
  t.equal(chatCalls.length, 1)
  t.equal(fetchCalls.length, 1, 'the other route is not held up')
  t.equal(c.stats().queued, 7)
  clock = 10_000
  await c.flush()
  t.same(chatCalls.map((x) => x.body.length), [2, 2, 2, 2, 1], 'the waiting batch first, then the rest in order')
  t.same(chatCalls.flatMap((x) => x.body.map((e) => (e as { output_tokens: number }).output_tokens)), [0, 1, 0, 1, 0, 1, 2, 3, 4])
  t.equal(c.stats().sent, 8)
})

t.test('without Retry-After: each retry within retryMaxMs, the same key throughout, expired after maxRetryMs', async (t) => {
  let clock = 0
  const { fetch, calls } = scripted([new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) })])
  const { c, errors } = client(t, { fetch, now: () => clock, retryBaseMs: 1000, retryMaxMs: 4000, maxRetryMs: 20_000 })
  record(c, 4)
  const seen: number[] = []
  for (let i = 0; i < 20 && c.stats().expired === 0; i++) {
    await c.flush()
    seen.push(calls.length)
    clock += 4000 // the longest backoff: every retry is due by then
  }
  t.same(seen, seen.map((_, i) => i + 1), 'one more attempt at each step: no wait ever exceeded retryMaxMs')
  t.ok(calls.length >= 5 && calls.length <= 7, `attempts within maxRetryMs (${calls.length})`)
  t.equal(new Set(calls.map((x) => x.key)).size, 1, 'one key')
  t.same(c.stats(), { queued: 0, sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 4, retries: calls.length - 1 })
  t.same(errors.map((e) => [e.kind, e.count]), [['expired', 4]])
  t.match(errors[0]?.message, /ECONNREFUSED/, 'naming the last error')
})

t.test('the first retry comes within retryBaseMs, later ones within the doubled ceiling', async (t) => {
  let clock = 0
  const { fetch, calls } = scripted([new TypeError('fetch failed'), new TypeError('fetch failed'), new TypeError('fetch failed'), accepted()])
  const { c } = client(t, { fetch, now: () => clock, retryBaseMs: 100, retryMaxMs: 100_000 })
  record(c, 1)
  await c.flush()
  clock += 100
  await c.flush()
  t.equal(calls.length, 2, 'within 100 ms')
  clock += 200
  await c.flush()
  t.equal(calls.length, 3, 'within 200 ms')
  clock += 400
  await c.flush()
  t.equal(calls.length, 4, 'within 400 ms')
  t.equal(c.stats().sent, 1)
})

t.test('maxRetryMs stays below the service\'s 10-minute idempotency window, whatever is asked', async (t) => {
  let clock = 0
  const { fetch, calls } = scripted([new Response(null, { status: 503 })])
  const { c } = client(t, { fetch, now: () => clock, maxRetryMs: 3_600_000, timeoutMs: 5000 })
  record(c, 1)
  let lastAttemptAt = 0
  for (let i = 0; i < 200 && c.stats().expired === 0; i++) {
    const before = calls.length
    await c.flush()
    if (calls.length > before) lastAttemptAt = clock
    clock += 5000
  }
  t.equal(c.stats().expired, 1, 'it expired')
  t.ok(lastAttemptAt + 5000 < 600_000, `the last attempt (at ${lastAttemptAt} ms, plus timeoutMs) within the window`)
  t.ok(lastAttemptAt >= 500_000, `but not long before (${lastAttemptAt} ms)`)
})

t.test('a Retry-After beyond the retry budget expires the batch at once instead of blocking the route', async (t) => {
  const clock = 0
  const { fetch, calls } = scripted([new Response(null, { status: 503, headers: { 'retry-after': '86400' } }), accepted()])
  const { c, errors } = client(t, { fetch, now: () => clock, maxRetryMs: 60_000 })
  record(c, 2)
  await c.flush()
  t.equal(c.stats().expired, 2)
  t.equal(errors[0]?.status, 503)
  record(c, 1)
  await c.flush()
  t.equal(calls.length, 2, 'the next batch goes at once')
  t.equal(c.stats().sent, 1)
})

const final: Array<[string, () => Response, 'failed']> = [
  ['401', () => json(401, { statusCode: 401, code: 'METRICS_UNAUTHORIZED', message: 'missing or wrong token' }), 'failed'],
  ['403', () => json(403, { statusCode: 403, message: 'forbidden' }), 'failed'],
  ['404', () => new Response('not found', { status: 404 }), 'failed'],
  ['422', () => json(422, { statusCode: 422 }), 'failed']
]
for (const [name, answer, kind] of final) {
  t.test(`${name}: not retried, counted as ${kind} and reported`, async (t) => {
    const { fetch, calls } = scripted([answer()])
    const { c, errors } = client(t, { fetch, now: () => 0 })
    record(c, 3)
    await c.flush()
    t.equal(calls.length, 1)
    t.equal(c.stats()[kind], 3)
    t.equal(c.stats().retries, 0)
    t.same(errors.map((e) => [e.kind, e.count, e.status]), [[kind, 3, Number(name)]])
  })
}

t.test('408 and 500 are retried with the same key', async (t) => {
  const { fetch, calls } = scripted([new Response(null, { status: 408 }), new Response(null, { status: 500 }), accepted()])
  const { c } = client(t, { fetch, now: () => performance.now(), retryBaseMs: 1, retryMaxMs: 2, closeTimeoutMs: 10_000 })
  record(c, 2)
  await c.close()
  t.equal(calls.length, 3)
  t.equal(new Set(calls.map((x) => x.key)).size, 1)
  t.equal(c.stats().sent, 2)
})

t.test('a request that times out is retried with the same key, even with a fetch that ignores its signal', async (t) => {
  let n = 0
  const calls: Array<string | null> = []
  const f = async (_input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push(new Headers(init?.headers).get('idempotency-key'))
    if (++n === 1) return await new Promise<Response>(() => {}) // never settles, signal or not
    return accepted()
  }
  const { c } = client(t, { fetch: f as typeof fetch, now: () => performance.now(), timeoutMs: 50, retryBaseMs: 1, retryMaxMs: 2, closeTimeoutMs: 10_000 })
  record(c, 1)
  await c.close()
  t.equal(calls.length, 2)
  t.equal(calls[1], calls[0])
  t.same(c.stats(), { queued: 0, sent: 1, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 1 })
})

t.test('a 429 whose body is not JSON (a proxy\'s) is the rate limiter\'s kind: retried', async (t) => {
  const { fetch, calls } = scripted([new Response('Too Many Requests', { status: 429 }), accepted()])
  const { c } = client(t, { fetch, now: () => performance.now(), retryBaseMs: 1, retryMaxMs: 2, closeTimeoutMs: 10_000 })
  record(c, 1)
  await c.close()
  t.equal(calls.length, 2)
  t.equal(c.stats().sent, 1)
})

t.test('a fetch that throws something that cannot even be described is a network error too', async (t) => {
  const weird = Object.defineProperty({}, 'message', { get () { throw new Error('getter') } })
  let n = 0
  const f = async (): Promise<Response> => {
    // eslint-disable-next-line no-throw-literal -- what some fetch wrappers throw
    if (++n === 1) throw weird as Error
    return accepted()
  }
  const errors: DeliveryError[] = []
  const c = createMetricsClient({ baseUrl: 'http://127.0.0.1:9', fetch: f as typeof fetch, flushIntervalMs: NEVER, retryBaseMs: 1, retryMaxMs: 2, maxRetryMs: 0, onError: (e) => { errors.push(e) } })
  record(c, 1)
  await c.close()
  t.same(errors.map((e) => [e.kind, e.message]), [['expired', 'not delivered within maxRetryMs (0 ms, 1 attempts); last: an error that cannot be described']])
})

t.test('without Web Crypto, keys are still unique and of the allowed characters', async (t) => {
  const original = Object.getOwnPropertyDescriptor(globalThis, 'crypto')
  Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true })
  t.teardown(() => { if (original !== undefined) Object.defineProperty(globalThis, 'crypto', original) })
  const { fetch, calls } = scripted([accepted()])
  const { c } = client(t, { fetch, now: () => 0, maxBatch: 1 })
  record(c, 50)
  await c.flush()
  t.equal(calls.length, 50)
  t.equal(new Set(calls.map((x) => x.key)).size, 50, 'a new key per batch')
  t.ok(calls.every((x) => x.key !== null && /^[A-Za-z0-9._:-]{1,128}$/.test(x.key)), String(calls[0]?.key))
})
