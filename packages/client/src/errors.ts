/**
 * determineErrorType: what kind of failure an error from a provider call was, for `error_type`.
 * Plain TypeScript without imports: it runs in Node, browsers and edge runtimes alike, and knows the
 * error libraries by their shapes and names rather than by importing them.
 */

/** The error types the service knows for a failed chat completion. */
export type ChatErrorType = 'timeout' | 'rate_limit' | 'network' | 'other'

/** How many links of `cause` / `lastError` / `errors` are followed from the error given. */
const MAX_DEPTH = 8
/** How many errors are looked at in all (an AggregateError may hold many). */
const MAX_NODES = 32

/** Node and undici codes of a connection that took too long. */
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
/** Node and undici codes of a connection that failed: refused, reset, closed, unresolved, unreachable. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])
/** Error names (DOMException and the like): AbortSignal.timeout() rejects with TimeoutError, abort() with AbortError. */
const NAMES = new Map<string, ChatErrorType>([['AbortError', 'timeout'], ['TimeoutError', 'timeout'], ['NetworkError', 'network']])
/**
 * The openai SDK's error classes set no `name`: they are told apart by their constructor's name.
 * Its RateLimitError and InternalServerError carry a `status`, which is enough.
 */
const CLASSES = new Map<string, ChatErrorType>([['APIConnectionTimeoutError', 'timeout'], ['APIUserAbortError', 'timeout']])

/** o[key], or undefined when o is not an object or the read throws (a getter, a revoked Proxy). */
function get (o: unknown, key: string): unknown {
  if ((typeof o !== 'object' && typeof o !== 'function') || o === null) return undefined
  try {
    return (o as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

const str = (v: unknown): string => typeof v === 'string' ? v : ''

/** The HTTP status an error carries: `status` (openai, fetch Response), `statusCode` (AI SDK), `response.status` (axios). */
function httpStatus (e: unknown): number | undefined {
  for (const v of [get(e, 'status'), get(e, 'statusCode'), get(get(e, 'response'), 'status')]) {
    // Other numbers named status exist (a child process's exit status): only HTTP's range counts.
    if (typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599) return v
  }
  return undefined
}

/** The error given, then what it wraps, depth first and outermost first, each once, within the bounds above. */
function chain (error: unknown): unknown[] {
  const nodes: unknown[] = []
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number): void => {
    if (e === undefined || nodes.length >= MAX_NODES || seen.has(e)) return
    seen.add(e)
    nodes.push(e)
    if (depth === MAX_DEPTH) return
    visit(get(e, 'cause'), depth + 1)
    // The AI SDK's RetryError holds every attempt in `errors` and the one that decided in `lastError`.
    const last = get(e, 'lastError')
    if (last !== undefined) {
      visit(last, depth + 1)
      return
    }
    // AggregateError (Node's connection attempts to several addresses, Promise.any).
    const list = get(e, 'errors')
    const length = get(list, 'length')
    if (typeof length !== 'number') return
    for (let i = 0; i < length && nodes.length < MAX_NODES; i++) visit(get(list, String(i)), depth + 1)
  }
  visit(error, 0)
  return nodes
}

/** What an error's own fields (name, class, code, status) say, if they say something. */
function byFields (e: unknown): ChatErrorType | undefined {
  const named = NAMES.get(str(get(e, 'name'))) ?? CLASSES.get(str(get(get(e, 'constructor'), 'name')))
  if (named !== undefined) return named
  const code = str(get(e, 'code'))
  if (TIMEOUT_CODES.has(code)) return 'timeout'
  if (NETWORK_CODES.has(code)) return 'network'
  const status = httpStatus(e)
  if (status === 429) return 'rate_limit'
  // 408 Request Timeout, 504 Gateway Timeout: the upstream did not answer in time. Other statuses
  // (500, 502, 503 …) are the provider's failures: `other`, unless their text says more.
  if (status === 408 || status === 504) return 'timeout'
  return undefined
}

/**
 * The original rules on an error's message (or on a thrown string): `429` or "rate limit" →
 * rate_limit, "timeout" → timeout, "network" or "econnrefused" → network; matched in any case, with
 * a few spellings real libraries use. A `429` is a status only as a number of its own (not a port such
 * as 42917), and only when the error carries no other HTTP status.
 */
function byMessage (e: unknown): ChatErrorType | undefined {
  const text = (typeof e === 'string' ? e : str(get(e, 'message'))).toLowerCase()
  if (/rate.?limit|too many requests/.test(text) || (/(^|\D)429(\D|$)/.test(text) && httpStatus(e) === undefined)) return 'rate_limit'
  if (/time ?out|timed out/.test(text)) return 'timeout'
  if (/network|econnre(fused|set)|fetch failed|failed to fetch|socket hang up/.test(text)) return 'network'
  return undefined
}

/**
 * What kind of failure an error from a provider call was. Never throws, whatever it is given.
 *
 * The error and what it wraps (`cause`, a RetryError's `lastError`, an AggregateError's `errors`; at
 * most 8 links deep and 32 errors in all, cycles visited once) are read three times, outermost first:
 * 1. their fields: name AbortError or TimeoutError, openai's APIConnectionTimeoutError or
 *    APIUserAbortError, a timeout code (ETIMEDOUT, UND_ERR_*_TIMEOUT), HTTP 408 or 504 → timeout;
 *    HTTP 429 (`status`, `statusCode`, `response.status`) → rate_limit; a connection code
 *    (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET, ENOTFOUND, …) or name NetworkError → network;
 * 2. their messages, by the original rules (see byMessage);
 * 3. openai's APIConnectionError ("Connection error.") → network.
 * Anything else is `other`, which includes a provider's own 5xx answer (but 504).
 */
export function determineErrorType (error: unknown): ChatErrorType {
  const nodes = chain(error)
  for (const e of nodes) {
    const kind = byFields(e)
    if (kind !== undefined) return kind
  }
  for (const e of nodes) {
    const kind = byMessage(e)
    if (kind !== undefined) return kind
  }
  for (const e of nodes) {
    if (get(get(e, 'constructor'), 'name') === 'APIConnectionError') return 'network'
  }
  return 'other'
}
