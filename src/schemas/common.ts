import { Type, type Static, type SchemaOptions, type TInteger } from '@sinclair/typebox'
import { WINDOW_NAMES } from '../metrics/buckets.js'
import { CHAT_ERROR_TYPES, ENTITY_TYPES, type ChatErrorType } from '../metrics/events.js'
import { STATUSES } from '../metrics/status.js'

/** A string enum as plain JSON Schema (`enum`), clearer in OpenAPI than a union of constants. */
export function StringEnum<const T extends readonly string[]> (values: T, opts: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...opts })
}

const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()])

export const StatsSchema = Type.Object({
  count: Type.Integer({ minimum: 0 }),
  avg: Nullable(Type.Number()),
  min: Nullable(Type.Number()),
  max: Nullable(Type.Number()),
  p50: Nullable(Type.Number()),
  p90: Nullable(Type.Number()),
  p95: Nullable(Type.Number()),
  p99: Nullable(Type.Number())
}, { $id: 'Stats', examples: [{ count: 812, avg: 431.207, min: 88.1, max: 5210.4, p50: 362.5, p90: 790.2, p95: 1104.8, p99: 2301.9 }], description: 'count 0 and nulls with no samples; avg exact to the microsecond; percentiles by nearest rank, within 2 %' })

export const WindowInfoSchema = Type.Object({
  from: Type.String({ format: 'date-time', description: 'start of the oldest bucket counted' }),
  to: Type.String({ format: 'date-time', description: 'time of the answer' }),
  seconds: Type.Integer({ description: 'nominal length of the window' })
}, { $id: 'WindowInfo' })

export const WindowNameSchema = StringEnum(WINDOW_NAMES, { default: '1h', description: 'current bucket and the N−1 before: minute buckets up to 1h, hour buckets beyond' })
export const EntityTypeSchema = StringEnum(ENTITY_TYPES, { default: 'model' })

/** An instant in an answer (ISO 8601, UTC). */
export const DateTime = Type.String({ format: 'date-time' })

/** The `hours` of a history read (status changes, catalog fetches), described by what it selects. */
export const Hours = (description: string) => Type.Optional(Type.Integer({ minimum: 1, maximum: 8760, default: 24, description: `${description}; cut from an answer computed over 24 hours, 7, 30, 90 or 365 days (within the retention), which every H up to it shares` }))

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String(),
  refused: Type.Optional(Type.Object({
    type: Type.String({ description: 'model, provider, gateway, model_gateway or model_provider (or another capped kind)' }),
    id: Type.String({ description: 'the id refused; for a pair, the model, a space, then the gateway or provider' }),
    limit: Type.Integer({ description: 'the cap it would pass' })
  }, { description: 'cardinality refusals (429 METRICS_TOO_MANY_IDS): which id is one too many. Events naming other ids are still accepted' }))
}, { $id: 'Error', description: "Fastify's error shape", examples: [{ statusCode: 400, code: 'METRICS_INVALID_EVENT', error: 'Bad Request', message: 'body[3].ttft_ms must be <= 3600000' }] })

export const NullableNumber = Nullable(Type.Number())

export const StatusSchema = StringEnum(STATUSES, { description: 'health state now, from the last complete minutes (docs/health.md): it changes only after a new condition held METRICS_STATUS_CONSECUTIVE_MINUTES consecutive minutes' })

export const ComparisonSchema = Type.Object({
  current: NullableNumber,
  previous: NullableNumber,
  baseline: NullableNumber,
  change_vs_previous_pct: NullableNumber,
  change_vs_baseline_pct: NullableNumber
}, { $id: 'Comparison', description: 'a figure of the window, of the period before it, and of the 7-day baseline of the same hours of day; changes in % (null when either side is null or 0)', examples: [{ current: 910.4, previous: 402.2, baseline: 388.9, change_vs_previous_pct: 126.36, change_vs_baseline_pct: 134.1 }] })

export type StatsBody = Static<typeof StatsSchema>

/** Shared schemas, registered once with `addSchema` and referenced by $ref (components in OpenAPI). */
export const SharedSchemas = [StatsSchema, WindowInfoSchema, ErrorSchema, ComparisonSchema]
export const Stats = Type.Ref(StatsSchema)
export const Comparison = Type.Ref(ComparisonSchema)
export const WindowInfo = Type.Ref(WindowInfoSchema)
const ErrorRef = Type.Ref(ErrorSchema)

const TokenSum = (field: string) => Type.Integer({ minimum: 0, description: `tokens: the sum of the ${field} of the requests counted, successful or not; a request without ${field} adds nothing. Exact below 2^53 (9 × 10^15); beyond, the nearest double` })

/** Token totals of a set of requests (docs/api.md "Token totals"). */
export const TokenProperties = {
  input_tokens: TokenSum('input_tokens'),
  output_tokens: TokenSum('output_tokens')
}

/** The figures every read answers for a set of requests: counts, rates, errors by type, TTFT and total time, token totals. */
export const TrafficProperties = {
  requests: Type.Integer(),
  successes: Type.Integer(),
  failures: Type.Integer(),
  success_rate: NullableNumber,
  errors: Type.Object(Object.fromEntries(CHAT_ERROR_TYPES.map((t) => [t, Type.Integer()])) as Record<ChatErrorType, TInteger>),
  ttft_ms: Stats,
  total_time_ms: Stats,
  ...TokenProperties
}

/** Uptime beside the success rate: rate limits are a capacity signal, not an outage. */
export const UptimeSchema = Type.Union([Type.Number(), Type.Null()], { description: '100 × successes / (requests − rate_limit errors), 2 decimals; null when nothing is left' })

interface HeaderSpec { type: 'string' | 'integer', description: string }

/** A response schema with its OpenAPI description and headers (read by @fastify/swagger). */
export function response<T extends object> (schema: T, description: string, headers?: Record<string, HeaderSpec>): T {
  return { ...schema, 'x-response-description': description, ...(headers !== undefined ? { headers } : {}) }
}

const RetryAfter = { 'retry-after': { type: 'integer', description: 'seconds to wait before retrying' } } as const
export const CacheControl = { 'cache-control': { type: 'string', description: 'max-age=N: the remaining life of the cached answer' } } as const

/** The error answers, by status, as the routes declare them. */
export const Errors = {
  400: response(ErrorRef, 'Invalid input; the message names the field (and the index in a batch)'),
  401: response(ErrorRef, 'A bearer token is required and none valid was sent', { 'www-authenticate': { type: 'string', description: 'Bearer' } }),
  413: response(ErrorRef, 'Body over 1 MiB'),
  415: response(ErrorRef, 'Body is not application/json'),
  429: response(ErrorRef, 'Rate limit exceeded, or a new model/provider/gateway beyond the per-hour limit', RetryAfter),
  503: response(ErrorRef, 'Ingest: the buffer is full while the store is away; reads: the store is unreachable', RetryAfter)
}

/** A read route's place in the OpenAPI document: the `reading` tag, behind the read token when one is set. */
export const ReadingRoute = { tags: ['reading'], security: [{ readToken: [] }] }

export const ReadErrors = { 400: Errors[400], 401: Errors[401], 429: Errors[429], 503: Errors[503] }
export const IngestErrors = { 400: Errors[400], 401: Errors[401], 413: Errors[413], 415: Errors[415], 429: Errors[429], 503: Errors[503] }
