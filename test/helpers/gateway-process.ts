/**
 * A small chat gateway, run as its own process by the chaos test: each POST /v1/chat/completions is
 * one completion recorded through the project's SDK exactly as docs/integration.md shows, and the
 * process keeps its own ledger of the events the service accepted (the SDK's onSent).
 *
 *   METRICS_URL=http://127.0.0.1:PORT node --import tsx test/helpers/gateway-process.ts
 *
 * GET /ledger answers {ledger: {model: accepted events}, recorded, stats}; POST /close closes the SDK
 * (sending what is queued, retrying up to its close timeout) and then answers the same.
 */
import { createServer } from 'node:http'
import { createMetricsClient } from '../../packages/client/src/index.js'

const ledger: Record<string, number> = {}
const problems: string[] = []
let recorded = 0

const metrics = createMetricsClient({
  baseUrl: process.env.METRICS_URL!,
  flushIntervalMs: 100,
  maxBatch: 50,
  timeoutMs: 2000,
  closeTimeoutMs: 60_000,
  onSent: (events) => {
    for (const e of events as Array<{ model: string }>) ledger[e.model] = (ledger[e.model] ?? 0) + 1
  },
  onError: (e) => { if (problems.length < 50) problems.push(`${e.kind} ${e.count}: ${e.message}`) }
})

const answer = (): string => JSON.stringify({ ledger, recorded, stats: metrics.stats(), problems })

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://gateway')
  if (req.method === 'POST' && url.pathname === '/v1/chat/completions') {
    const model = url.searchParams.get('model') ?? 'chaos/default'
    const i = recorded++
    const track = metrics.trackCompletion({ model, gateway: 'chaos-gw' })
    track.firstToken()
    if (i % 10 === 7) track.fail(Object.assign(new Error('429 Too Many Requests'), { status: 429 }))
    else track.end({ input_tokens: 10 + (i % 50), output_tokens: 100 + (i % 200) })
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    return
  }
  if (req.method === 'GET' && url.pathname === '/ledger') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(answer())
    return
  }
  if (req.method === 'POST' && url.pathname === '/close') {
    void metrics.close().then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(answer()))
    return
  }
  res.writeHead(404).end()
})

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = server.address()
  process.stdout.write(`gateway listening on ${typeof addr === 'object' && addr !== null ? addr.port : ''}\n`)
})
