import { Type } from '@sinclair/typebox'
import { ENTITY_TYPES } from '../metrics/events.js'
import { NullableNumber, StatsSchema, WindowInfoSchema, WindowNameSchema } from './common.js'

export const LeaderboardQuerySchema = Type.Object({
  order: Type.Union([Type.Literal('desc'), Type.Literal('asc')], { default: 'desc' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
  window: WindowNameSchema,
  min_requests: Type.Integer({ minimum: 1, maximum: 1_000_000_000, default: 1 })
})

export const LeaderboardSchema = Type.Object({
  window: WindowInfoSchema,
  order: Type.String(),
  entries: Type.Array(Type.Object({
    rank: Type.Integer(),
    model: Type.String(),
    provider: Type.Union([Type.String(), Type.Null()]),
    health_score: NullableNumber,
    success_rate: NullableNumber,
    requests: Type.Integer(),
    ttft_p50_ms: NullableNumber,
    total_time_p50_ms: NullableNumber
  }))
})

export const ProviderSummaryQuerySchema = Type.Object({
  window: WindowNameSchema,
  provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64 }))
})

export const ProviderSummarySchema = Type.Object({
  window: WindowInfoSchema,
  providers: Type.Array(Type.Object({
    provider: Type.String(),
    models: Type.Integer(),
    requests: Type.Integer(),
    successes: Type.Integer(),
    failures: Type.Integer(),
    success_rate: NullableNumber,
    errors: Type.Object({ timeout: Type.Integer(), rate_limit: Type.Integer(), network: Type.Integer(), other: Type.Integer() }),
    ttft_ms: StatsSchema,
    total_time_ms: StatsSchema,
    health_score: NullableNumber
  }))
})

const Literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)))

export const TREND_METRICS = ['ttft', 'total_time', 'output_tokens_per_second', 'success_rate', 'requests', 'errors'] as const
export const TREND_STATS = ['avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99'] as const

export const TrendsQuerySchema = Type.Object({
  type: Type.Optional(Type.Union(ENTITY_TYPES.map((t) => Type.Literal(t)))),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'short form of type=model&id=ID' })),
  metric: Type.Union(TREND_METRICS.map((v) => Type.Literal(v)), { default: 'ttft' }),
  stat: Type.Optional(Literals(TREND_STATS)),
  hours: Type.Integer({ minimum: 1, maximum: 168, default: 6 }),
  resolution: Type.Union([Type.Literal('hour'), Type.Literal('minute')], { default: 'hour' })
})

export const TrendsSchema = Type.Object({
  type: Type.String(),
  id: Type.String(),
  metric: Type.String(),
  stat: Type.Union([Type.String(), Type.Null()]),
  resolution: Type.String(),
  points: Type.Array(Type.Object({ t: Type.String({ format: 'date-time' }), count: Type.Integer(), value: NullableNumber }))
})
