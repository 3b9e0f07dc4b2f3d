/**
 * determineErrorType (packages/client/src/errors.ts) on the errors a gateway really sees, and the
 * extractProvider re-export of the SDK.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { determineErrorType as fromIndex, extractProvider, type ChatErrorType } from '../../packages/client/src/index.js'
import { determineErrorType } from '../../packages/client/src/errors.js'
import { extractProvider as extractProviderImpl } from '../../packages/client/src/provider.js'

const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code })
const named = (message: string, name: string): Error => Object.assign(new Error(message), { name })

async function timeoutReason (): Promise<unknown> {
  const signal = AbortSignal.timeout(1)
  // AbortSignal.timeout's timer does not keep the process alive: without this one the test process
  // could find its event loop empty and exit before the signal fires.
  const keepAlive = setTimeout(() => {}, 10_000)
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  clearTimeout(keepAlive)
  return signal.reason
}

/** The error a real fetch gives for a port nothing listens on. */
async function refusedFetchError (): Promise<unknown> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return await fetch(`http://127.0.0.1:${port}/`).then(() => null, (err: unknown) => err)
}

t.test('the table', async (t) => {
  const cases: Array<[string, unknown, ChatErrorType]> = [
    ['DOMException AbortError', new DOMException('x', 'AbortError'), 'timeout'],
    ['Error named AbortError', named('The operation was aborted', 'AbortError'), 'timeout'],
    ['AbortSignal.timeout reason (TimeoutError)', await timeoutReason(), 'timeout'],
    ['DOMException TimeoutError', new DOMException('x', 'TimeoutError'), 'timeout'],
    ['message with "timeout"', new Error('Request timeout after 30000ms'), 'timeout'],
    ['message with "Timeout" (any case)', new Error('Upstream Timeout'), 'timeout'],
    ['message with "timed out"', new Error('connection timed out'), 'timeout'],
    ['code ETIMEDOUT', withCode('connect failed', 'ETIMEDOUT'), 'timeout'],
    ['{status: 429}', { status: 429 }, 'rate_limit'],
    ['{statusCode: 429}', { statusCode: 429 }, 'rate_limit'],
    ['Error with status 429', Object.assign(new Error('provider said no'), { status: 429 }), 'rate_limit'],
    ['"rate limit exceeded"', new Error('rate limit exceeded'), 'rate_limit'],
    ['"Rate-limit reached"', new Error('Rate-limit reached for requests'), 'rate_limit'],
    ['"429 Too Many Requests"', new Error('429 Too Many Requests'), 'rate_limit'],
    ['code ECONNREFUSED', withCode('connect failed', 'ECONNREFUSED'), 'network'],
    ['code ECONNRESET', withCode('read failed', 'ECONNRESET'), 'network'],
    ['code ENOTFOUND', withCode('getaddrinfo failed', 'ENOTFOUND'), 'network'],
    ['TypeError fetch failed, cause ECONNREFUSED', new TypeError('fetch failed', { cause: withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED') }), 'network'],
    ['a generic message whose cause has ECONNREFUSED', new Error('request failed', { cause: withCode('connect failed', 'ECONNREFUSED') }), 'network'],
    ['a plain cause object with code ECONNRESET', new Error('upstream failed', { cause: { code: 'ECONNRESET' } }), 'network'],
    ['"network error"', new Error('network error'), 'network'],
    ['"socket hang up"', new Error('socket hang up'), 'network'],
    ['a real fetch to a closed port', await refusedFetchError(), 'network'],
    ['null', null, 'other'],
    ['undefined', undefined, 'other'],
    ['a string', 'boom', 'other'],
    ['an empty string', '', 'other'],
    ['a number', 42, 'other'],
    ['the number 429', 429, 'other'],
    ['a boolean', false, 'other'],
    ['an empty object', {}, 'other'],
    ['Error("boom")', new Error('boom'), 'other'],
    ['{status: 500}', { status: 500, message: 'internal error' }, 'other'],
    ['a TypeError', new TypeError('x is not a function'), 'other']
  ]
  for (const [name, error, expected] of cases) {
    t.equal(determineErrorType(error), expected, name)
  }
  t.equal(fromIndex, determineErrorType, 'the SDK re-exports the same function')
})

t.test('never throws, whatever it is given', async (t) => {
  const nasty: Array<[string, unknown]> = [
    ['a symbol', Symbol('s')],
    ['a function', () => 1],
    ['an object without a prototype', Object.create(null)],
    ['a message without toString', { message: Object.create(null) }],
    ['a name without toString', { name: Object.create(null) }],
    ['a message getter that throws', { get message (): string { throw new Error('getter') } }],
    ['a cause that is itself nasty', new Error('x', { cause: { message: Object.create(null) } })]
  ]
  const kinds = new Set(['timeout', 'rate_limit', 'network', 'other'])
  for (const [name, error] of nasty) {
    let got: unknown
    t.doesNotThrow(() => { got = determineErrorType(error) }, name)
    t.ok(got === undefined || kinds.has(got as string), `${name}: one of the four kinds`)
  }
})

t.test('extractProvider is re-exported by the SDK', async (t) => {
  t.equal(extractProvider, extractProviderImpl, 'the same function the service uses')
  const cases: Array<[string, string]> = [
    ['anthropic/claude-3.5-sonnet', 'anthropic'],
    ['openai/gpt-4o:online', 'openai'],
    ['mistral:large', 'mistral'],
    ['a:b/c', 'a:b'],
    ['gpt-4', 'unknown'],
    ['/leading-slash', 'unknown'],
    [':leading-colon', 'unknown'],
    ['', 'unknown']
  ]
  for (const [model, provider] of cases) t.equal(extractProvider(model), provider, JSON.stringify(model))
})
