import { Type } from '@sinclair/typebox'
import { EntityTypeSchema, Stats, TrafficProperties, WindowInfo, WindowNameSchema, NullableNumber } from './common.js'

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
  generated_at: Type.String({ format: 'date-time' }),
  gateway_fetches: Type.Optional(Type.Object({
    fetches: Type.Integer(),
    errors: Type.Integer(),
    timeouts: Type.Integer(),
    response_time_ms: Stats,
    last_model_count: Type.Union([Type.Integer(), Type.Null()])
  }))
})
