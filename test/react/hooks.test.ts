// The DOM first: React and @testing-library/react look for it when they load.
import '../helpers/jsdom.js'
import t, { type Test } from 'tap'
import { cleanup, renderHook, waitFor } from '@testing-library/react'
import { MetricsError, useLeaderboard, useRealtimeMetrics, type LiveState } from '../../packages/react/src/index.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Fields, MergeRead } from '../../src/store/types.js'
import { listenApp } from '../helpers/live.js'
import { openSse, until } from '../helpers/sse.js'

const READ = 'react-read-token-0123456789'
const STREAM = { intervalMs: 100, heartbeatMs: 15_000, maxSubscribers: 50 }
const wait = { timeout: 10_000 }

class FlakyStore extends MemoryStore {
  failing = false
  override async read (reads: MergeRead[]): Promise<Fields[][]> {
    if (this.failing) throw new Error('store down')
    return await super.read(reads)
  }
}

function unmountLater (t: Test): void {
  t.teardown(() => { cleanup() })
}

t.test('useRealtimeMetrics: loading, then the data, then every new event; unmount closes the stream', async (t) => {
  const { app, base, post } = await listenApp(t, { config: { stream: STREAM } })
  await post('/api/metrics/chat', [{ model: 'acme/m', success: true, ttft_ms: 120 }, { model: 'acme/m', success: false, error_type: 'timeout' }])
  unmountLater(t)
  const { result, unmount } = renderHook(() => useRealtimeMetrics({ baseUrl: base, id: 'acme/m', window: '5m' }))
  t.match(result.current, { loading: true, data: undefined, error: undefined, stale: false }, 'loading at first')
  await waitFor(() => { if (result.current.data?.requests !== 2) throw new Error('waiting') }, wait)
  t.match(result.current, { loading: false, stale: false, error: undefined, source: 'stream' })
  t.match(result.current.data, { type: 'model', id: 'acme/m', requests: 2, failures: 1, errors: { timeout: 1 }, window: { seconds: 300 } })
  t.ok(result.current.updatedAt! <= Date.now())
  t.equal(app.metricsStream.subscribers, 1, 'one stream on the server')

  await post('/api/metrics/chat', { model: 'acme/m', success: true, ttft_ms: 90 })
  await waitFor(() => { if (result.current.data?.requests !== 3) throw new Error('waiting') }, wait)
  t.pass('the new event arrives without asking')

  unmount()
  await until(() => app.metricsStream.subscribers === 0, 'the server sees the stream leave')
  t.equal(app.metricsStream.topics, 0, 'nothing computed for it any more')
})

t.test('useLeaderboard: the read token in the header, the options in the query; new options start over', async (t) => {
  const { base, post } = await listenApp(t, { config: { stream: STREAM, readTokens: [READ] } })
  await post('/api/metrics/chat', [
    ...Array.from({ length: 5 }, () => ({ model: 'a/good', success: true })),
    { model: 'b/bad', success: false },
    { model: 'c/mid', success: true },
    { model: 'c/mid', success: false }
  ])
  unmountLater(t)
  // Every render's answer, with the order it was rendered for.
  const renders: Array<{ order: string, answered: string | undefined }> = []
  const { result, rerender } = renderHook((order: 'asc' | 'desc') => {
    const s = useLeaderboard({ baseUrl: `${base}/`, token: READ, window: '1h', order, limit: 2, minRequests: 1 })
    renders.push({ order, answered: s.data?.order })
    return s
  }, { initialProps: 'asc' })
  await waitFor(() => { if (result.current.data === undefined) throw new Error('waiting') }, wait)
  t.same(result.current.data!.entries.map((e) => e.model), ['b/bad', 'c/mid'], 'the least healthy two')
  t.equal(result.current.data!.order, 'asc')

  rerender('desc')
  t.match(result.current, { loading: true, data: undefined, error: undefined }, 'other options: loading again, nothing of the previous answer')
  await waitFor(() => { if (result.current.data?.order !== 'desc') throw new Error('waiting') }, wait)
  t.same(result.current.data!.entries.map((e) => e.model), ['a/good', 'c/mid'], 'the healthiest two')
  t.same(renders.filter((r) => r.answered !== undefined && r.answered !== r.order), [], 'no render shows the answer to other options, not even the first one after the change')
})

t.test('a wrong token is an error, and not retried', async (t) => {
  const { app, base } = await listenApp(t, { config: { stream: STREAM, readTokens: [READ] } })
  let asked = 0
  app.server.on('request', (req: { url: string }) => { if (req.url.startsWith('/api/')) asked++ })
  unmountLater(t)
  const { result } = renderHook(() => useRealtimeMetrics({ baseUrl: base, token: 'wrong-token-00000000000', type: 'gateway', id: 'eu-1', pollIntervalMs: 50 }))
  await waitFor(() => { if (result.current.error === undefined) throw new Error('waiting') }, wait)
  const err = result.current.error as MetricsError
  t.ok(err instanceof MetricsError)
  t.match(err, { status: 401, code: 'METRICS_UNAUTHORIZED', message: /METRICS_READ_TOKEN/ })
  t.match(result.current, { loading: false, data: undefined, stale: false })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(asked, 1, 'one request: asking again cannot help')
})

t.test('the stream refused (too many subscribers): the route is polled, and the stream taken up again', async (t) => {
  const { base, post } = await listenApp(t, { config: { stream: { ...STREAM, maxSubscribers: 1 } } })
  await post('/api/metrics/chat', { model: 'acme/p', success: true })
  const other = await openSse(`${base}/api/metrics/stream`)
  t.teardown(() => { other.close() })
  unmountLater(t)
  const { result } = renderHook(() => useRealtimeMetrics({ baseUrl: base, id: 'acme/p', pollIntervalMs: 100 }))
  await waitFor(() => { if (result.current.data?.requests !== 1) throw new Error('waiting') }, wait)
  t.equal(result.current.source, 'poll', 'polled')
  await post('/api/metrics/chat', { model: 'acme/p', success: true })
  await waitFor(() => { if (result.current.data?.requests !== 2) throw new Error('waiting') }, wait)
  t.equal(result.current.source, 'poll', 'polling follows new events too')

  other.close()
  await waitFor(() => { if (result.current.source !== 'stream') throw new Error('waiting') }, wait)
  t.pass('back on the stream once there is room')
})

t.test('the service going away: the last data is kept, marked stale, with the error', async (t) => {
  const { app, base } = await listenApp(t, { config: { stream: STREAM } })
  unmountLater(t)
  const { result, unmount } = renderHook(() => useRealtimeMetrics({ baseUrl: base, type: 'provider', id: 'acme', window: '15m', pollIntervalMs: 100 }))
  await waitFor(() => { if (result.current.data === undefined) throw new Error('waiting') }, wait)
  await app.close()
  await waitFor(() => { if (!result.current.stale) throw new Error('waiting') }, wait)
  t.match(result.current, { stale: true, loading: false, data: { type: 'provider', id: 'acme', requests: 0 } })
  t.ok(result.current.error instanceof Error, `the error: ${result.current.error?.message}`)
  unmount()
})

t.test('a store failure reaches the hook as an error event; the stream recovers by itself', async (t) => {
  const store = new FlakyStore()
  const { base } = await listenApp(t, { store, config: { stream: STREAM } })
  unmountLater(t)
  const { result } = renderHook(() => useRealtimeMetrics({ baseUrl: base, id: 'acme/s' }))
  await waitFor(() => { if (result.current.data === undefined) throw new Error('waiting') }, wait)
  store.failing = true
  await waitFor(() => { if (result.current.error === undefined) throw new Error('waiting') }, wait)
  t.match(result.current.error, { status: 503, code: 'METRICS_STORE_UNAVAILABLE' })
  t.match(result.current, { stale: true, source: 'stream' }, 'the data is kept, marked stale')
  store.failing = false
  await waitFor(() => { if (result.current.error !== undefined) throw new Error('waiting') }, wait)
  t.match(result.current, { stale: false, source: 'stream' })
})

t.test('a silent stream is taken for dead: polled, then opened again', async (t) => {
  const { base } = await listenApp(t, { config: { stream: { intervalMs: 60_000, heartbeatMs: 60_000, maxSubscribers: 10 } } })
  unmountLater(t)
  const states: Array<LiveState<unknown>> = []
  renderHook(() => {
    const s = useRealtimeMetrics({ baseUrl: base, id: 'acme/quiet', staleAfterMs: 150, pollIntervalMs: 50 })
    states.push(s)
    return s
  })
  await waitFor(() => { if (!states.some((s) => s.source === 'poll')) throw new Error('waiting') }, wait)
  t.ok(states.some((s) => s.source === 'stream'), 'the stream answered first')
  t.ok(states.some((s) => /silent for 150 ms/.test(s.error?.message ?? '')), 'then went silent')
  t.ok(states.findIndex((s) => s.source === 'poll') > states.findIndex((s) => s.source === 'stream'), 'and the route was polled')
})
