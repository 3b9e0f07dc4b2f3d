/**
 * What reaches the service before (or around) its routes: Node's own refusals never log the token,
 * a slow request is cut at the documented timeout, a body that is not JSON gets 415, and a read that
 * found the store unreachable says when to retry.
 */
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { build } from '../helpers/app.js'

const TOKEN = 'ingest-token-dddddddddddd-secret'
const event = { model: 'acme/m1', success: true, ttft_ms: 100 }

/** The app on a loopback port, logging at `trace` into `lines`. */
async function listening (t: Test, lines: string[] = []): Promise<{ app: FastifyInstance, port: number }> {
  const store = new MemoryStore()
  const app = await buildApp({
    config: defaultConfig({ ingestTokens: [TOKEN], logLevel: 'trace' }),
    store,
    logger: { level: 'trace', stream: { write: (l: string) => { lines.push(l) } } }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    // Whatever a client still holds open goes first: close() would wait for it.
    app.server.closeAllConnections()
    await app.close()
    await store.close()
  })
  const addr = app.server.address()
  return { app, port: typeof addr === 'object' && addr !== null ? addr.port : 0 }
}

/** Sends raw bytes and resolves with everything the server wrote back before it closed. */
async function raw (port: number, bytes: string): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let out = ''
    socket.on('data', (d: Buffer) => { out += d.toString() })
    socket.on('error', () => {})
    socket.on('close', () => resolve(out))
    socket.write(bytes)
  })
}

/** A log line as text, with any serialized Buffer (`{type: 'Buffer', data: [...]}`) decoded. */
function readable (line: string): string {
  let text = line
  JSON.parse(line, (_key, value: unknown) => {
    const v = value as { type?: unknown, data?: unknown }
    if (v !== null && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data)) text += Buffer.from(v.data as number[]).toString('latin1')
    return value
  })
  return text
}

t.test('Node\'s own refusals (431, bad Content-Length) never log the token, even at trace', async (t) => {
  const lines: string[] = []
  const { port } = await listening(t, lines)
  const head = `POST /api/metrics/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n`
  const oversized = await raw(port, `${head}X-Pad: ${'a'.repeat(17_000)}\r\n\r\n`)
  t.match(oversized, /^HTTP\/1\.1 431 /, 'a 17 KB header: 431')
  const badLength = await raw(port, `${head}Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}`)
  t.match(badLength, /^HTTP\/1\.1 400 /, 'a bad Content-Length: 400')
  const twoLengths = await raw(port, `${head}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`)
  t.match(twoLengths, /^HTTP\/1\.1 400 /, 'two Content-Lengths: 400')
  t.match(oversized, /"statusCode":431/, 'with a JSON body')
  const clientErrors = lines.filter((l) => l.includes('client error'))
  t.equal(clientErrors.length, 3, 'each refusal is logged at trace')
  t.match(JSON.parse(clientErrors[0]!), { code: 'HPE_HEADER_OVERFLOW', status: 431 }, 'by its code')
  t.notOk(lines.some((l) => readable(l).includes(TOKEN)), 'no log line holds the token, as text or as raw bytes')
  t.notOk(lines.some((l) => l.includes('rawPacket')), 'no raw packet is logged')
})

t.test('a request must arrive whole within the request timeout: a trickled body or header is cut', { timeout: 45_000 }, async (t) => {
  // The old server cut these after 60 to 90 s: past this test's own timeout.
  const { port } = await listening(t)
  const trickle = async (first: string, drip: string): Promise<{ answer: string, writes: number }> => await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    let writes = 0
    let timer: NodeJS.Timeout | undefined
    socket.on('data', (d: Buffer) => { answer += d.toString() })
    socket.on('error', () => {})
    socket.on('close', () => { clearInterval(timer); resolve({ answer, writes }) })
    socket.write(first)
    timer = setInterval(() => {
      if (socket.writable) {
        socket.write(drip)
        writes++
      }
    }, 500)
  })
  const [body, headers] = await Promise.all([
    trickle(`POST /api/metrics/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`, ' '),
    trickle('POST /api/metrics/chat HTTP/1.1\r\nHost: x\r\n', 'X-A: b\r\n')
  ])
  t.match(body.answer, /^HTTP\/1\.1 408 /, 'a trickled body: 408, connection closed')
  t.match(headers.answer, /^HTTP\/1\.1 408 /, 'trickled headers: 408, connection closed')
  t.ok(body.writes > 1 && headers.writes > 1, 'both clients kept sending until they were cut')
})

t.test('a body that is not JSON gets 415 with a message that says what to send', async (t) => {
  const { app, store } = await build(t)
  for (const url of ['/api/metrics/chat', '/api/metrics/gateway/fetch']) {
    for (const [label, headers] of [
      ['text/plain', { 'content-type': 'text/plain' }],
      ['text/plain with a charset', { 'content-type': 'text/plain; charset=utf-8' }],
      ['a form', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['no Content-Type', {}]
    ] as Array<[string, Record<string, string>]>) {
      const res = await app.inject({ method: 'POST', url, payload: JSON.stringify(event), headers })
      t.equal(res.statusCode, 415, `${url}, ${label}: 415`)
      t.match(res.json(), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', error: 'Unsupported Media Type', message: /Content-Type: application\/json/ }, `${url}, ${label}: says to send application/json`)
    }
  }
  const json = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: JSON.stringify(event), headers: { 'content-type': 'application/json; charset=utf-8' } })
  t.equal(json.statusCode, 202, 'application/json with a charset is accepted')
  await app.flusher.flush()
  t.ok((await store.keys()).length > 0, 'and recorded')
  const metrics = await app.inject({ url: '/metrics' })
  t.match(metrics.body, /llm_gateway_metrics_ingest_requests_rejected_total\{route="\/api\/metrics\/chat",reason="media_type"\} 4/, 'refusals are counted as media_type')
})

t.test('a read that finds the store unreachable answers 503 with Retry-After', async (t) => {
  const store = new MemoryStore()
  store.read = async () => { throw new Error('the store is down (test)') }
  t.teardown(() => store.close())
  const { app } = await build(t, { store })
  for (const url of ['/api/metrics/realtime?id=acme/m1', '/api/metrics/health/leaderboard', '/api/metrics/provider/summary', '/api/metrics/trends?model=acme/m1']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 503, `${url}: 503`)
    t.match(res.json(), { code: 'METRICS_STORE_UNAVAILABLE' })
    t.ok(Number(res.headers['retry-after']) >= 1, `${url}: Retry-After ${String(res.headers['retry-after'])}`)
  }
  t.notOk('retry-after' in (await app.inject({ url: '/api/metrics/realtime?id=acme/m1&window=bogus' })).headers, 'other errors carry none')
})
