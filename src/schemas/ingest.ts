import { Type, type Static } from '@sinclair/typebox'
import { MAX_CATALOG_MODELS } from '../metrics/catalog.js'
import { CHAT_ERROR_TYPES, FETCH_ERROR_TYPES } from '../metrics/events.js'
import { StringEnum } from './common.js'

export const MAX_BATCH = 1000
export const MAX_MS = 3_600_000
export const MAX_TOKENS = 10_000_000
/**
 * Ids: no whitespace or control characters (models); no control characters (provider, gateway). Every
 * id must also be well-formed Unicode (no unpaired surrogate, which has no UTF-8 form and would merge
 * with other ids in Redis): checked in src/ingest/normalize.ts, where the message can say why.
 */
export const MODEL_PATTERN = '^[^\\s\\p{Cc}]+$'
export const NAME_PATTERN = '^[^\\p{Cc}]+$'

export const TimestampSchema = Type.Union([
  Type.Number({ description: 'epoch milliseconds' }),
  Type.String({ format: 'date-time', description: 'ISO 8601 with Z or an offset' })
], { description: 'event time; default: time received. Older than the retention or more than 5 minutes ahead: 400' })

const Ms = (description: string) => Type.Number({ minimum: 0, maximum: MAX_MS, description })
const Tokens = () => Type.Integer({ minimum: 0, maximum: MAX_TOKENS })

const WELL_FORMED = 'well-formed Unicode (an unpaired surrogate such as \\ud800 is a 400)'
const ModelId = (opts: { description?: string, examples?: string[] } = {}) => Type.String({ minLength: 1, maxLength: 256, pattern: MODEL_PATTERN, description: `no whitespace or control characters; ${WELL_FORMED}`, ...opts })
const Name = (description: string) => Type.String({ minLength: 1, maxLength: 64, pattern: NAME_PATTERN, description: `${description}no control characters; ${WELL_FORMED}` })

export const ChatEventSchema = Type.Object({
  model: ModelId({ examples: ['anthropic/claude-3.5-sonnet'] }),
  provider: Type.Optional(Name('default: extractProvider(model); ')),
  gateway: Type.Optional(Name('default: "default"; ')),
  success: Type.Boolean(),
  ttft_ms: Type.Optional(Ms('time to first token')),
  total_time_ms: Type.Optional(Ms('total time')),
  error_type: Type.Optional(StringEnum(CHAT_ERROR_TYPES, { description: 'only with success: false; default other' })),
  input_tokens: Type.Optional(Tokens()),
  output_tokens: Type.Optional(Tokens()),
  streamed: Type.Optional(Type.Boolean({ description: 'false: the answer came whole, so it has no generation time and gives no tokens-per-second sample (its ttft_ms, if given, is still counted). Default true' })),
  timestamp: Type.Optional(TimestampSchema)
}, {
  $id: 'ChatEvent',
  description: 'One finished chat completion; unknown fields are ignored',
  examples: [
    { model: 'anthropic/claude-3.5-sonnet', gateway: 'eu-1', success: true, ttft_ms: 420, total_time_ms: 3150, input_tokens: 1200, output_tokens: 350 },
    { model: 'openai/gpt-4o', success: false, error_type: 'rate_limit', total_time_ms: 95, timestamp: '2026-11-27T21:04:05.120Z' }
  ]
})

export const FetchEventSchema = Type.Object({
  gateway: Name(''),
  status: StringEnum(['success', 'error']),
  model_count: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  response_time_ms: Type.Optional(Ms('time the model-list fetch took')),
  error_type: Type.Optional(StringEnum(FETCH_ERROR_TYPES, { description: 'only with status: error; default error' })),
  models: Type.Optional(Type.Array(ModelId(), { maxItems: MAX_CATALOG_MODELS, description: `only with status: success; the model ids the gateway's catalog listed (at most ${MAX_CATALOG_MODELS}; duplicates count once). model_count defaults to their number. Changes between fetches: GET /api/metrics/gateway/catalog. Counted against METRICS_MAX_CATALOG_IDS per hour: one entry per fetch, plus the list's ids the first time the gateway sends that list in the hour; beyond it 429` })),
  timestamp: Type.Optional(TimestampSchema)
}, {
  $id: 'GatewayFetchEvent',
  description: 'One model-list fetch by a gateway; unknown fields are ignored',
  examples: [
    { gateway: 'eu-1', status: 'success', model_count: 312, response_time_ms: 840 },
    { gateway: 'eu-1', status: 'success', response_time_ms: 910, models: ['openai/gpt-4o', 'anthropic/claude-3.5-sonnet', 'mistral:large'] },
    { gateway: 'eu-1', status: 'error', error_type: 'timeout', response_time_ms: 10000 }
  ]
})

const batchOf = <T extends typeof ChatEventSchema | typeof FetchEventSchema>(item: T) =>
  Type.Union([Type.Ref(item), Type.Array(Type.Ref(item), { minItems: 1, maxItems: MAX_BATCH })], { description: 'one event, or an array of 1..1000' })

export const ChatBodySchema = batchOf(ChatEventSchema)
export const FetchBodySchema = batchOf(FetchEventSchema)

export const AcceptedSchema = Type.Object({ accepted: Type.Integer({ minimum: 1, description: 'events accepted' }) }, { examples: [{ accepted: 100 }] })

export type ChatEventBody = Static<typeof ChatEventSchema>
export type FetchEventBody = Static<typeof FetchEventSchema>
