import { Type, type Static } from '@sinclair/typebox'
import { ENTITY_TYPES } from '../metrics/events.js'
import { STAT_NAMES } from '../metrics/histogram.js'
import { ORDERS } from '../metrics/score.js'
import { TREND_METRICS } from '../metrics/trends.js'
import { StringEnum, NullableNumber, StatusSchema, TokenProperties, TrafficProperties, UptimeSchema, WindowInfo, WindowNameSchema } from './common.js'

export const LeaderboardQuerySchema = Type.Object({
  order: Type.Optional(StringEnum(ORDERS, { default: 'desc' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'the first `limit` entries of the leaderboard computed for 10, 25, 50 or 100 (the first of these at least `limit`), which every limit up to it shares' })),
  window: Type.Optional(WindowNameSchema),
  min_requests: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, default: 1, description: 'only models with at least this many requests in the window; rounded up to 1, 2 or 5 × a power of ten (30 counts as 50; the answer says which), so that few distinct leaderboards are computed' }))
})

const LeaderboardEntrySchema = Type.Object({
  rank: Type.Integer(),
  model: Type.String(),
  provider: Type.Union([Type.String(), Type.Null()]),
  health_score: NullableNumber,
  success_rate: NullableNumber,
  requests: Type.Integer(),
  ...TokenProperties,
  ttft_p50_ms: NullableNumber,
  total_time_p50_ms: NullableNumber,
  uptime: UptimeSchema,
  status: StatusSchema
})

export type LeaderboardEntry = Static<typeof LeaderboardEntrySchema>

export const LeaderboardSchema = Type.Object({
  window: WindowInfo,
  order: Type.String(),
  min_requests: Type.Integer({ description: 'the threshold applied: min_requests rounded up to 1, 2 or 5 × a power of ten' }),
  entries: Type.Array(LeaderboardEntrySchema)
})

export const ProviderSummaryQuerySchema = Type.Object({
  window: Type.Optional(WindowNameSchema),
  provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64 }))
})

const ProviderRowSchema = Type.Object({
  provider: Type.String(),
  models: Type.Integer(),
  ...TrafficProperties,
  health_score: NullableNumber
})

export type ProviderRow = Static<typeof ProviderRowSchema>

export const ProviderSummarySchema = Type.Object({
  window: WindowInfo,
  providers: Type.Array(ProviderRowSchema)
})

export const TrendsQuerySchema = Type.Object({
  type: Type.Optional(StringEnum(ENTITY_TYPES, { description: 'default model' })),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'short form of type=model&id=ID' })),
  metric: Type.Optional(StringEnum(TREND_METRICS, { default: 'ttft' })),
  stat: Type.Optional(StringEnum(STAT_NAMES, { description: 'for ttft, total_time, output_tokens_per_second (default p50); a 400 with the rate metrics and tokens' })),
  hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 168, default: 6, description: 'the last H hours: cut from trends computed over 6, 24, 72 or 168 hours (by minute: 2), which every H up to it shares' })),
  resolution: Type.Optional(StringEnum(['hour', 'minute'], { default: 'hour', description: 'minute only with hours <= 2' }))
})

const TrendPointSchema = Type.Object({
  t: Type.String({ format: 'date-time' }),
  count: Type.Integer(),
  value: NullableNumber,
  input_tokens: Type.Optional(TokenProperties.input_tokens),
  output_tokens: Type.Optional(TokenProperties.output_tokens)
}, { description: 'metric=tokens: count is the requests of the bucket, value input_tokens + output_tokens (null when count is 0), and input_tokens and output_tokens (0 when no request carried them) are present; other metrics have neither' })

export type TrendPoint = Static<typeof TrendPointSchema>

export const TrendsSchema = Type.Object({
  type: Type.String(),
  id: Type.String(),
  metric: Type.String(),
  stat: Type.Union([Type.String(), Type.Null()]),
  resolution: Type.String(),
  points: Type.Array(TrendPointSchema)
})
