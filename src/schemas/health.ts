import { Type } from '@sinclair/typebox'
import { WINDOW_NAMES } from '../metrics/buckets.js'
import { VIAS } from '../metrics/events.js'
import { MODEL_PATTERN, NAME_PATTERN } from './ingest.js'
import { EntityTypeSchema, NullableNumber, StatusSchema, StringEnum, UptimeSchema, WindowInfo, WindowNameSchema } from './common.js'

const ModelQuery = Type.String({ minLength: 1, maxLength: 256, pattern: MODEL_PATTERN, description: 'model id' })
const Hours = (description: string) => Type.Optional(Type.Integer({ minimum: 1, maximum: 8760, default: 24, description: `${description}; cut from an answer computed over 24 hours, 7, 30, 90 or 365 days (within the retention), which every H up to it shares` }))
const DateTime = Type.String({ format: 'date-time' })

export const StatusHistoryQuerySchema = Type.Object({
  type: Type.Optional(EntityTypeSchema),
  id: Type.String({ minLength: 1, maxLength: 256 }),
  hours: Hours('changes of the last H hours (this hour and the H−1 before); beyond METRICS_RETENTION_HOURS nothing is kept')
})

export const StatusHistorySchema = Type.Object({
  type: Type.String(),
  id: Type.String(),
  window: WindowInfo,
  status: StatusSchema,
  status_reason: Type.String(),
  since: Type.Union([DateTime, Type.Null()], { description: 'when the current state began, if that change is in the window' }),
  transitions: Type.Array(Type.Object({
    at: DateTime,
    from: StatusSchema,
    to: StatusSchema,
    reason: Type.String()
  }), { description: 'newest first; a change is dated at the end of the minute that completed it' }),
  generated_at: DateTime
}, { examples: [{ type: 'model', id: 'openai/gpt-4o', window: { from: '2026-11-27T22:00:00.000Z', to: '2026-11-28T21:14:07.311Z', seconds: 86400 }, status: 'healthy', status_reason: 'uptime 99.41 % ≥ 95 %, TTFT p90 812.4 ms', since: '2026-11-28T20:51:00.000Z', transitions: [{ at: '2026-11-28T20:51:00.000Z', from: 'degraded', to: 'healthy', reason: 'uptime 98.7 % ≥ 95 %, TTFT p90 790.1 ms' }, { at: '2026-11-28T20:32:00.000Z', from: 'healthy', to: 'degraded', reason: 'uptime 81.25 % < 95 %' }], generated_at: '2026-11-28T21:14:07.311Z' }] })

export const CompareQuerySchema = Type.Object({
  model: ModelQuery,
  window: Type.Optional(WindowNameSchema)
})

const PairProperties = {
  requests: Type.Integer(),
  successes: Type.Integer(),
  failures: Type.Integer(),
  rate_limited: Type.Integer({ description: 'failures whose error_type is rate_limit' }),
  success_rate: NullableNumber,
  uptime: UptimeSchema,
  uptime_lower_bound: Type.Union([Type.Number(), Type.Null()], { description: '100 × the Wilson lower bound (z = 1.96) of the uptime' }),
  status: StatusSchema,
  status_reason: Type.String(),
  ttft_p50_ms: NullableNumber,
  ttft_p90_ms: NullableNumber,
  total_time_p50_ms: NullableNumber,
  output_tokens_per_second_p50: NullableNumber
}

export const CompareSchema = Type.Object({
  model: Type.String(),
  window: WindowInfo,
  gateways: Type.Array(Type.Object({ gateway: Type.String(), ...PairProperties }), { description: 'the model through each gateway with traffic in the window, by requests (more first), then name' }),
  providers: Type.Array(Type.Object({ provider: Type.String(), ...PairProperties }), { description: 'the model by each provider, likewise' }),
  generated_at: DateTime
})

export const RouteQuerySchema = Type.Object({
  model: ModelQuery,
  by: Type.Optional(StringEnum(VIAS, { default: 'gateway', description: 'what the candidates are' })),
  window: Type.Optional(StringEnum(WINDOW_NAMES, { default: '15m', description: 'the window uptime and TTFT are taken over; the state is always the current one' }))
})

export const RouteSchema = Type.Object({
  model: Type.String(),
  by: Type.String(),
  window: WindowInfo,
  recommended: Type.Union([Type.String(), Type.Null()], { description: 'the first candidate, unless it is down (or there is none)' }),
  candidates: Type.Array(Type.Object({
    rank: Type.Integer(),
    id: Type.String({ description: 'the gateway (or provider)' }),
    status: StatusSchema,
    status_reason: Type.String(),
    uptime: UptimeSchema,
    uptime_lower_bound: NullableNumber,
    ttft_p90_ms: NullableNumber,
    requests: Type.Integer(),
    reason: Type.String({ description: 'which step of the rule put it at this rank' })
  }), { description: 'not down first, then the higher uptime lower bound, then the lower TTFT p90, then more requests, then the id' }),
  generated_at: DateTime
}, { examples: [{ model: 'openai/gpt-4o', by: 'gateway', window: { from: '2026-11-28T21:00:00.000Z', to: '2026-11-28T21:14:07.311Z', seconds: 900 }, recommended: 'eu-1', candidates: [{ rank: 1, id: 'eu-1', status: 'healthy', status_reason: 'uptime 99.6 % ≥ 95 %, TTFT p90 640.2 ms', uptime: 99.6, uptime_lower_bound: 98.56, ttft_p90_ms: 655.8, requests: 250, reason: 'not down; uptime lower bound 98.56 %; TTFT p90 655.8 ms' }, { rank: 2, id: 'us-1', status: 'down', status_reason: 'uptime 31.4 % < 50 %', uptime: 33.9, uptime_lower_bound: 27.61, ttft_p90_ms: 702.1, requests: 210, reason: 'down, after every candidate that is not' }], generated_at: '2026-11-28T21:14:07.311Z' }] })

export const CatalogQuerySchema = Type.Object({
  gateway: Type.String({ minLength: 1, maxLength: 64, pattern: NAME_PATTERN }),
  hours: Hours('fetches of the last H hours (this hour and the H−1 before)'),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'most changes answered (the latest): cut from 20 or 100 computed' }))
})

export const CatalogSchema = Type.Object({
  gateway: Type.String(),
  window: WindowInfo,
  fetches: Type.Integer({ description: 'fetches that carried a model list in the window' }),
  last_fetch_at: Type.Union([DateTime, Type.Null()]),
  model_count: Type.Union([Type.Integer(), Type.Null()]),
  models: Type.Array(Type.String(), { description: 'the latest list, sorted' }),
  changes: Type.Array(Type.Object({
    at: DateTime,
    previous_fetch_at: DateTime,
    appeared: Type.Array(Type.String()),
    disappeared: Type.Array(Type.String())
  }), { description: 'between consecutive fetches whose lists differ, newest first' }),
  generated_at: DateTime
})
