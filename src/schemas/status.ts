import { Type } from '@sinclair/typebox'
import { DateTime, EntityTypeSchema, Hours, StatusSchema, WindowInfo } from './common.js'

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
