import { Type } from '@sinclair/typebox'
import { NAME_PATTERN } from './ingest.js'
import { DateTime, Hours, WindowInfo } from './common.js'

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
