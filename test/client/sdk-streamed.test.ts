import t from 'tap'
import { createMetricsClient } from '../../packages/client/src/index.js'
import { listenApp } from '../helpers/live.js'

t.test('a completion tracked with streamed: false gives no tokens-per-second sample; a streamed one does', async (t) => {
  const { base, app } = await listenApp(t, {})
  let clock = 0
  const c = createMetricsClient({ baseUrl: base, now: () => clock, flushIntervalMs: 60_000 })
  t.teardown(() => c.close())
  const whole = c.trackCompletion({ model: 'sdk/whole', streamed: false })
  clock += 2000
  whole.firstToken() // the answer arrives whole: its first token comes with the end
  whole.end({ output_tokens: 500 })
  const stream = c.trackCompletion({ model: 'sdk/stream' })
  clock += 200
  stream.firstToken()
  clock += 1000
  stream.end({ output_tokens: 500 })
  await c.flush()
  t.equal(c.stats().sent, 2)
  await app.flusher.flush()
  const read = async (model: string) => (await app.inject({ url: `/api/metrics/realtime?id=${model}&window=5m` })).json() as { requests: number, ttft_ms: { count: number }, output_tokens_per_second: { count: number, avg: number | null } }
  const w = await read('sdk/whole')
  t.match(w, { requests: 1, ttft_ms: { count: 1 }, output_tokens_per_second: { count: 0 } })
  const s = await read('sdk/stream')
  t.match(s, { requests: 1, output_tokens_per_second: { count: 1, avg: 500 } }, '500 tokens in 1 s of generation')
})
