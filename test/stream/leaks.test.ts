/**
 * Every way a stream's client can go gives its subscriber slot back (METRICS_STREAM_MAX_SUBSCRIBERS
 * is a hard cap: a slot kept for good is a stream refused for good): HEAD, a connection destroyed
 * or reset, requests pipelined on one connection, a request aborted before its handler ran, and a
 * client that stops taking bytes without closing (half-open: gone without a FIN, or paused).
 */
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { defaultConfig, type Config } from '../../src/config.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Fields, MergeRead } from '../../src/store/types.js'
import { listenApp, type LiveApp } from '../helpers/live.js'
import { openSse, until } from '../helpers/sse.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

class FailingStore extends MemoryStore {
  failing = false
  override async read (reads: MergeRead[]): Promise<Fields[][]> {
    if (this.failing) throw new Error('store down')
    return await super.read(reads)
  }
}

async function live (t: Test, stream: Partial<Config['stream']> = {}): Promise<LiveApp<FailingStore>> {
  return await listenApp(t, { store: new FailingStore(), config: { stream: { intervalMs: 100, heartbeatMs: 15_000, maxSubscribers: 1000, ...stream } } })
}

/** A raw connection to the app, closed in teardown. */
function raw (t: Test, l: LiveApp<FailingStore>): Socket {
  const socket = connect(Number(new URL(l.base).port), '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => { socket.destroy() })
  return socket
}

const GET = (path = '/api/metrics/stream'): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`

t.test('1 000 HEADs take no slot: a GET stream still gets 200', async (t) => {
  const l = await live(t)
  for (let i = 0; i < 1000; i += 50) {
    const answers = await Promise.all(Array.from({ length: 50 }, async () => await fetch(`${l.base}/api/metrics/stream`, { method: 'HEAD' })))
    for (const res of answers) {
      if (res.status !== 200) t.fail(`HEAD answered ${res.status}`)
      await res.arrayBuffer()
    }
  }
  const head = await fetch(`${l.base}/api/metrics/stream?topic=providers`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.match(head.headers.get('content-type'), /^text\/event-stream/, 'the headers a GET gets')
  t.equal(await head.text(), '', 'and no body')
  t.equal(l.app.metricsStream.subscribers, 0, 'no slot taken')
  t.equal(l.app.metricsStream.topics, 0, 'nothing computed')
  const s = await openSse(`${l.base}/api/metrics/stream`)
  t.teardown(() => { s.close() })
  t.equal(s.status, 200, 'a stream after 1 000 HEADs')
  await s.next((e) => e.event === 'leaderboard')
})

t.test('a destroyed or reset connection gives its slot back', async (t) => {
  const l = await live(t)
  for (const end of ['destroy', 'reset'] as const) {
    const socket = raw(t, l)
    socket.write(GET())
    await new Promise((resolve) => socket.once('data', resolve))
    t.equal(l.app.metricsStream.subscribers, 1, `${end}: streaming`)
    if (end === 'reset') socket.resetAndDestroy()
    else socket.destroy()
    await until(() => l.app.metricsStream.subscribers === 0, `the slot back after ${end}`)
  }
  t.equal(l.app.metricsStream.topics, 0)
})

t.test('requests pipelined on one connection: one stream, and its slot back when the connection goes', async (t) => {
  const l = await live(t)
  const socket = raw(t, l)
  socket.on('data', () => {})
  socket.write(GET().repeat(20))
  await until(() => l.app.metricsStream.subscribers === 1, 'the first stream open')
  // The other 19 are answered (behind the endless first answer, which they can never pass) without a slot.
  await sleep(200)
  t.equal(l.app.metricsStream.subscribers, 1, 'one slot for the connection, not 20')
  socket.destroy()
  await until(() => l.app.metricsStream.subscribers === 0, 'no slot left once the connection is gone')
})

t.test('a request aborted before its handler ran takes no slot', async (t) => {
  const store = new MemoryStore()
  const app = await buildApp({ config: defaultConfig({ cacheTtlMs: 0, rateLimitMax: 0, stream: { intervalMs: 100, heartbeatMs: 15_000, maxSubscribers: 10 } }), store, logger: false })
  let arrived = 0
  let reached = 0
  app.addHook('onRequest', async () => { arrived++ })
  // A slow hook, as authentication or the shared rate limit may be, between the request and the handler.
  app.addHook('preHandler', async () => { await sleep(150); reached++ })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    app.server.closeAllConnections()
    await app.close()
    await store.close()
  })
  const socket = connect((app.server.address() as { port: number }).port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(GET())
  // Gone once the server has the request (on a loaded machine, a fixed delay may come before it).
  await until(() => arrived === 1, 'the request arrived', 10_000, 1)
  socket.destroy()
  await until(() => reached === 1, 'the handler reached')
  await sleep(100)
  t.equal(app.metricsStream.subscribers, 0)
  t.equal(app.metricsStream.topics, 0)
})

t.test('a client that stops taking bytes without closing is dropped (half-open)', async (t) => {
  const l = await live(t, { intervalMs: 50, heartbeatMs: 100 })
  const now = Date.now()
  const events = Array.from({ length: 60 * 3 }, (_, i) => ({ model: `vendor-${i % 12}/model-${i % 60}`, gateway: `gw-${i % 20}`, success: i % 7 !== 0, ttft_ms: 100 + i, total_time_ms: 900 + i, timestamp: now - (i % 3) * 3_600_000 }))
  await l.post('/api/metrics/chat', events)
  const serverSide = new Promise<Socket>((resolve) => l.app.server.once('connection', resolve))
  const socket = raw(t, l)
  socket.write(GET('/api/metrics/stream?topic=leaderboard&topic=sparklines&topic=gateways&topic=providers&window=24h&limit=100'))
  await new Promise((resolve) => socket.once('data', resolve))
  // The client vanishes as far as the server can tell: it reads nothing more, and sends no FIN.
  socket.pause()
  const server = await serverSide
  // Its bytes pile up in the kernel until the connection's buffers are full (about 4 MB on loopback
  // here); from then on Node holds them. Corking the server's side of the connection is that state
  // at once, without pushing megabytes first.
  server.cork()
  t.equal(l.app.metricsStream.subscribers, 1)
  await until(() => server.writableNeedDrain, 'the server holding bytes it cannot send')
  // Nothing new to send from now on but heartbeats (a stream whose snapshots stopped changing).
  l.store.failing = true
  await until(() => l.app.metricsStream.subscribers === 0, 'the stalled stream dropped')
  t.equal(l.app.metricsStream.topics, 0, 'and its snapshots no longer computed')
})
