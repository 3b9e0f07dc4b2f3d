/**
 * The SDK stamps each event with the time of its record call when the caller gave none, so that the
 * events of one batch keep their own times (the service would give them all the arrival time).
 */
import t, { type Test } from 'tap'
import { createMetricsClient, type MetricsClient } from '../../packages/client/src/index.js'

type Sent = Array<{ route: string, events: Array<Record<string, unknown>> }>

function stubbed (t: Test): { c: MetricsClient, sent: Sent } {
  const sent: Sent = []
  const fetchStub = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    sent.push({ route: new URL(String(url)).pathname, events: JSON.parse(String(init?.body)) as Array<Record<string, unknown>> })
    return new Response(null, { status: 202 })
  }
  const c = createMetricsClient({ baseUrl: 'http://127.0.0.1:1', fetch: fetchStub as typeof fetch, flushIntervalMs: 1_000_000, maxBatch: 100 })
  t.teardown(async () => { await c.close() })
  return { c, sent }
}

/** Runs `fn` with Date.now() answering `ms` (restored before returning). */
function at<T> (ms: number, fn: () => T): T {
  const real = Date.now
  Date.now = () => ms
  try {
    return fn()
  } finally {
    Date.now = real
  }
}

t.test('events without a timestamp get the time of their record call; given ones are kept', async (t) => {
  const { c, sent } = stubbed(t)
  const base = Date.UTC(2026, 0, 5, 10, 0, 0)
  at(base, () => c.recordChat({ model: 'm/1', success: true }))
  at(base + 7, () => c.recordChat({ model: 'm/2', success: true, timestamp: base - 60_000 }))
  at(base + 9, () => c.recordChat({ model: 'm/3', success: true, timestamp: '2026-01-05T09:58:00.000Z' }))
  at(base + 12, () => c.recordGatewayFetch({ gateway: 'gw', status: 'success', models: ['a/1'] }))
  at(base + 15, () => c.recordGatewayFetch({ gateway: 'gw', status: 'error', error_type: 'timeout', timestamp: base - 1 }))
  at(base + 20, () => c.trackCompletion({ model: 'm/4' }).end({ output_tokens: 3 }))
  at(base + 25, () => c.recordChat({} as never))
  await c.flush()
  const chat = sent.filter((s) => s.route === '/api/metrics/chat').flatMap((s) => s.events)
  const fetches = sent.filter((s) => s.route === '/api/metrics/gateway/fetch').flatMap((s) => s.events)
  t.equal(sent.length, 2, 'one batch per route')
  t.same(chat.map((e) => e.timestamp), [base, base - 60_000, '2026-01-05T09:58:00.000Z', base + 20, base + 25], 'chat: stamped at the record call (trackCompletion: at end()), or as given')
  t.same(fetches.map((e) => e.timestamp), [base + 12, base - 1], 'fetches: the same')
  t.same(chat[0], { model: 'm/1', success: true, timestamp: base }, 'nothing else changes')
  t.same(chat[4], { timestamp: base + 25 }, 'an empty object gets its time too')
})

t.test('events recorded apart keep apart times in one batch', async (t) => {
  const { c, sent } = stubbed(t)
  const before = Date.now()
  for (let i = 0; i < 5; i++) c.recordGatewayFetch({ gateway: 'gw', status: 'success', models: [`a/${i}`] })
  await c.flush()
  const after = Date.now()
  t.equal(sent.length, 1, 'one batch')
  const times = sent[0]!.events.map((e) => e.timestamp as number)
  t.ok(times.every((ts) => Number.isInteger(ts) && ts >= before && ts <= after), 'epoch ms of the record calls')
  t.same(times, [...times].sort((a, b) => a - b), 'in the order they were recorded')
})

t.test('a timestamp the event\'s own serialization gives wins over the stamp', async (t) => {
  const { c, sent } = stubbed(t)
  const event = { toJSON: () => ({ model: 'm/j', success: true, timestamp: 1_767_000_000_000 }) }
  at(1_767_000_500_000, () => c.recordChat(event as never))
  await c.flush()
  const body = sent[0]!.events
  t.equal(body.length, 1)
  t.equal(body[0]!.timestamp, 1_767_000_000_000)
})
