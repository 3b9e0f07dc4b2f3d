import { Type } from '@sinclair/typebox'
import { WINDOW_NAMES } from '../metrics/buckets.js'
import { VIAS } from '../metrics/events.js'
import { MODEL_PATTERN } from './ingest.js'
import { DateTime, NullableNumber, StatusSchema, StringEnum, UptimeSchema, WindowInfo, WindowNameSchema } from './common.js'

const ModelQuery = Type.String({ minLength: 1, maxLength: 256, pattern: MODEL_PATTERN, description: 'model id' })

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
