import { Type } from '@sinclair/typebox'
import { Comparison, EntityTypeSchema, Stats, StatusSchema, TrafficProperties, UptimeSchema, WindowInfo, WindowNameSchema, NullableNumber } from './common.js'

export const RealtimeQuerySchema = Type.Object({
  type: Type.Optional(EntityTypeSchema),
  id: Type.String({ minLength: 1, maxLength: 256 }),
  window: WindowNameSchema
})

export const RealtimeSchema = Type.Object({
  type: Type.String(),
  id: Type.String(),
  window: WindowInfo,
  ...TrafficProperties,
  output_tokens_per_second: Stats,
  health_score: NullableNumber,
  uptime: UptimeSchema,
  status: StatusSchema,
  status_reason: Type.String({ description: 'why the state is what it is, with the figures of the latest minute' }),
  baselines: Type.Object({
    previous: Type.Object({ from: Type.String({ format: 'date-time' }), to: Type.String({ format: 'date-time' }) }, { description: 'the period right before the window, as long as it' }),
    ttft_p50_ms: Comparison,
    ttft_p90_ms: Comparison,
    error_rate_pct: Comparison,
    anomaly: Type.Boolean({ description: 'TTFT p50/p90 over METRICS_ANOMALY_TTFT_FACTOR × the reference, or an error rate at least METRICS_ANOMALY_ERROR_RATE_PP points above it at 95 % confidence; the reference is the 7-day baseline when it has enough samples, else the previous period' }),
    anomaly_reason: Type.Union([Type.String(), Type.Null()])
  }, { description: 'the window against the period before it and the trailing 7-day baseline of the same hours of day (error rate: failures apart from rate limits)' }),
  generated_at: Type.String({ format: 'date-time' }),
  gateway_fetches: Type.Optional(Type.Object({
    fetches: Type.Integer(),
    errors: Type.Integer(),
    timeouts: Type.Integer(),
    response_time_ms: Stats,
    last_model_count: Type.Union([Type.Integer(), Type.Null()])
  }))
})
