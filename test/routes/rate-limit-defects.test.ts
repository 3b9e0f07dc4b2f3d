/**
 * The rate limits as a user meets them: the defaults let one busy gateway through and still refuse a
 * flood, requests with a wrong token are throttled per address, and a 429 states the configured window.
 */
import t from 'tap'
import { defaultConfig, type Config } from '../../src/config.js'
import { AUTH_FAILURES_PER_MINUTE } from '../../src/plugins/auth.js'
import { build } from '../helpers/app.js'

const INGEST = 'ingest-token-aaaaaaaaaaaa'
const READ = 'read-token-cccccccccccccc'
const event = { model: 'acme/m1', success: true, ttft_ms: 100 }
/** What one gateway must be able to record, one event per request (docs/design.md). */
const GATEWAY_EVENTS_PER_S = 10_000

t.test('the default limit lets one gateway send 10 000 single-event requests a second, and refuses a flood', async (t) => {
  // A clock that moves 0.1 ms per request: 10 000 requests a second, for a whole window and one more
  // second, so that a limit on any window must have let a sustained 10 000 a second through.
  let now = Date.now()
  t.intercept(Date, 'now', { value: () => now })
  const defaults = defaultConfig()
  t.ok(defaults.rateLimitMax > 0, 'the limit is on by default')
  const stepMs = 1000 / GATEWAY_EVENTS_PER_S
  const sustained = (defaults.rateLimitWindowMs + 1000) / stepMs
  for (const [label, config, headers, flood] of [
    ['with a token', { ingestTokens: [INGEST] }, { authorization: `Bearer ${INGEST}` }, true],
    ['anonymous, from one address', {}, {}, false]
  ] as Array<[string, Partial<Config>, Record<string, string>, boolean]>) {
    const { app } = await build(t, { config })
    const post = async () => await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event, headers, remoteAddress: '10.1.1.1' })
    let admitted = 0
    for (let i = 0; i < sustained; i++, now += stepMs) {
      const res = await post()
      if (res.statusCode !== 202) {
        t.fail(`${label}: request ${i + 1} at ${GATEWAY_EVENTS_PER_S}/s refused with ${res.statusCode}`)
        return
      }
      admitted++
    }
    t.equal(admitted, sustained, `${label}: ${sustained} requests over ${sustained * stepMs / 1000} s at ${GATEWAY_EVENTS_PER_S} a second, none refused`)
    await app.flusher.flush()
    const rt = (await app.inject({ url: '/api/metrics/realtime?id=acme/m1', remoteAddress: '10.2.2.2' })).json()
    t.equal(rt.requests, admitted, `${label}: every admitted event is recorded`)
    if (!flood) continue
    // Then a flood: the clock stands still in the next window, every request in the same instant.
    now += defaults.rateLimitWindowMs
    let inWindow = 0
    let refused: Awaited<ReturnType<typeof post>> | undefined
    for (let i = 0; i < 3 * defaults.rateLimitMax && refused === undefined; i++) {
      const res = await post()
      if (res.statusCode === 202) inWindow++
      else refused = res
    }
    t.equal(inWindow, defaults.rateLimitMax, `${label}: a flood is admitted up to the limit of one window`)
    t.equal(refused?.statusCode, 429, `${label}: and refused beyond it`)
    t.ok(Number(refused?.headers['retry-after']) >= 1, `${label}: with Retry-After`)
  }
})

t.test('requests with a missing or wrong token are limited per address; the right token never is', async (t) => {
  const { app } = await build(t, { config: { ingestTokens: [INGEST], readTokens: [READ] } })
  const post = async (remoteAddress: string, authorization?: string) =>
    await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event, remoteAddress, headers: authorization === undefined ? {} : { authorization } })
  for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) {
    const res = await post('10.0.0.1', i % 2 === 0 ? `Bearer guess-${i}-xxxxxxxxxxxxxxxx` : undefined)
    if (res.statusCode !== 401) t.fail(`refusal ${i + 1}: ${res.statusCode}, expected 401`)
  }
  const limited = await post('10.0.0.1', 'Bearer guess-last-xxxxxxxxxxxxxxxx')
  t.equal(limited.statusCode, 429, `refusal ${AUTH_FAILURES_PER_MINUTE + 1} from one address: 429`)
  t.match(limited.json(), { statusCode: 429, code: 'METRICS_RATE_LIMITED', message: /without a valid token/ })
  t.ok(Number(limited.headers['retry-after']) >= 1, 'with Retry-After')
  t.equal((await app.inject({ url: '/api/metrics/realtime?id=x', remoteAddress: '10.0.0.1' })).statusCode, 429, 'a read without its token from that address too')
  t.equal((await post('10.0.0.1', `Bearer ${INGEST}`)).statusCode, 202, 'the right token from the same address still passes')
  t.equal((await app.inject({ url: '/api/metrics/realtime?id=x', remoteAddress: '10.0.0.1', headers: { authorization: `Bearer ${READ}` } })).statusCode, 200, 'so does the read token')
  t.equal((await post('10.0.0.2', 'Bearer guess-other-xxxxxxxxxxxxxxxx')).statusCode, 401, 'another address still gets 401')
})

t.test('with rate limiting off, refusals stay 401', async (t) => {
  const { app } = await build(t, { config: { ingestTokens: [INGEST], rateLimitMax: 0 } })
  for (let i = 0; i <= AUTH_FAILURES_PER_MINUTE; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: event })
    if (res.statusCode !== 401) t.fail(`refusal ${i + 1}: ${res.statusCode}`)
  }
  t.pass(`${AUTH_FAILURES_PER_MINUTE + 1} refusals, all 401`)
})

t.test('a 429 states the configured window, not what is left of it', async (t) => {
  const now = Date.now()
  t.intercept(Date, 'now', { value: () => now })
  for (const [windowMs, said] of [[60_000, '60 s'], [1_000, '1 s'], [2_500, '2500 ms']] as const) {
    const { app } = await build(t, { config: { rateLimitMax: 2, rateLimitWindowMs: windowMs } })
    for (let i = 0; i < 2; i++) await app.inject({ url: '/api/metrics/realtime?id=x' })
    const res = await app.inject({ url: '/api/metrics/realtime?id=x' })
    t.equal(res.statusCode, 429)
    t.equal(res.json().message, `rate limit of 2 requests per ${said} exceeded; retry after the Retry-After delay`, `window ${windowMs} ms`)
  }
})
