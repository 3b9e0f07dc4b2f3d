/**
 * GET /metrics is behind the read token when one is set (docs/api.md, "Authentication"), open otherwise, and
 * rate limited per client like the /api/ routes.
 */
import t from 'tap'
import { build } from '../helpers/app.js'
import { PROMETHEUS_CONTENT_TYPE } from '../helpers/prometheus.js'

const INGEST = 'ingest-token-0123456789'
const READ = 'read-token-0123456789'
const READ_NEXT = 'read-token-next-0123456789'

t.test('GET /metrics needs a read token when one is set', async (t) => {
  const { app } = await build(t, { config: { ingestTokens: [INGEST], readTokens: [READ, READ_NEXT] } })
  const get = async (headers: Record<string, string>) => await app.inject({ url: '/metrics', headers })
  for (const [label, headers] of [
    ['no token', {}],
    ['the ingest token', { authorization: `Bearer ${INGEST}` }],
    ['a wrong token', { authorization: 'Bearer wrong-token-000000000000' }],
    ['the token in another scheme', { authorization: `Basic ${READ}` }]
  ] as Array<[string, Record<string, string>]>) {
    const res = await get(headers)
    t.equal(res.statusCode, 401, `${label}: 401`)
    t.equal(res.headers['www-authenticate'], 'Bearer')
    t.match(res.json(), { code: 'METRICS_UNAUTHORIZED' })
    t.notMatch(res.body, /llm_gateway_metrics_/, 'and no series')
  }
  for (const token of [READ, READ_NEXT]) {
    const res = await get({ authorization: `Bearer ${token}` })
    t.equal(res.statusCode, 200, 'a read token: 200')
    t.equal(res.headers['content-type'], PROMETHEUS_CONTENT_TYPE)
    t.match(res.body, /^# HELP llm_gateway_metrics_events_accepted_total /m)
  }
})

t.test('GET /metrics is open without a read token, and shares the per-client rate limit of the /api/ routes', async (t) => {
  const { app } = await build(t, { config: { ingestTokens: [INGEST], rateLimitMax: 3, rateLimitWindowMs: 60_000 } })
  const statuses = []
  for (let i = 0; i < 2; i++) statuses.push((await app.inject({ url: '/metrics', remoteAddress: '10.1.1.1' })).statusCode)
  statuses.push((await app.inject({ url: '/api/metrics/realtime?id=x', remoteAddress: '10.1.1.1' })).statusCode)
  const limited = await app.inject({ url: '/metrics', remoteAddress: '10.1.1.1' })
  statuses.push(limited.statusCode)
  t.same(statuses, [200, 200, 200, 429], 'open, and the fourth request of the client is over the limit of 3')
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await app.inject({ url: '/metrics', remoteAddress: '10.1.1.2' })).statusCode, 200, 'another client is not limited')
})
