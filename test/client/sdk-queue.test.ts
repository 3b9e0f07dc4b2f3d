import t from 'tap'
import { createMetricsClient } from '../../packages/client/src/index.js'

t.test('while a batch waits for its retry after a 503, new events queue within maxQueue, dropping the oldest waiting', async (t) => {
  let release: (() => void) | undefined
  const requests: Array<{ key: string | null, models: string[] }> = []
  const fetchStub = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    requests.push({ key: new Headers(init?.headers).get('idempotency-key'), models: (JSON.parse(String(init?.body)) as Array<{ model: string }>).map((e) => e.model) })
    if (requests.length === 1) {
      await new Promise<void>((resolve) => { release = resolve })
      return new Response(null, { status: 503, headers: { 'retry-after': '0' } })
    }
    return new Response(null, { status: 202 })
  }
  const dropped: number[] = []
  const client = createMetricsClient({ baseUrl: 'http://127.0.0.1:1', fetch: fetchStub as typeof fetch, maxQueue: 3, maxBatch: 3, retryBaseMs: 1, retryMaxMs: 1, flushIntervalMs: 1_000_000, onError: (e) => { if (e.kind === 'dropped') dropped.push(e.count) } })
  for (const i of [1, 2, 3]) client.recordChat({ model: `m/${i}`, success: true })
  const first = client.flush()
  for (let i = 0; i < 50 && release === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  // While the first batch is out, the queue fills up again, and one more.
  for (const i of [4, 5, 6, 7]) client.recordChat({ model: `m/${i}`, success: true })
  t.equal(client.stats().queued, 6, 'the batch in flight and the three waiting')
  t.equal(client.stats().dropped, 1, 'the oldest waiting event was dropped and counted')
  release?.()
  await first
  await client.close()
  t.same(client.stats(), { queued: 0, sent: 6, dropped: 1, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 1 })
  t.same(dropped, [1], 'reported through onError')
  t.same(requests.map((r) => r.models), [['m/1', 'm/2', 'm/3'], ['m/1', 'm/2', 'm/3'], ['m/5', 'm/6', 'm/7']], 'the refused batch whole, then the newest')
  t.equal(requests[1]?.key, requests[0]?.key, 'the retry reuses the batch\'s key')
  t.not(requests[2]?.key, requests[0]?.key, 'the next batch has its own')
})
