/**
 * The OpenAPI-generated types (packages/client/src/api-types.ts, from openapi.yaml) with openapi-fetch against
 * a live service: every route of the spec, called through the typed client, with typed `data` and
 * `error`. This file is part of `npx tsc --noEmit -p .`: a wrong path, field or query parameter is a
 * compile error.
 */
import type { AddressInfo } from 'node:net'
import createClient from 'openapi-fetch'
import t from 'tap'
import type { components, paths } from '../../packages/client/src/api-types.js'
import { build } from '../helpers/app.js'

const INGEST = 'generated-ingest-token-01'
const READ = 'generated-read-token-0123'
const ingest = { authorization: `Bearer ${INGEST}` }
const read = { authorization: `Bearer ${READ}` }

type ChatEvent = components['schemas']['ChatEvent']
type Stats = components['schemas']['Stats']

t.test('every route of the spec through the typed client', async (t) => {
  const { app } = await build(t, { config: { ingestTokens: [INGEST], readTokens: [READ], rateLimitMax: 0 } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const client = createClient<paths>({ baseUrl: `http://127.0.0.1:${port}` })
  const now = Date.now()

  // POST /api/metrics/chat: one event
  const one: ChatEvent = { model: 'anthropic/claude-3.5-sonnet', gateway: 'eu-1', success: true, ttft_ms: 420, total_time_ms: 3150, input_tokens: 1200, output_tokens: 350, timestamp: now - 3000 }
  const single = await client.POST('/api/metrics/chat', { body: one, headers: ingest })
  t.equal(single.response.status, 202)
  t.equal(single.error, undefined)
  const accepted: number | undefined = single.data?.accepted
  t.equal(accepted, 1)

  // POST /api/metrics/chat: a batch
  const batch = await client.POST('/api/metrics/chat', {
    body: [
      { model: 'anthropic/claude-3.5-sonnet', gateway: 'eu-1', success: true, ttft_ms: 380, total_time_ms: 2900, output_tokens: 300, timestamp: now - 2000 },
      { model: 'anthropic/claude-3.5-sonnet', gateway: 'eu-1', success: false, error_type: 'rate_limit', total_time_ms: 95, timestamp: new Date(now - 1000).toISOString() },
      { model: 'openai/gpt-4o', provider: 'openai', gateway: 'us-1', success: true, ttft_ms: 200, total_time_ms: 1000 }
    ],
    headers: ingest
  })
  t.equal(batch.response.status, 202)
  t.equal(batch.data?.accepted, 3)

  // POST /api/metrics/gateway/fetch: one, then a batch
  const fetchOne = await client.POST('/api/metrics/gateway/fetch', { body: { gateway: 'eu-1', status: 'success', model_count: 312, response_time_ms: 840, timestamp: now - 2000 }, headers: ingest })
  t.equal(fetchOne.response.status, 202)
  t.equal(fetchOne.data?.accepted, 1)
  const fetchBatch = await client.POST('/api/metrics/gateway/fetch', {
    body: [{ gateway: 'eu-1', status: 'error', error_type: 'timeout', response_time_ms: 10_000, timestamp: now - 1000 }],
    headers: ingest
  })
  t.equal(fetchBatch.data?.accepted, 1)

  // 401 without the ingest token, typed as the Error schema
  const noToken = await client.POST('/api/metrics/chat', { body: one })
  t.equal(noToken.response.status, 401)
  t.equal(noToken.data, undefined)
  t.equal(noToken.error?.statusCode, 401)

  // 400: typed error, the message names the field (and the index in a batch)
  const invalid = await client.POST('/api/metrics/chat', { body: { model: 'openai/gpt-4o', success: true, ttft_ms: -1 }, headers: ingest })
  t.equal(invalid.response.status, 400)
  t.equal(invalid.data, undefined)
  const err: components['schemas']['Error'] | undefined = invalid.error
  t.equal(err?.statusCode, 400)
  t.equal(typeof err?.error, 'string')
  t.match(err?.message, /ttft_ms/, `the message names the field: ${err?.message}`)
  const invalidBatch = await client.POST('/api/metrics/chat', { body: [one, { model: 'openai/gpt-4o', success: true, output_tokens: 1.5 }], headers: ingest })
  t.equal(invalidBatch.response.status, 400)
  t.match(invalidBatch.error?.message, /1/, 'names the index')
  t.match(invalidBatch.error?.message, /output_tokens/, `and the field: ${invalidBatch.error?.message}`)
  const invalidFetch = await client.POST('/api/metrics/gateway/fetch', { body: { gateway: 'eu-1', status: 'success', error_type: 'timeout' }, headers: ingest })
  t.equal(invalidFetch.response.status, 400)
  t.match(invalidFetch.error?.message, /error_type/)

  for (let i = 0; i < 50 && !(await app.flusher.flush()); i++) await new Promise((resolve) => setTimeout(resolve, 20))

  // GET /api/metrics/realtime: model, provider, gateway
  const model = await client.GET('/api/metrics/realtime', { params: { query: { type: 'model', id: 'anthropic/claude-3.5-sonnet', window: '1h' } }, headers: read })
  t.equal(model.response.status, 200)
  t.equal(model.data?.type, 'model')
  t.equal(model.data?.id, 'anthropic/claude-3.5-sonnet')
  t.equal(model.data?.requests, 3)
  t.equal(model.data?.successes, 2)
  t.equal(model.data?.failures, 1)
  t.equal(model.data?.errors.rate_limit, 1)
  const ttft: Stats | undefined = model.data?.ttft_ms
  t.equal(ttft?.count, 2)
  t.equal(model.data?.window.seconds, 3600)
  t.equal(typeof model.data?.generated_at, 'string')
  t.equal(model.data?.gateway_fetches, undefined, 'gateway_fetches only for type=gateway')
  t.equal(model.response.headers.get('cache-control')?.startsWith('max-age='), true)

  const provider = await client.GET('/api/metrics/realtime', { params: { query: { type: 'provider', id: 'openai', window: '5m' } }, headers: read })
  t.equal(provider.data?.type, 'provider')
  t.equal(provider.data?.requests, 1)
  t.equal(provider.data?.window.seconds, 300)

  const gateway = await client.GET('/api/metrics/realtime', { params: { query: { type: 'gateway', id: 'eu-1', window: '24h' } }, headers: read })
  t.equal(gateway.data?.type, 'gateway')
  t.equal(gateway.data?.requests, 3)
  t.equal(gateway.data?.gateway_fetches?.fetches, 2)
  t.equal(gateway.data?.gateway_fetches?.timeouts, 1)
  t.equal(gateway.data?.gateway_fetches?.last_model_count, 312)

  const unauthorizedRead = await client.GET('/api/metrics/realtime', { params: { query: { type: 'model', id: 'openai/gpt-4o', window: '1h' } } })
  t.equal(unauthorizedRead.response.status, 401)
  t.equal(unauthorizedRead.error?.statusCode, 401)

  // GET /api/metrics/health/leaderboard
  const board = await client.GET('/api/metrics/health/leaderboard', { params: { query: { order: 'desc', limit: 10, window: '1h', min_requests: 1 } }, headers: read })
  t.equal(board.response.status, 200)
  t.equal(board.data?.order, 'desc')
  t.equal(board.data?.entries.length, 2)
  const models = board.data?.entries.map((e) => e.model).sort()
  t.same(models, ['anthropic/claude-3.5-sonnet', 'openai/gpt-4o'])
  const claude = board.data?.entries.find((e) => e.model === 'anthropic/claude-3.5-sonnet')
  t.equal(claude?.provider, 'anthropic')
  t.equal(claude?.requests, 3)
  t.equal(board.data?.entries[0]?.rank, 1)
  t.equal(typeof board.data?.entries[0]?.health_score, 'number')
  const asc = await client.GET('/api/metrics/health/leaderboard', { params: { query: { order: 'asc', limit: 1, window: '5m', min_requests: 2 } }, headers: read })
  t.same(asc.data?.entries.map((e) => e.model), ['anthropic/claude-3.5-sonnet'], 'min_requests 2 leaves one model')

  // GET /api/metrics/provider/summary
  const summary = await client.GET('/api/metrics/provider/summary', { params: { query: { window: '1h' } }, headers: read })
  t.equal(summary.response.status, 200)
  t.same(summary.data?.providers.map((p) => p.provider), ['anthropic', 'openai'], 'by requests, then name')
  t.equal(summary.data?.providers[0]?.requests, 3)
  t.equal(summary.data?.providers[0]?.models, 1)
  t.equal(summary.data?.providers[0]?.errors.rate_limit, 1)
  const justOpenai = await client.GET('/api/metrics/provider/summary', { params: { query: { window: '1h', provider: 'openai' } }, headers: read })
  t.same(justOpenai.data?.providers.map((p) => p.provider), ['openai'])

  // GET /api/metrics/trends: the model short form, then type/id
  const short = await client.GET('/api/metrics/trends', { params: { query: { model: 'anthropic/claude-3.5-sonnet', metric: 'requests', hours: 6, resolution: 'hour' } }, headers: read })
  t.equal(short.response.status, 200)
  t.equal(short.data?.type, 'model')
  t.equal(short.data?.id, 'anthropic/claude-3.5-sonnet')
  t.equal(short.data?.metric, 'requests')
  t.equal(short.data?.stat, null, 'rate metrics carry stat: null')
  t.equal(short.data?.points.length, 6)
  t.equal(short.data?.points.reduce((n, p) => n + p.count, 0), 3)
  const long = await client.GET('/api/metrics/trends', { params: { query: { type: 'gateway', id: 'eu-1', metric: 'ttft', stat: 'p95', hours: 1, resolution: 'minute' } }, headers: read })
  t.equal(long.response.status, 200)
  t.equal(long.data?.type, 'gateway')
  t.equal(long.data?.stat, 'p95')
  t.equal(long.data?.resolution, 'minute')
  t.equal(long.data?.points.length, 60)
  t.equal(long.data?.points.reduce((n, p) => n + p.count, 0), 2, 'two ttft samples')
  t.equal(typeof long.data?.points[59]?.t, 'string')
  const both = await client.GET('/api/metrics/trends', { params: { query: { model: 'openai/gpt-4o', id: 'openai/gpt-4o', metric: 'ttft', hours: 6, resolution: 'hour' } }, headers: read })
  t.equal(both.response.status, 400)
  t.equal(both.error?.statusCode, 400)
  t.match(both.error?.message, /model/, `model with id is a 400: ${both.error?.message}`)

  // GET /healthz, /readyz: open, no token
  const health = await client.GET('/healthz')
  t.equal(health.response.status, 200)
  const status: 'ok' | undefined = health.data?.status
  t.equal(status, 'ok')
  const ready = await client.GET('/readyz')
  t.equal(ready.response.status, 200)
  t.equal(ready.data?.status, 'ready')
  t.equal(ready.data?.store, 'memory')
  t.equal(ready.data?.pending_events, 0)

  // The types reject a misspelt query parameter (a compile error, not only a runtime 400).
  // @ts-expect-error `idd` is not a query parameter of /api/metrics/realtime (and `id` is missing)
  const typo = await client.GET('/api/metrics/realtime', { params: { query: { type: 'model', idd: 'openai/gpt-4o', window: '1h' } }, headers: read })
  t.equal(typo.response.status, 400)
  t.match(typo.error?.message, /id/, `the server names it too: ${typo.error?.message}`)
})
