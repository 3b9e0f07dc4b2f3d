import t from 'tap'
import { createMetricsClient } from '../../src/client/index.js'

t.test('a batch put back after a 503 keeps the queue within maxQueue, dropping the oldest', async (t) => {
  let release: (() => void) | undefined
  const bodies: string[] = []
  let calls = 0
  const fetchStub = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls++
    bodies.push(String(init?.body))
    if (calls === 1) {
      await new Promise<void>((resolve) => { release = resolve })
      return new Response(null, { status: 503, headers: { 'retry-after': '0' } })
    }
    return new Response(null, { status: 202 })
  }
  const client = createMetricsClient({ baseUrl: 'http://127.0.0.1:1', fetch: fetchStub as typeof fetch, maxQueue: 3, maxBatch: 3, flushIntervalMs: 1_000_000 })
  for (const i of [1, 2, 3]) client.recordChat({ model: `m/${i}`, success: true })
  const first = client.flush()
  for (let i = 0; i < 50 && release === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  // While the first batch is out, the queue fills up again.
  for (const i of [4, 5, 6]) client.recordChat({ model: `m/${i}`, success: true })
  release?.()
  await first
  t.equal(client.stats().queued <= 3, true, `queue within its bound (${client.stats().queued})`)
  t.equal(client.stats().dropped, 3, 'the 3 oldest were dropped and counted')
  await client.close()
  const sent = bodies.slice(1).flatMap((b) => (JSON.parse(b) as Array<{ model: string }>).map((e) => e.model))
  t.same(sent, ['m/4', 'm/5', 'm/6'], 'the newest were sent')
})
