/** The error types the service knows for a failed chat completion. */
export type ChatErrorType = 'timeout' | 'rate_limit' | 'network' | 'other'

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'])

/** String(v), or '' when v cannot be turned into a string (this must never throw into the gateway). */
function str (v: unknown): string {
  try {
    return String(v ?? '')
  } catch {
    return ''
  }
}

function fields (error: unknown): { name: string, message: string, code: string, status: number | undefined, cause: unknown } {
  if (typeof error !== 'object' || error === null) return { name: '', message: str(error), code: '', status: undefined, cause: undefined }
  try {
    const e = error as Record<string, unknown>
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined
    return { name: str(e.name), message: str(e.message), code: str(e.code), status, cause: e.cause }
  } catch {
    // A getter that throws.
    return { name: '', message: '', code: '', status: undefined, cause: undefined }
  }
}

/**
 * What kind of failure an error from a provider call was: AbortError, TimeoutError or "timeout" →
 * timeout; HTTP 429 or "rate limit" → rate_limit; connection errors (ECONNREFUSED, ECONNRESET, …,
 * "fetch failed", "network") → network; anything else → other. Looks one level into `cause`.
 */
export function determineErrorType (error: unknown, depth = 0): ChatErrorType {
  const f = fields(error)
  const text = `${f.name} ${f.message}`.toLowerCase()
  if (f.name === 'AbortError' || f.name === 'TimeoutError' || f.code === 'ETIMEDOUT' || f.code === 'UND_ERR_CONNECT_TIMEOUT' || /time ?out|timed out/.test(text)) return 'timeout'
  if (f.status === 429 || /rate.?limit|too many requests/.test(text)) return 'rate_limit'
  if (NETWORK_CODES.has(f.code) || /fetch failed|network|socket hang up|econnre(fused|set)/.test(text)) return 'network'
  if (depth === 0 && f.cause !== undefined) return determineErrorType(f.cause, 1)
  return 'other'
}
