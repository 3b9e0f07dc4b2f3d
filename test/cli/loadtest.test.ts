import { createServer } from 'node:http'
import t from 'tap'
import { loadtest } from '../../src/cli/loadtest.js'
import { listenApp } from '../helpers/live.js'

t.test('the counts check passes against a live service', async (t) => {
  const token = 'ingest-token-0123456789'
  const live = await listenApp(t, { config: { ingestTokens: [token] } })
  const lines: string[] = []
  const progress: string[] = []
  const ok = await loadtest({ url: live.base, token, durationS: 2, connections: 4, batch: 5, settleMs: 10_000 }, (l) => lines.push(l), (l) => progress.push(l))
  t.ok(ok, lines.join('\n'))
  t.ok(progress.length >= 1, 'a progress line while it runs')
  t.match(lines.join('\n'), /^requests: \d+ in 2 s, \d+ req\/s/m)
  t.match(lines.join('\n'), /^latency ms: p50 [\d.]+, p90 [\d.]+, p99 [\d.]+/m)
  const counts = lines.filter((l) => l.includes('counts:'))
  t.equal(counts.length, 4, 'one line per model of the run')
  t.ok(counts.every((l) => l.startsWith('PASS')))
})

t.test('the counts check fails when the service answers 202 but counts nothing', async (t) => {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      if (req.method === 'POST') { res.statusCode = 202; res.end('{"accepted":1}'); return }
      res.end('{"requests":0}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  const { port } = server.address() as { port: number }
  const lines: string[] = []
  const ok = await loadtest({ url: `http://127.0.0.1:${port}`, durationS: 1, connections: 2, batch: 3, settleMs: 1_000 }, (l) => lines.push(l), () => {})
  t.notOk(ok)
  t.match(lines.join('\n'), /^FAIL {2}counts: loadtest-\w+\/openai-gpt-4o: \d+ accepted.*, 0 counted/m)
})
