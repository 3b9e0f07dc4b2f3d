import { Type, type Static } from '@sinclair/typebox'
import { WINDOW_NAMES } from '../metrics/buckets.js'
import { ENTITY_TYPES } from '../metrics/events.js'

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
}, { description: 'count 0 and nulls with no samples; percentiles by nearest rank, within 2%' })

export const WindowInfoSchema = Type.Object({
  from: Type.String({ format: 'date-time', description: 'start of the oldest bucket counted' }),
  to: Type.String({ format: 'date-time', description: 'time of the answer' }),
  seconds: Type.Integer({ description: 'nominal length of the window' })
})

export const WindowNameSchema = Type.Union(WINDOW_NAMES.map((w) => Type.Literal(w)), { default: '1h' })
export const EntityTypeSchema = Type.Union(ENTITY_TYPES.map((t) => Type.Literal(t)), { default: 'model' })

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String()
})

export const NullableNumber = Nullable(Type.Number())

export type StatsBody = Static<typeof StatsSchema>
