import { EventEmitter } from 'node:events'
import { Writable } from 'node:stream'
import t from 'tap'
import { SseConnection } from '../../src/stream/connection.js'
import { until } from '../helpers/sse.js'

function read (conn: SseConnection): { text: () => string } {
  let text = ''
  conn.body.on('data', (d: Buffer) => { text += d.toString() })
  return { text: () => text }
}

t.test('frames, heartbeat comments, and a graceful end', async (t) => {
  let closed = 0
  const conn = new SseConnection({ heartbeatMs: 20, maxBufferedBytes: 1 << 20, stallMs: 40, retryMs: 7000, onClose: () => { closed++ } })
  const out = read(conn)
  conn.send('leaderboard', '{"a":1}')
  await until(() => out.text().includes(': ping\n\n'), 'a heartbeat')
  t.ok(out.text().startsWith(': connected\nretry: 7000\n\nevent: leaderboard\ndata: {"a":1}\n\n'), 'connected comment, retry, then the frame')
  conn.end()
  await until(() => closed === 1, 'onClose')
  const after = out.text()
  conn.send('leaderboard', '{"a":2}')
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(out.text(), after, 'nothing is written after the end, not even a heartbeat')
  t.equal(closed, 1, 'onClose once')
})

t.test('a client that stops reading is dropped, not buffered without bound', async (t) => {
  let closed = false
  const conn = new SseConnection({ heartbeatMs: 60_000, maxBufferedBytes: 10_000, stallMs: 120_000, retryMs: 1000, onClose: () => { closed = true } })
  const data = JSON.stringify({ pad: 'x'.repeat(4000) })
  for (let i = 0; i < 10 && !conn.body.destroyed; i++) conn.send('big', data)
  t.ok(conn.body.destroyed, 'destroyed once more than 10 000 bytes wait')
  t.ok(conn.body.writableLength < 20_000, `at most one frame beyond the limit was buffered (${conn.body.writableLength} B)`)
  await until(() => closed, 'onClose')
})

t.test('a client whose connection takes nothing for stallMs is dropped, even with only heartbeats to send', async (t) => {
  let closed = false
  const conn = new SseConnection({ heartbeatMs: 20, maxBufferedBytes: 1 << 20, stallMs: 60, retryMs: 1000, onClose: () => { closed = true } })
  // A response that accepts one chunk and never finishes writing it: a client gone without a FIN.
  const response = new Writable({ highWaterMark: 1, write: () => {} })
  const socket = new EventEmitter()
  conn.attach(socket, response)
  conn.body.pipe(response)
  await until(() => closed, 'the stalled stream dropped')
  t.ok(conn.body.writableLength < 100, `a few heartbeats were waiting (${conn.body.writableLength} B), far below maxBufferedBytes`)
  t.equal(socket.listenerCount('close'), 0, 'no listener left on the connection')
})

t.test('a slow client that drains now and then is kept', async (t) => {
  let closed = false
  // A stall limit far above a loaded machine's timer delays, and well within the test's wait.
  const conn = new SseConnection({ heartbeatMs: 10, maxBufferedBytes: 1 << 20, stallMs: 300, retryMs: 1000, onClose: () => { closed = true } })
  // Takes each chunk 15 ms after it came: always behind (a heartbeat every 10 ms), never stalled for 300 ms.
  const response = new Writable({ highWaterMark: 1, write: (_c, _e, cb) => { setTimeout(cb, 15) } })
  conn.attach(new EventEmitter(), response)
  conn.body.pipe(response)
  await new Promise((resolve) => setTimeout(resolve, 900))
  t.notOk(closed, 'still open after 900 ms, three stall limits')
  conn.end()
  await until(() => closed, 'onClose')
})

t.test('the connection closing ends the stream, once', async (t) => {
  let closed = 0
  const conn = new SseConnection({ heartbeatMs: 60_000, maxBufferedBytes: 1 << 20, stallMs: 120_000, retryMs: 1000, onClose: () => { closed++ } })
  const socket = new EventEmitter()
  conn.attach(socket, new Writable({ write: (_c, _e, cb) => { cb() } }))
  socket.emit('close')
  await until(() => closed === 1, 'onClose')
  socket.emit('close')
  t.equal(closed, 1)
  t.ok(conn.body.destroyed)
})

t.test('attached to a connection already gone, or after the end: nothing is left listening', async (t) => {
  let closed = 0
  const gone = Object.assign(new EventEmitter(), { destroyed: true })
  const conn = new SseConnection({ heartbeatMs: 60_000, maxBufferedBytes: 1 << 20, stallMs: 120_000, retryMs: 1000, onClose: () => { closed++ } })
  conn.attach(gone, new Writable({ write: (_c, _e, cb) => { cb() } }))
  await until(() => closed === 1, 'a stream for a client already gone ends at once')
  const socket = new EventEmitter()
  conn.attach(socket, new Writable({ write: (_c, _e, cb) => { cb() } }))
  t.equal(socket.listenerCount('close'), 0, 'an ended stream does not attach')
})
