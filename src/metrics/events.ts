/** A recorded chat completion, after validation and defaults. Times in ms, `ts` in epoch ms. */
export interface ChatEvent {
  model: string
  provider: string
  gateway: string
  success: boolean
  errorType: ChatErrorType | null
  ttftMs: number | undefined
  totalMs: number | undefined
  inputTokens: number | undefined
  outputTokens: number | undefined
  ts: number
}

export const CHAT_ERROR_TYPES = ['timeout', 'rate_limit', 'network', 'other'] as const
export type ChatErrorType = typeof CHAT_ERROR_TYPES[number]

/** A gateway's model-list fetch, after validation and defaults. */
export interface FetchEvent {
  gateway: string
  success: boolean
  errorType: 'timeout' | 'error' | null
  modelCount: number | undefined
  responseTimeMs: number | undefined
  ts: number
}

export const ENTITY_TYPES = ['model', 'provider', 'gateway'] as const
export type EntityType = typeof ENTITY_TYPES[number]

/**
 * Output tokens per second of one request (API.md): output_tokens / ((total − ttft) / 1000) when all
 * three are known and the denominator is positive.
 */
export function tokensPerSecond (e: ChatEvent): number | undefined {
  if (e.outputTokens === undefined || e.totalMs === undefined || e.ttftMs === undefined) return undefined
  const gen = e.totalMs - e.ttftMs
  return gen > 0 ? e.outputTokens / (gen / 1000) : undefined
}
