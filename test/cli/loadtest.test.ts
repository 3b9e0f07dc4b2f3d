import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { loadtest, windowFor } from '../../src/cli/loadtest.js'
import { listenApp } from '../helpers/live.js'

t.test('the counts check passes against a live service', async (t) => {
  const token = 'ingest-token-0123456789'
  const live = await listenApp(t, { config: { ingestTokens: [token] } })
  const lines: string[] = []
  const progress: string[] = []
  const ok = await loadtest({ url: live.base, token, durationS: 2, connections: 4, batch: 5 }, (l) => lines.push(l), (l) => progress.push(l))
  t.ok(ok, lines.join('\n'))
  t.ok(progress.length >= 1, 'a progress line while it runs')
  t.match(lines.join('\n'), /^requests: \d+ in 2 s, \d+ req\/s/m)
  t.match(lines.join('\n'), /^latency ms: p50 [\d.]+, p90 [\d.]+, p99 [\d.]+/m)
  const counts = lines.filter((l) => l.includes('counts:'))
  t.equal(counts.length, 4, 'one line per model of the run')
  t.ok(counts.every((l) => l.startsWith('PASS')))
})

/** A service on loopback answering with `handle`; closed in teardown. */
async function serve (t: Test, handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      handle(req, Buffer.concat(chunks).toString(), res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('the counts check fails when the service answers 202 but counts nothing', async (t) => {
  const url = await serve(t, (req, _body, res) => {
    if (req.method === 'POST') { res.statusCode = 202; res.end('{"accepted":1}'); return }
    res.end('{"requests":0}')
  })
  const lines: string[] = []
  const ok = await loadtest({ url, durationS: 1, connections: 2, batch: 3, settleMs: 1_000 }, (l) => lines.push(l), () => {})
  t.notOk(ok)
  t.match(lines.join('\n'), /^FAIL {2}counts: loadtest-\w+\/openai-gpt-4o: \d+ accepted.*, 0 counted/m)
})

t.test('refused writes and refused reads fail, with the answers counted by status', async (t) => {
  const url = await serve(t, (req, _body, res) => {
    res.statusCode = req.method === 'POST' ? 429 : 401
    res.end('{"error":"no"}')
  })
  const lines: string[] = []
  t.notOk(await loadtest({ url, durationS: 1, connections: 1, batch: 1, settleMs: 0 }, (l) => lines.push(l), () => {}))
  t.match(lines.join('\n'), /^errors: 0 connection errors, 0 timeouts, \d+ non-2xx answers \(\d+ × 429\)$/m)
  t.match(lines.join('\n'), /^FAIL {2}counts: no event was accepted$/m)
  const reads: string[] = []
  const readRefused = await serve(t, (req, _body, res) => {
    res.statusCode = req.method === 'POST' ? 202 : 401
    res.end('{}')
  })
  t.notOk(await loadtest({ url: readRefused, durationS: 1, connections: 1, batch: 1, settleMs: 0 }, (l) => reads.push(l), () => {}))
  t.match(reads.join('\n'), /^FAIL {2}counts: loadtest-\w+\/openai-gpt-4o: \d+ accepted.*, 401 counted/m)
})

t.test('events in requests unanswered when the run ends may be counted or not', async (t) => {
  // Answers the first two batches; the third is held until the run is over.
  const counted = new Map<string, number>()
  let posts = 0
  const url = await serve(t, (req, body, res) => {
    if (req.method === 'POST') {
      for (const e of JSON.parse(body) as Array<{ model: string }>) counted.set(e.model, (counted.get(e.model) ?? 0) + 1)
      if (++posts <= 2) { res.statusCode = 202; res.end('{}') }
      return
    }
    const id = new URL(req.url!, 'http://x').searchParams.get('id')!
    res.end(JSON.stringify({ requests: counted.get(id) ?? 0 }))
  })
  const lines: string[] = []
  t.ok(await loadtest({ url, durationS: 1, connections: 1, batch: 4, settleMs: 0 }, (l) => lines.push(l), () => {}), lines.join('\n'))
  t.match(lines.join('\n'), /^PASS {2}counts: loadtest-\w+\/openai-gpt-4o: 2 accepted \(\+1 in requests unanswered when the run ended\), 3 counted/m)
})

t.test('the read-back window holds the whole run', async (t) => {
  t.equal(windowFor(180), '5m')
  t.equal(windowFor(181), '15m')
  t.equal(windowFor(720), '15m')
  t.equal(windowFor(721), '1h')
})
