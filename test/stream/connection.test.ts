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
  const conn = new SseConnection({ heartbeatMs: 20, maxBufferedBytes: 1 << 20, retryMs: 7000, onClose: () => { closed++ } })
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
  const conn = new SseConnection({ heartbeatMs: 60_000, maxBufferedBytes: 10_000, retryMs: 1000, onClose: () => { closed = true } })
  const data = JSON.stringify({ pad: 'x'.repeat(4000) })
  for (let i = 0; i < 10 && !conn.body.destroyed; i++) conn.send('big', data)
  t.ok(conn.body.destroyed, 'destroyed once more than 10 000 bytes wait')
  t.ok(conn.body.writableLength < 20_000, `at most one frame beyond the limit was buffered (${conn.body.writableLength} B)`)
  await until(() => closed, 'onClose')
})
