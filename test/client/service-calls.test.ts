/**
 * The six `metricsService` calls a gateway already makes, written exactly as it writes them (each
 * with `.catch(console.error)`), through createMetricsService against a live service on 127.0.0.1;
 * then every count the service answers for them: realtime by model, gateway and provider, and the
 * leaderboard.
 */
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createMetricsService, determineErrorType, extractProvider } from '../../packages/client/src/index.js'
import { build } from '../helpers/app.js'

/** Long enough that the SDK's timer never fires during the test (below setInterval's 2^31 − 1 limit). */
const NEVER = 1_000_000_000

async function landAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await app.flusher.flush()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('the ingest buffer did not drain')
}

async function get (app: FastifyInstance, url: string): Promise<Record<string, any>> {
  const res = await app.inject({ url })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  return res.json()
}

t.test('the six original calls, unchanged, are counted exactly', async (t) => {
  const { app } = await build(t, { config: { rateLimitMax: 0 } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const metricsService = createMetricsService({ baseUrl, flushIntervalMs: NEVER })
  t.teardown(metricsService.close)

  const logged: unknown[][] = []
  const consoleError = console.error
  console.error = (...args: unknown[]) => { logged.push(args) }
  t.teardown(() => { console.error = consoleError })

  const model = 'anthropic/claude-3.5-sonnet'
  const gateway = 'eu-1'
  const provider = extractProvider(model)
  const error = Object.assign(new Error('429 Too Many Requests: rate limit reached'), { status: 429 })
  // Named as the API's fields, as the README's gateway example names them.
  /* eslint-disable camelcase */
  let total_time_ms = 3150
  const ttft_ms = 420
  const model_count = 312
  const response_time_ms = 840

  // A whole answer; a failed request; a stream: its first token, then its end; two model-list fetches.
  metricsService.recordRequestComplete({ model, gateway, provider: extractProvider(model), total_time_ms, success: true }).catch(console.error)
  metricsService.recordStatus({ model, gateway, provider, success: false, error_type: determineErrorType(error) }).catch(console.error)
  metricsService.recordLatency({ model, gateway, provider, ttft_ms }).catch(console.error) // at a stream's first token
  total_time_ms = 5200
  metricsService.recordRequestComplete({ model, ttft_ms, total_time_ms, success: true }).catch(console.error) // at a stream's end
  metricsService.recordGatewayFetch('success', { gateway, model_count, response_time_ms }).catch(console.error)
  metricsService.recordGatewayFetch('error', { gateway, error_type: 'timeout' /* or 'error' */ }).catch(console.error)

  await metricsService.flush()
  await landAll(app)
  t.same(logged, [], 'nothing reached console.error')
  t.same(metricsService.stats(), {
    queued: 0,
    sent: 5,
    dropped: 0,
    failed: 0,
    invalid: 0,
    refused: 0,
    expired: 0,
    retries: 0,
    latencyPending: 0,
    latencyJoined: 1,
    latencyExpired: 0,
    latencyInvalid: 0
  }, 'four completions and two fetches sent (the latency sample is part of a completion), nothing lost')

  const byModel = await get(app, `/api/metrics/realtime?type=model&id=${encodeURIComponent(model)}&window=5m`)
  t.equal(byModel.requests, 3, 'three completions: whole, failed, streamed')
  t.equal(byModel.successes, 2)
  t.equal(byModel.failures, 1)
  t.same(byModel.errors, { timeout: 0, rate_limit: 1, network: 0, other: 0 }, 'the failure as determineErrorType named it')
  t.equal(byModel.ttft_ms.count, 1, 'one TTFT sample: the stream counted once')
  t.equal(byModel.ttft_ms.min, byModel.ttft_ms.max)
  t.ok(Math.abs(byModel.ttft_ms.p50 - ttft_ms) <= ttft_ms * 0.02, `TTFT p50 ${byModel.ttft_ms.p50} ≈ ${ttft_ms}`)
  t.equal(byModel.total_time_ms.count, 2, 'total times of the whole answer and the stream')
  t.ok(Math.abs(byModel.total_time_ms.max - 5200) <= 5200 * 0.02, 'the stream\'s total time')

  const byGateway = await get(app, `/api/metrics/realtime?type=gateway&id=${gateway}&window=5m`)
  t.equal(byGateway.requests, 3, 'the stream\'s end, which names no gateway, is filed under its first token\'s gateway')
  t.equal(byGateway.successes, 2)
  t.equal(byGateway.failures, 1)
  t.equal(byGateway.ttft_ms.count, 1)
  t.equal(byGateway.gateway_fetches.fetches, 2, 'two model-list fetches')
  t.equal(byGateway.gateway_fetches.errors, 1)
  t.equal(byGateway.gateway_fetches.timeouts, 1)
  t.equal(byGateway.gateway_fetches.last_model_count, model_count)
  t.equal(byGateway.gateway_fetches.response_time_ms.count, 1, 'the failed fetch gave no response time')

  const other = await get(app, '/api/metrics/realtime?type=gateway&id=default&window=5m')
  t.equal(other.requests, 0, 'nothing under the default gateway')

  const byProvider = await get(app, '/api/metrics/realtime?type=provider&id=anthropic&window=5m')
  t.equal(byProvider.requests, 3)
  t.equal(byProvider.failures, 1)

  const board = await get(app, '/api/metrics/health/leaderboard?window=5m&limit=10')
  t.same(board.entries.map((e: any) => [e.model, e.provider, e.requests]), [[model, 'anthropic', 3]], 'one leaderboard entry with the three completions')
  t.equal(board.entries[0].success_rate, 66.67)
})
