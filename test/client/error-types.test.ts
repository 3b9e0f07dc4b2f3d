/**
 * The error-type table of docs/integration.md, one test per row, each with an error object made by
 * the library a gateway gets it from: the openai SDK, the Vercel AI SDK, undici's fetch (the package
 * and Node's global one), axios-shaped errors; most of them from real requests to loopback servers
 * that answer 429 / 500, reset or close the connection, or never answer. Then the bounds that keep
 * determineErrorType from throwing, and extractProvider.
 */
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import OpenAI from 'openai'
import { fetch as undiciFetch } from 'undici'
import { APICallError, RetryError, createGateway, generateText, streamText } from 'ai'
import { MockLanguageModelV3 } from 'ai/test'
import { determineErrorType, type ChatErrorType } from '../../packages/client/src/errors.js'
import { extractProvider } from '../../packages/client/src/provider.js'

async function listen (server: Server | NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return (server.address() as AddressInfo).port
}

/** A loopback TCP server that hands each connection to `onSocket`; closed, with its connections, at the end. */
async function tcpServer (onSocket: (s: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createNetServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    onSocket(s)
  })
  const port = await listen(server)
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${port}`
}

/** A loopback port nothing listens on: a server's, once closed. */
async function closedPort (): Promise<string> {
  const server = createNetServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}`
}

const BODIES: Record<number, { error: Record<string, unknown> }> = {
  429: { error: { message: 'Rate limit reached for requests', type: 'rate_limit_exceeded', param: null, code: 'rate_limit_exceeded' } },
  500: { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } },
  503: { error: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', param: null, code: null } }
}

/** An HTTP server answering /status/<code>/… with that status and an OpenAI-style error body. */
async function statusServer (): Promise<string> {
  const server = createServer((req, res) => {
    const status = Number(/^\/status\/(\d{3})\//.exec(req.url ?? '')?.[1] ?? 404)
    req.resume()
    req.on('end', () => {
      // retry-after-ms: the AI SDK's retries wait this instead of its 2 s backoff.
      res.writeHead(status, { 'content-type': 'application/json', 'retry-after-ms': '0' })
      res.end(JSON.stringify(BODIES[status] ?? { error: { message: 'not found' } }))
    })
  })
  const port = await listen(server)
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${port}`
}

const answering = await statusServer()
/** Closes each connection once the request has arrived (undici: UND_ERR_SOCKET "other side closed"). */
const closing = await tcpServer((s) => { s.once('data', () => s.destroy()) })
/** Resets each connection (an RST) once the request has arrived: ECONNRESET. */
const resetting = await tcpServer((s) => { s.once('data', () => s.resetAndDestroy()) })
/** Accepts connections and never answers. */
const silent = await tcpServer(() => {})
const refused = await closedPort()

/** What a promise rejects with; a test fails if it resolves. */
async function rejection (p: PromiseLike<unknown>): Promise<unknown> {
  try {
    await p
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

/** Fetches `url` with undici's fetch and Node's global one: one error of each. */
async function fetchErrors (url: string, init: () => RequestInit = () => ({})): Promise<Array<[string, unknown]>> {
  return [
    ['undici fetch', await rejection(undiciFetch(url, init() as Parameters<typeof undiciFetch>[1]))],
    ['global fetch', await rejection(fetch(url, init()))]
  ]
}

const openai = (baseURL: string, timeout = 10_000): OpenAI => new OpenAI({ apiKey: 'test', baseURL, maxRetries: 0, timeout })
const chat = async (client: OpenAI, signal?: AbortSignal): Promise<unknown> =>
  await rejection(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, signal !== undefined ? { signal } : {}))
const headers = new Headers({ 'x-request-id': 'req_1' })
const apiCallError = (statusCode: number | undefined, extra: Partial<ConstructorParameters<typeof APICallError>[0]> = {}): APICallError =>
  new APICallError({ message: 'provider error', url: 'https://api.example/v1/chat', requestBodyValues: {}, ...(statusCode !== undefined ? { statusCode } : {}), ...extra })

/** One row of the table: the error `make` gives is classified `expected`; `shape` checks it is the object the row names. */
function row (source: string, expected: ChatErrorType, make: () => unknown, shape?: (t: Test, e: unknown) => void): void {
  t.test(`${source} → ${expected}`, async (t) => {
    const error = await make()
    shape?.(t, error)
    t.equal(determineErrorType(error), expected)
  })
}

const causeOf = (e: unknown): unknown => (e as { cause?: unknown }).cause
const codeOf = (e: unknown): unknown => (e as { code?: unknown }).code
const nameOf = (e: unknown): unknown => (e as { name?: unknown }).name

// The original rules, on plain errors.
row('message containing 429', 'rate_limit', () => new Error('Request failed: HTTP 429'))
row('message containing "rate limit"', 'rate_limit', () => new Error('rate limit exceeded, slow down'))
row('message containing "timeout"', 'timeout', () => new Error('upstream timeout'))
row('AbortError (AbortController.abort())', 'timeout', () => {
  const ac = new AbortController()
  ac.abort()
  return ac.signal.reason
}, (t, e) => t.equal(nameOf(e), 'AbortError'))
row('message containing "network"', 'network', () => new Error('network unreachable'))
row('message containing "ECONNREFUSED"', 'network', () => new Error('connect ECONNREFUSED 10.0.0.1:443'))
row('any other error (a TypeError of the gateway\'s own)', 'other', () => new TypeError('Cannot read properties of undefined (reading \'choices\')'))
row('a thrown string with "rate limit"', 'rate_limit', () => 'rate limit exceeded')

// openai SDK: its classes as it makes them, then its client against loopback servers.
row('openai RateLimitError (constructed)', 'rate_limit', () => new OpenAI.RateLimitError(429, BODIES[429]?.error, undefined, headers))
row('openai APIError.generate(429)', 'rate_limit', () => OpenAI.APIError.generate(429, BODIES[429], undefined, headers),
  (t, e) => t.ok(e instanceof OpenAI.RateLimitError))
row('openai APIConnectionTimeoutError (constructed)', 'timeout', () => new OpenAI.APIConnectionTimeoutError())
row('openai APIUserAbortError (constructed)', 'timeout', () => new OpenAI.APIUserAbortError())
row('openai APIConnectionError without a cause', 'network', () => new OpenAI.APIConnectionError({ message: undefined }),
  (t, e) => t.equal((e as Error).message, 'Connection error.'))
row('openai InternalServerError 500 (constructed)', 'other', () => new OpenAI.InternalServerError(500, BODIES[500]?.error, undefined, headers))
row('openai InternalServerError 503 (constructed)', 'other', () => OpenAI.APIError.generate(503, BODIES[503], undefined, headers),
  (t, e) => t.ok(e instanceof OpenAI.InternalServerError))
row('openai InternalServerError 504 (constructed)', 'timeout', () => OpenAI.APIError.generate(504, undefined, 'Gateway Timeout', headers),
  (t, e) => t.ok(e instanceof OpenAI.InternalServerError))
row('openai APIError 408 (constructed)', 'timeout', () => OpenAI.APIError.generate(408, undefined, 'Request Timeout', headers))
row('openai BadRequestError 400 mentioning 429 tokens', 'other', () => OpenAI.APIError.generate(400, { error: { message: 'max_tokens is too large: 429 tokens over the limit' } }, undefined, headers),
  (t, e) => t.ok(e instanceof OpenAI.BadRequestError))
row('openai client, server answers 429', 'rate_limit', async () => await chat(openai(`${answering}/status/429/v1`)),
  (t, e) => t.ok(e instanceof OpenAI.RateLimitError))
row('openai client, server answers 500', 'other', async () => await chat(openai(`${answering}/status/500/v1`)),
  (t, e) => t.ok(e instanceof OpenAI.InternalServerError))
row('openai client, server never answers (timeout: 100)', 'timeout', async () => await chat(openai(`${silent}/v1`, 100)),
  (t, e) => t.ok(e instanceof OpenAI.APIConnectionTimeoutError))
row('openai client, connection refused', 'network', async () => await chat(openai(`${refused}/v1`)), (t, e) => {
  t.ok(e instanceof OpenAI.APIConnectionError)
  t.equal(codeOf(causeOf(causeOf(e))), 'ECONNREFUSED', 'APIConnectionError → TypeError fetch failed → ECONNREFUSED')
})
row('openai client, connection reset', 'network', async () => await chat(openai(`${resetting}/v1`)), (t, e) => {
  t.ok(e instanceof OpenAI.APIConnectionError)
  t.equal(codeOf(causeOf(causeOf(e))), 'ECONNRESET')
})
row('openai client, request aborted by the caller', 'timeout', async () => {
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 20)
  return await chat(openai(`${silent}/v1`), ac.signal)
}, (t, e) => t.ok(e instanceof OpenAI.APIUserAbortError))

// Vercel AI SDK.
row('AI SDK APICallError statusCode 429', 'rate_limit', () => apiCallError(429))
row('AI SDK APICallError statusCode 408', 'timeout', () => apiCallError(408))
row('AI SDK APICallError statusCode 504', 'timeout', () => apiCallError(504))
row('AI SDK APICallError statusCode 500', 'other', () => apiCallError(500))
row('AI SDK APICallError statusCode 503', 'other', () => apiCallError(503))
row('AI SDK RetryError, lastError 429', 'rate_limit', () => new RetryError({ message: 'Failed after 2 attempts', reason: 'maxRetriesExceeded', errors: [apiCallError(500), apiCallError(429)] }))
row('AI SDK RetryError, lastError 500 (an earlier 429 does not count)', 'other', () => new RetryError({ message: 'Failed after 2 attempts', reason: 'maxRetriesExceeded', errors: [apiCallError(429), apiCallError(500)] }))
row('AI SDK APICallError, socket reset two causes deep', 'network', async () => {
  const [[, fetchError]] = await fetchErrors(`${resetting}/`) as [[string, unknown]]
  // What @ai-sdk/provider-utils throws when fetch fails: "Cannot connect to API", the fetch error as cause.
  return apiCallError(undefined, { message: 'Cannot connect to API: fetch failed', cause: fetchError, isRetryable: true })
}, (t, e) => t.equal(codeOf(causeOf(causeOf(e))), 'ECONNRESET', 'APICallError → TypeError fetch failed → ECONNRESET'))
row('AI SDK generateText retrying a 429 (RetryError of APICallError)', 'rate_limit', async () => {
  const model = new MockLanguageModelV3({
    doGenerate: async () => { throw new APICallError({ message: 'Too Many Requests', url: 'https://api.example/v1/chat', requestBodyValues: {}, statusCode: 429, responseHeaders: { 'retry-after-ms': '0' } }) }
  })
  return await rejection(generateText({ model, prompt: 'hi', maxRetries: 1 }))
}, (t, e) => {
  t.ok(RetryError.isInstance(e))
  t.ok(APICallError.isInstance((e as RetryError).lastError))
})
row('AI SDK generateText via the gateway provider, server answers 429', 'rate_limit', async () => {
  const gateway = createGateway({ baseURL: `${answering}/status/429/v1/ai`, apiKey: 'test' })
  return await rejection(generateText({ model: gateway('openai/gpt-4o'), prompt: 'hi', maxRetries: 1 }))
}, (t, e) => t.ok(RetryError.isInstance(e)))
row('AI SDK generateText via the gateway provider, connection reset (RetryError → 500-status wrapper → APICallError → ECONNRESET)', 'network', async () => {
  const gateway = createGateway({ baseURL: `${resetting}/v1/ai`, apiKey: 'test' })
  return await rejection(generateText({ model: gateway('openai/gpt-4o'), prompt: 'hi', maxRetries: 1 }))
}, (t, e) => {
  const last = (e as RetryError).lastError
  t.equal((last as { statusCode?: unknown }).statusCode, 500, 'the gateway provider gives the reset a status 500')
  t.equal(codeOf(causeOf(causeOf(last))), 'ECONNRESET')
})
row('AI SDK generateText, abortSignal: AbortSignal.timeout(50), server never answers', 'timeout', async () => {
  const gateway = createGateway({ baseURL: `${silent}/v1/ai`, apiKey: 'test' })
  return await rejection(generateText({ model: gateway('openai/gpt-4o'), prompt: 'hi', maxRetries: 0, abortSignal: AbortSignal.timeout(50) }))
}, (t, e) => t.equal(nameOf(e), 'TimeoutError'))
row('AI SDK streamText onError, server answers 429', 'rate_limit', async () => {
  const gateway = createGateway({ baseURL: `${answering}/status/429/v1/ai`, apiKey: 'test' })
  const errors: unknown[] = []
  const result = streamText({ model: gateway('openai/gpt-4o'), prompt: 'hi', maxRetries: 0, onError: ({ error }) => { errors.push(error) } })
  await result.consumeStream()
  return errors.length === 1 ? errors[0] : new Error(`onError called ${errors.length} times`)
}, (t, e) => t.equal((e as { statusCode?: unknown }).statusCode, 429))

// undici / fetch: each row with both the undici package and Node's global fetch.
function fetchRow (source: string, expected: ChatErrorType, url: () => string, check: (t: Test, e: unknown) => void, init?: () => RequestInit): void {
  t.test(`${source} → ${expected}`, async (t) => {
    for (const [which, error] of await fetchErrors(url(), init)) {
      check(t, error)
      t.equal(determineErrorType(error), expected, which)
    }
  })
}
fetchRow('fetch, connection refused (TypeError fetch failed, cause ECONNREFUSED)', 'network', () => refused,
  (t, e) => t.equal(codeOf(causeOf(e)), 'ECONNREFUSED'))
fetchRow('fetch, connection reset (TypeError fetch failed, cause ECONNRESET)', 'network', () => resetting,
  (t, e) => t.equal(codeOf(causeOf(e)), 'ECONNRESET'))
fetchRow('fetch, connection closed by the server (TypeError fetch failed, cause UND_ERR_SOCKET)', 'network', () => closing,
  (t, e) => t.equal(codeOf(causeOf(e)), 'UND_ERR_SOCKET'))
fetchRow('fetch, AbortSignal.timeout(50), server never answers (DOMException TimeoutError)', 'timeout', () => silent,
  (t, e) => t.equal(nameOf(e), 'TimeoutError'), () => ({ signal: AbortSignal.timeout(50) }))
fetchRow('fetch, aborted by the caller (DOMException AbortError)', 'timeout', () => silent, (t, e) => t.equal(nameOf(e), 'AbortError'), () => {
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 20)
  return { signal: ac.signal }
})
row('AggregateError of refused connections (several addresses tried)', 'network', async () => {
  const [[, a], [, b]] = await fetchErrors(refused) as [[string, unknown], [string, unknown]]
  return new AggregateError([causeOf(a), causeOf(b)], 'connect failed')
})
row('an undici connect timeout (code UND_ERR_CONNECT_TIMEOUT)', 'timeout', () =>
  new TypeError('fetch failed', { cause: Object.assign(new Error('Connect Timeout Error'), { name: 'ConnectTimeoutError', code: 'UND_ERR_CONNECT_TIMEOUT' }) }))
row('DOMException NetworkError (browsers)', 'network', () => new DOMException('A network error occurred.', 'NetworkError'))
row('browser fetch failure (TypeError: Failed to fetch)', 'network', () => new TypeError('Failed to fetch'))

// axios-shaped errors (axios is not a dependency: these are its documented fields).
const axiosError = (message: string, code: string, status?: number): Error =>
  Object.assign(new Error(message), { name: 'AxiosError', isAxiosError: true, code, ...(status !== undefined ? { response: { status, data: {} } } : {}) })
row('axios response.status 429', 'rate_limit', () => axiosError('Request failed with status code 429', 'ERR_BAD_REQUEST', 429))
row('axios response.status 503', 'other', () => axiosError('Request failed with status code 503', 'ERR_BAD_RESPONSE', 503))
row('axios timeout (ECONNABORTED, "timeout of 100ms exceeded")', 'timeout', () => axiosError('timeout of 100ms exceeded', 'ECONNABORTED'))
row('axios ERR_NETWORK ("Network Error")', 'network', () => axiosError('Network Error', 'ERR_NETWORK'))
row('axios ECONNREFUSED (Node adapter)', 'network', () => axiosError('connect ECONNREFUSED 127.0.0.1:42917', 'ECONNREFUSED'))

t.test('what decides between conflicting signs', async (t) => {
  t.equal(determineErrorType(new Error('connect ECONNREFUSED 127.0.0.1:42917')), 'network', 'a port containing 429 is not a status')
  t.equal(determineErrorType('HTTP 429'), 'rate_limit', '429 alone in a thrown string')
  t.equal(determineErrorType(Object.assign(new Error('upstream timeout'), { status: 429 })), 'rate_limit', 'a status beats the message')
  t.equal(determineErrorType(Object.assign(new Error('boom'), { status: 500, cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) })), 'network', 'a connection code deep inside beats a generic 500 outside')
  t.equal(determineErrorType(Object.assign(new Error('rate limit reached'), { status: 503 })), 'rate_limit', 'the original text rule still applies under a generic 5xx')
  t.equal(determineErrorType(Object.assign(new Error('429'), { status: 1 })), 'rate_limit', 'a status outside 100..599 is not HTTP (a process exit status)')
  t.equal(determineErrorType(Object.assign(new Error('429'), { status: 1000 })), 'rate_limit', 'nor is a status above 599')
  t.equal(determineErrorType(Object.assign(new Error('x'), { status: 429.5 })), 'other', 'a status that is not an integer is ignored')
  t.equal(determineErrorType(Object.assign(new Error('x'), { statusCode: 429 })), 'rate_limit', 'statusCode')
  t.equal(determineErrorType({ response: { status: 504 } }), 'timeout', 'response.status')
  t.equal(determineErrorType(Object.assign(new Error('x'), { code: 'ETIMEDOUT' })), 'timeout', 'code ETIMEDOUT')
  t.equal(determineErrorType(new Error('request failed', { cause: 'socket hang up' })), 'network', 'a string cause is read as a message')
  t.equal(determineErrorType(new Error('connection timed out')), 'timeout', '"timed out"')
  t.equal(determineErrorType(new Error('429 Too Many Requests')), 'rate_limit', '"Too Many Requests"')
  for (const code of ['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) {
    t.equal(determineErrorType(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code }) })), 'timeout', `cause code ${code}`)
  }
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']) {
    t.equal(determineErrorType(new Error('request failed', { cause: Object.assign(new Error('x'), { code }) })), 'network', `cause code ${code}`)
  }
})

t.test('never throws, and stays bounded', async (t) => {
  const cyclic = new Error('outer') as Error & { cause?: unknown }
  cyclic.cause = new Error('inner', { cause: cyclic })
  const self = new Error('self') as Error & { cause?: unknown }
  self.cause = self
  const revoked = Proxy.revocable({}, {})
  revoked.revoke()
  const throwing = new Proxy({}, { get () { throw new Error('trap') }, has () { throw new Error('trap') }, getPrototypeOf () { throw new Error('trap') } })
  const cases: Array<[string, unknown, ChatErrorType]> = [
    ['a cycle of causes', cyclic, 'other'],
    ['an error that is its own cause', self, 'other'],
    ['a revoked Proxy', revoked.proxy, 'other'],
    ['a Proxy whose every trap throws', throwing, 'other'],
    ['a getter that throws, beside a message that tells', { get cause (): unknown { throw new Error('getter') }, get code (): unknown { throw new Error('getter') }, message: 'rate limit' }, 'rate_limit'],
    ['errors: a revoked Proxy', { errors: revoked.proxy }, 'other'],
    ['errors: an array-like whose items throw', { errors: { length: 2, get 0 (): unknown { throw new Error('getter') }, 1: { code: 'ECONNRESET' } } }, 'network'],
    ['errors that is not a list', { errors: 'ECONNRESET' }, 'other'],
    ['a constructor that throws on name', { constructor: new Proxy(function () {}, { get () { throw new Error('trap') } }) }, 'other'],
    ['a message that is not a string', { message: { toString () { throw new Error('toString') } } }, 'other'],
    ['null', null, 'other'],
    ['undefined', undefined, 'other'],
    ['a number 429', 429, 'other'],
    ['a symbol', Symbol('429'), 'other'],
    ['a function', () => 'rate limit', 'other'],
    ['an object without a prototype', Object.create(null), 'other']
  ]
  for (const [name, error, expected] of cases) {
    let got: unknown
    t.doesNotThrow(() => { got = determineErrorType(error) }, name)
    t.equal(got, expected, name)
  }

  // Causes are followed 8 links deep, no further.
  const nest = (links: number): unknown => {
    let e: unknown = Object.assign(new Error('x'), { code: 'ECONNREFUSED' })
    for (let i = 0; i < links; i++) e = new Error('wrapped', { cause: e })
    return e
  }
  t.equal(determineErrorType(nest(8)), 'network', 'a code 8 causes deep is found')
  t.equal(determineErrorType(nest(9)), 'other', 'a code 9 causes deep is not')
  // At most 32 errors are looked at.
  const plain = Array.from({ length: 40 }, () => new Error('x'))
  t.equal(determineErrorType(new AggregateError([...plain.slice(0, 30), Object.assign(new Error('x'), { code: 'ECONNRESET' })])), 'network', 'the aggregate and 31 of its errors are read')
  t.equal(determineErrorType(new AggregateError([...plain, Object.assign(new Error('x'), { code: 'ECONNRESET' })])), 'other', 'not a 41st')
  // A long chain of causes costs what its first 8 links cost.
  t.equal(determineErrorType(nest(100_000)), 'other', 'a 100 000-link chain is not walked')
})

t.test('extractProvider: the part before the first "/", else before the first ":", else unknown', async (t) => {
  const cases: Array<[unknown, string]> = [
    ['anthropic/claude-3.5-sonnet', 'anthropic'],
    ['openai/gpt-4o:online', 'openai'],
    ['gpt-4o:online', 'gpt-4o'],
    ['mistral:large', 'mistral'],
    ['a:b/c', 'a:b'],
    ['meta-llama/llama-3.1-8b/instruct', 'meta-llama'],
    ['openai/', 'openai'],
    ['gpt-4o', 'unknown'],
    ['/gpt-4o', 'unknown'],
    [':free', 'unknown'],
    ['/', 'unknown'],
    ['', 'unknown'],
    // From JavaScript callers: never a TypeError on the request path.
    [undefined, 'unknown'],
    [null, 'unknown'],
    [42, 'unknown']
  ]
  for (const [model, provider] of cases) t.equal(extractProvider(model as string), provider, JSON.stringify(model) ?? String(model))
})

t.test('the streamText recipe of docs/integration.md: one event per completion, from the callbacks', async (t) => {
  /** The recipe's callbacks, as in the docs, around a tracker that writes down what it is told. */
  const run = async (model: MockLanguageModelV3, abort?: AbortController): Promise<string[]> => {
    const calls: string[] = []
    const track = {
      firstToken: () => { calls.push('firstToken') },
      end: (usage: { input_tokens?: number | undefined, output_tokens?: number | undefined }) => { calls.push(`end ${JSON.stringify(usage)}`) },
      fail: (error: unknown) => { calls.push(`fail ${determineErrorType(error)}`) }
    }
    const signal = abort?.signal ?? new AbortController().signal
    const result = streamText({
      model,
      prompt: 'hi',
      maxRetries: 1,
      abortSignal: signal,
      onChunk: ({ chunk }) => {
        if (chunk.type === 'text-delta') {
          track.firstToken()
          abort?.abort()
        }
      },
      onError: ({ error }) => { track.fail(error) },
      onFinish: ({ finishReason, totalUsage }) => {
        if (finishReason !== 'error') track.end({ input_tokens: totalUsage.inputTokens, output_tokens: totalUsage.outputTokens })
      },
      onAbort: () => { track.fail(signal.reason) }
    })
    await result.consumeStream()
    return calls
  }
  const usage = { inputTokens: { total: 12, noCache: undefined, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 2, text: undefined, reasoning: undefined } }
  type StreamPart = Awaited<ReturnType<MockLanguageModelV3['doStream']>>['stream'] extends ReadableStream<infer P> ? P : never
  const streaming = (parts: StreamPart[]): MockLanguageModelV3 => new MockLanguageModelV3({
    doStream: async () => ({ stream: new ReadableStream<StreamPart>({ start (c) { for (const p of parts) c.enqueue(p); c.close() } }) })
  })
  const text: StreamPart[] = [{ type: 'text-start', id: 't' }, { type: 'text-delta', id: 't', delta: 'Hel' }, { type: 'text-delta', id: 't', delta: 'lo' }]

  t.same(await run(streaming([...text, { type: 'text-end', id: 't' }, { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage }])),
    ['firstToken', 'firstToken', 'end {"input_tokens":12,"output_tokens":2}'], 'a completion: TTFT at the first text chunk (the tracker keeps the first), tokens at onFinish')
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  t.same(await run(streaming([...text, { type: 'error', error: reset }])),
    ['firstToken', 'firstToken', 'fail network'], 'an error in mid-stream: onError, then onFinish with finishReason "error", which records nothing')
  const refusing = new MockLanguageModelV3({
    doStream: async () => { throw new APICallError({ message: 'Too Many Requests', url: 'https://api.example/v1/chat', requestBodyValues: {}, statusCode: 429, responseHeaders: { 'retry-after-ms': '0' } }) }
  })
  t.same(await run(refusing), ['fail rate_limit'], 'a 429 before the stream, retried: one RetryError through onError, no onFinish')
  t.same(await run(streaming([...text, { type: 'text-end', id: 't' }, { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage }]), new AbortController()),
    ['firstToken', 'fail timeout'], 'the caller aborts: onAbort only; an abort counts as a timeout')
})
