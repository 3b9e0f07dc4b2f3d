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
  /** False when the answer came whole (no stream): it has no generation time of its own. Default true. */
  streamed?: boolean
  ts: number
}

export const CHAT_ERROR_TYPES = ['timeout', 'rate_limit', 'network', 'other'] as const
export type ChatErrorType = typeof CHAT_ERROR_TYPES[number]

export const FETCH_ERROR_TYPES = ['timeout', 'error'] as const
export type FetchErrorType = typeof FETCH_ERROR_TYPES[number]

/** A gateway's model-list fetch, after validation and defaults. */
export interface FetchEvent {
  gateway: string
  success: boolean
  errorType: FetchErrorType | null
  modelCount: number | undefined
  responseTimeMs: number | undefined
  ts: number
  /** The model ids the gateway's catalog listed (successful fetches only), sorted and distinct. */
  models?: readonly string[]
}

export const ENTITY_TYPES = ['model', 'provider', 'gateway'] as const
export type EntityType = typeof ENTITY_TYPES[number]

/**
 * The shortest generation (total − ttft) that gives a tokens-per-second sample. Below it the
 * division says nothing about the model (a clock's granularity, or a TTFT taken at the end), and it
 * bounds a sample: at most MAX_TOKENS / 1 ms = 10^10 tokens/s (docs/guarantees.md, "Domain").
 */
export const MIN_GENERATION_MS = 1

/**
 * Output tokens per second of one streamed request: output_tokens / ((total − ttft) / 1000) when all
 * three are known and the generation took at least MIN_GENERATION_MS. A completion that was not
 * streamed has no generation time of its own, so it gives no sample.
 */
export function tokensPerSecond (e: ChatEvent): number | undefined {
  if (e.streamed === false || e.outputTokens === undefined || e.totalMs === undefined || e.ttftMs === undefined) return undefined
  const gen = e.totalMs - e.ttftMs
  return gen >= MIN_GENERATION_MS ? e.outputTokens / (gen / 1000) : undefined
}

/**
 * A model seen through one gateway, or served by one provider: the pairs the gateway comparison and
 * the routing hint read. Their keys live in the model's hash slot; the cardinality guard bounds them.
 */
export const PAIR_TYPES = ['model_gateway', 'model_provider'] as const
export type PairType = typeof PAIR_TYPES[number]
/** What a pair sees its model through: a gateway, or the provider serving it. */
export const VIAS = ['gateway', 'provider'] as const
export type Via = typeof VIAS[number]
/** Every kind of id the cardinality guard and the activity index know. */
export type IndexedType = EntityType | PairType

/**
 * The id of a pair in the activity index: the model, a space, the gateway or provider. Model ids
 * hold no whitespace, so the first space always ends the model.
 */
export function pairId (model: string, other: string): string {
  return `${model} ${other}`
}
