// The DOM first: React and @testing-library/react look for it when they load.
import '../helpers/jsdom.js'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { createElement as h } from 'react'
import { cleanup, render, renderHook, waitFor, within } from '@testing-library/react'
import {
  formatCount, formatMs, formatPercent, formatScore, formatStatus, formatWindow, HealthLeaderboard, MetricsError, NO_VALUE,
  RealtimeMetricsCard, useRealtimeMetrics, type HealthLeaderboardProps, type RealtimeMetrics, type RealtimeMetricsCardProps
} from '../../packages/react/src/index.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Fields, MergeRead } from '../../src/store/types.js'
import { listenApp } from '../helpers/live.js'
import { openSse, until } from '../helpers/sse.js'

const READ = 'react-read-token-0123456789'
const STREAM = { intervalMs: 100, heartbeatMs: 15_000, maxSubscribers: 50 }
const L = 'en-US'

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

/** Waits (re-rendering as React needs) until `ok` holds. */
async function waitUntil (ok: () => boolean, what: string): Promise<void> {
  await waitFor(() => { if (!ok()) throw new Error(`waiting: ${what}`) }, { timeout: 10_000 })
}

const root = (container: HTMLElement): HTMLElement => container.firstElementChild as HTMLElement
const classes = (el: Element): string[] => [...el.classList].sort()

/** The card's figures as label → text. */
function figures (el: HTMLElement): Record<string, string> {
  const out: Record<string, string> = {}
  for (const div of el.querySelectorAll('.lgm-card__figure')) out[div.querySelector('dt')!.textContent!] = div.querySelector('dd')!.textContent!
  return out
}

/** The leaderboard's rows: the row header (model) and every cell's text. */
function rows (el: HTMLElement): string[][] {
  return within(el).getAllByRole('row').slice(1).map((r) => [...r.children].map((c) => c.textContent!))
}

const card = (props: RealtimeMetricsCardProps): ReturnType<typeof h> => h(RealtimeMetricsCard, props)
const board = (props: HealthLeaderboardProps): ReturnType<typeof h> => h(HealthLeaderboard, props)

t.test('formatting: ms and s, %, counts, scores, states in words, windows; a dash for a missing figure', async (t) => {
  t.same([4.25, 420.4, 999.4, 3150, 42_500].map((v) => formatMs(v, L)), ['4.3 ms', '420 ms', '999 ms', '3.15 s', '42.5 s'])
  t.same([formatPercent(99.54, L), formatPercent(100, L), formatPercent(0, L)], ['99.5%', '100%', '0%'])
  t.same([formatCount(1_234_567, L), formatScore(87.25, L), formatScore(100, L)], ['1,234,567', '87.3', '100'])
  for (const f of [formatMs, formatPercent, formatCount, formatScore]) t.same([f(null), f(undefined)], [NO_VALUE, NO_VALUE], `${f.name}: null and undefined are a dash`)
  t.equal(formatCount(1234), new Intl.NumberFormat().format(1234), 'the reader\'s locale by default')
  t.same((['healthy', 'degraded', 'down', 'unknown'] as const).map(formatStatus), ['Healthy', 'Degraded', 'Down', 'Unknown'])
  t.same([undefined, '5m', '15m', '1h', '6h', '24h'].map((w) => formatWindow(w as '1h' | undefined)), ['last hour', 'last 5 minutes', 'last 15 minutes', 'last hour', 'last 6 hours', 'last 24 hours'])
})

t.test('RealtimeMetricsCard: loading, then readable figures, kept up to date; unmount closes the stream', async (t) => {
  const { app, base, post } = await listenApp(t, { config: { stream: STREAM } })
  await post('/api/metrics/chat', [
    { model: 'acme/m', success: true, ttft_ms: 420, total_time_ms: 3150, input_tokens: 1200, output_tokens: 350 },
    { model: 'acme/m', success: false, error_type: 'timeout' },
    { model: 'acme/m', success: false, error_type: 'rate_limit' }
  ])
  unmountLater(t)
  const { container, unmount, getByRole } = render(card({ baseUrl: base, id: 'acme/m', window: '5m', className: 'my-card', headingLevel: 2, locale: L }))
  const el = root(container)
  t.same(classes(el), ['lgm-card', 'lgm-card--loading', 'my-card'], 'loading first, with the class name given')
  t.equal(el.getAttribute('aria-busy'), 'true')
  t.equal(within(el).getByRole('status').textContent, 'Loading…')
  t.equal(getByRole('region', { name: 'acme/m' }), el, 'a region named by its heading')
  t.ok(getByRole('heading', { level: 2, name: 'acme/m' }))
  t.equal(el.querySelector('.lgm-card__subtitle')!.textContent, 'Model · last 5 minutes')

  await waitUntil(() => el.classList.contains('lgm-card--ready'), 'figures')
  const res = await fetch(`${base}/api/metrics/realtime?id=acme/m&window=5m`)
  const r = await res.json() as RealtimeMetrics & { input_tokens: number, output_tokens: number }
  t.same(classes(el), ['lgm-card', 'lgm-card--ready', 'my-card'])
  t.equal(el.getAttribute('aria-busy'), 'false')
  t.same(figures(el), {
    Requests: '3',
    'Success rate': '33.3%',
    Uptime: '50%',
    'Health score': formatScore(r.health_score, L),
    'TTFT p50': formatMs(r.ttft_ms.p50, L),
    'TTFT p90': formatMs(r.ttft_ms.p90, L),
    'Total time p50': formatMs(r.total_time_ms.p50, L),
    Failures: '2 (timeout 1, rate limit 1)',
    'Tokens in / out': '1,200 / 350'
  }, 'every figure in words and units')
  t.match(figures(el), { 'TTFT p50': /^\d+ ms$/, 'Total time p50': /^\d\.\d\d s$/, 'Health score': /^\d+(\.\d)?$/ })
  const status = el.querySelector('.lgm-card__status')!
  t.equal(status.textContent, `Status: ${formatStatus(r.status)} (${r.status_reason})`, 'the state as a word, with its reason')
  t.equal(within(el).getByRole('status').textContent, formatStatus(r.status), 'the state word is the live region')
  t.ok(status.querySelector(`.lgm-status.lgm-status--${r.status}`), 'and a class per state to colour it')

  await post('/api/metrics/chat', { model: 'acme/m', success: true, ttft_ms: 90 })
  await waitUntil(() => figures(el).Requests === '4', 'the new event')
  t.pass('a new event shows without asking')
  t.equal(app.metricsStream.subscribers, 1, 'one stream on the server')
  unmount()
  await until(() => app.metricsStream.subscribers === 0, 'the server sees the stream leave')
  t.equal(app.metricsStream.topics, 0)
})

t.test('RealtimeMetricsCard: empty window; a failed update keeps the figures, marked stale; then recovers', async (t) => {
  const store = new FlakyStore()
  const { base } = await listenApp(t, { store, config: { stream: STREAM } })
  unmountLater(t)
  const { container } = render(card({ baseUrl: base, type: 'provider', id: 'acme', window: '15m', locale: L }))
  const el = root(container)
  await waitUntil(() => el.classList.contains('lgm-card--empty'), 'empty')
  t.same(classes(el), ['lgm-card', 'lgm-card--empty'])
  t.equal(el.querySelector('.lgm-card__empty')!.textContent, 'No requests in the last 15 minutes.')
  t.equal(el.querySelector('.lgm-card__subtitle')!.textContent, 'Provider · last 15 minutes')
  t.equal(el.querySelector('.lgm-card__figures'), null, 'no figures of nothing')
  t.ok(el.querySelector('h3.lgm-card__title'), 'an h3 by default')

  store.failing = true
  await waitUntil(() => el.classList.contains('lgm-card--stale'), 'stale')
  t.same(classes(el), ['lgm-card', 'lgm-card--empty', 'lgm-card--stale'], 'what it showed is kept, marked stale')
  const note = el.querySelector('.lgm-card__stale')!
  t.equal(note.getAttribute('role'), 'status')
  t.match(note.textContent, /^Not up to date \(.+\); showing the figures of \d{1,2}:\d\d:\d\d\s[AP]M\.$/, 'with the error and the time of the figures')
  t.equal(el.querySelector('.lgm-card__empty')!.textContent, 'No requests in the last 15 minutes.')

  store.failing = false
  await waitUntil(() => !el.classList.contains('lgm-card--stale'), 'recovered')
  t.equal(el.querySelector('.lgm-card__stale'), null, 'the note goes with the failure')
})

t.test('RealtimeMetricsCard: an error with nothing to show is the message, as an alert', async (t) => {
  const { base } = await listenApp(t, { config: { stream: STREAM, readTokens: [READ] } })
  unmountLater(t)
  const { container } = render(card({ baseUrl: base, token: 'wrong-token-00000000000', type: 'gateway', id: 'eu-1' }))
  const el = root(container)
  await waitUntil(() => el.classList.contains('lgm-card--error'), 'error')
  t.same(classes(el), ['lgm-card', 'lgm-card--error'])
  t.equal(el.getAttribute('aria-busy'), 'false')
  const alert = within(el).getByRole('alert')
  t.match(alert.textContent, /^Could not load the figures: .*METRICS_READ_TOKEN/)
  t.equal(el.querySelector('.lgm-card__status'), null)

  cleanup()
  const ok = render(card({ baseUrl: base, token: READ, type: 'gateway', id: 'eu-1' }))
  await waitUntil(() => root(ok.container).classList.contains('lgm-card--empty'), 'the right token')
  t.pass('the right token reads')
})

t.test('RealtimeMetricsCard: a new id (or type, window, title) follows the new one, and only it', async (t) => {
  const { app, base, post } = await listenApp(t, { config: { stream: STREAM } })
  await post('/api/metrics/chat', [{ model: 'acme/a', success: true }, { model: 'acme/a', success: true }, { model: 'acme/b', success: true, ttft_ms: 4.25 }])
  unmountLater(t)
  const { container, rerender } = render(card({ baseUrl: base, id: 'acme/a', locale: L }))
  const el = root(container)
  await waitUntil(() => figures(el).Requests === '2', 'acme/a')
  t.equal(figures(el).Failures, '0', 'no failures: a plain zero')

  rerender(card({ baseUrl: base, id: 'acme/b', title: 'Model B', locale: L }))
  t.same(classes(el), ['lgm-card', 'lgm-card--loading'], 'at once: loading, nothing of acme/a shown under the new id')
  t.equal(el.querySelector('.lgm-card__figures'), null)
  t.equal(within(el).getByRole('heading').textContent, 'Model B')
  await waitUntil(() => figures(el).Requests === '1', 'acme/b')
  t.equal(figures(el)['TTFT p50'], formatMs((await (await fetch(`${base}/api/metrics/realtime?id=acme/b`)).json() as RealtimeMetrics).ttft_ms.p50, L))
  t.match(figures(el)['TTFT p50'], /^4\.\d ms$/, 'a short TTFT with a decimal')
  await until(() => app.metricsStream.subscribers === 1, 'the stream of acme/a closed')

  rerender(card({ baseUrl: base, id: 'acme/b', window: '6h', locale: L }))
  await waitUntil(() => el.querySelector('.lgm-card__subtitle')!.textContent === 'Model · last 6 hours' && figures(el).Requests === '1', 'the 6h window')
  await until(() => app.metricsStream.subscribers === 1, 'one stream still')
  t.pass('a new window is followed, the old stream closed')
})

t.test('RealtimeMetricsCard: pollingInterval paces the polling while the stream is refused; unmount stops it', async (t) => {
  const { app, base, post } = await listenApp(t, { config: { stream: { ...STREAM, maxSubscribers: 1 } } })
  await post('/api/metrics/chat', { model: 'acme/p', success: true })
  const other = await openSse(`${base}/api/metrics/stream`)
  t.teardown(() => { other.close() })
  let polls = 0
  app.server.on('request', (req: IncomingMessage) => { if (req.url!.startsWith('/api/metrics/realtime?')) polls++ })
  unmountLater(t)
  const { container, unmount } = render(card({ baseUrl: base, id: 'acme/p', pollingInterval: 30, locale: L }))
  const el = root(container)
  await waitUntil(() => figures(el).Requests === '1', 'polled')
  await post('/api/metrics/chat', { model: 'acme/p', success: true })
  await waitUntil(() => figures(el).Requests === '2', 'polled again')
  // With the 5 s default, ten polls would take 50 s, beyond waitFor's 10 s.
  await waitUntil(() => polls >= 10, 'ten polls')
  t.ok(el.classList.contains('lgm-card--ready') && !el.classList.contains('lgm-card--stale'), 'polled figures are good figures, not stale')

  unmount()
  const after = polls
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.ok(polls <= after + 1, `no polling after unmount (at most the one in flight): ${after} then ${polls}`)
})

t.test('both components: baseUrl defaults to the page\'s own origin', async (t) => {
  const { base, post } = await listenApp(t, { config: { stream: STREAM } })
  await post('/api/metrics/chat', { model: 'acme/o', success: true })
  // A browser resolves '/api/…' against the page; Node's fetch needs an absolute URL: the page is at `base`.
  const fetchBefore = globalThis.fetch
  const asked: string[] = []
  globalThis.fetch = async (input, init) => {
    asked.push(String(input))
    return await fetchBefore(new URL(String(input), `${base}/`), init)
  }
  t.teardown(() => { globalThis.fetch = fetchBefore })
  unmountLater(t)
  const { container } = render(h('div', null, card({ id: 'acme/o', locale: L }), board({ locale: L })))
  const [c, b] = [...container.firstElementChild!.children] as HTMLElement[]
  await waitUntil(() => figures(c!).Requests === '1' && b!.classList.contains('lgm-leaderboard--ready'), 'both')
  t.ok(asked.length >= 2 && asked.every((u) => u.startsWith('/api/metrics/')), `relative URLs: ${asked.join(' ')}`)
  t.same(rows(b!).map((r) => r[1]), ['acme/o'])
})

t.test('an error page that is not the service\'s (a proxy\'s HTML, a body without a message): its status', async (t) => {
  const answers: Record<string, { status: number, type: string, body: string }> = {
    html: { status: 502, type: 'text/html', body: '<html><body><h1>502 Bad Gateway</h1></body></html>' },
    null: { status: 500, type: 'application/json', body: 'null' },
    bare: { status: 404, type: 'application/json', body: '{"message":"no such route"}' }
  }
  const stub = createServer((req: IncomingMessage, res: ServerResponse) => {
    const a = answers[req.url!.split('/')[1]!]!
    res.writeHead(a.status, { 'content-type': a.type }).end(a.body)
  })
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { stub.closeAllConnections(); stub.close() })
  const base = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`
  unmountLater(t)

  const { container } = render(card({ baseUrl: `${base}/html`, id: 'acme/x', pollingInterval: 1000 }))
  const el = root(container)
  await waitUntil(() => el.classList.contains('lgm-card--error'), 'error')
  t.equal(within(el).getByRole('alert').textContent, 'Could not load the figures: HTTP 502 Bad Gateway', 'the status, not a JSON parse error')

  for (const [path, want] of [['null', { status: 500, code: undefined, message: 'HTTP 500 Internal Server Error' }], ['bare', { status: 404, code: undefined, message: 'no such route' }]] as const) {
    const { result } = renderHook(() => useRealtimeMetrics({ baseUrl: `${base}/${path}`, id: 'acme/x', pollIntervalMs: 1000 }))
    await waitUntil(() => result.current.error !== undefined, path)
    t.ok(result.current.error instanceof MetricsError)
    t.match(result.current.error, want, `${path}: ${result.current.error!.message}`)
    t.equal((result.current.error as MetricsError).code, undefined)
  }
})

t.test('HealthLeaderboard: a table with a caption and headers; order, minRequests and limit follow the props', async (t) => {
  const { app, base, post } = await listenApp(t, { config: { stream: STREAM } })
  await post('/api/metrics/chat', [
    ...Array.from({ length: 5 }, () => ({ model: 'a/good', success: true, ttft_ms: 300, total_time_ms: 1500 })),
    { model: 'b/bad', success: false, error_type: 'network' },
    { model: 'c/mid', success: true, ttft_ms: 12_000, total_time_ms: 20_000 },
    { model: 'c/mid', success: false }
  ])
  unmountLater(t)
  const props = { baseUrl: base, window: '1h', limit: 2, className: 'my-board', locale: L } as const
  const { container, rerender, unmount } = render(board({ ...props, order: 'asc', headingLevel: 4 }))
  const el = root(container)
  t.same(classes(el), ['lgm-leaderboard', 'lgm-leaderboard--loading', 'my-board'])
  t.equal(el.getAttribute('aria-busy'), 'true')
  t.equal(within(el).getByRole('status').textContent, 'Loading…')
  t.equal(within(el).getByRole('heading', { level: 4 }).textContent, 'Model health', 'the default title')

  await waitUntil(() => el.classList.contains('lgm-leaderboard--ready'), 'the table')
  const table = within(el).getByRole('table', { name: 'Least healthy first, last hour' })
  t.same(within(table).getAllByRole('columnheader').map((c) => c.textContent),
    ['Rank', 'Model', 'Status', 'Health score', 'Uptime', 'Success rate', 'Requests', 'TTFT p50', 'Total time p50'])
  t.same(within(table).getAllByRole('rowheader').map((c) => c.textContent), ['b/bad', 'c/mid'], 'the least healthy two, a row header each')
  const api = await (await fetch(`${base}/api/metrics/health/leaderboard?window=1h&order=asc&limit=2`)).json() as { entries: Array<{ status: 'down', health_score: number, ttft_p50_ms: number | null, total_time_p50_ms: number | null }> }
  t.same(rows(el), api.entries.map((e, i) => [
    String(i + 1), ['b/bad', 'c/mid'][i]!, formatStatus(e.status), formatScore(e.health_score, L), formatPercent([0, 50][i], L),
    formatPercent([0, 50][i], L), ['1', '2'][i]!, formatMs(e.ttft_p50_ms, L), formatMs(e.total_time_p50_ms, L)
  ]), 'every cell formatted')
  t.same(rows(el).map((r) => r.slice(7)), [[NO_VALUE, NO_VALUE], [formatMs(api.entries[1]!.ttft_p50_ms, L), formatMs(api.entries[1]!.total_time_p50_ms, L)]], 'no TTFT is a dash')
  t.match(rows(el)[1]!.slice(7), [/^1\d(\.\d)? s$/, /^\d\d(\.\d)? s$/])
  const statusCells = el.querySelectorAll('tbody .lgm-status')
  t.same([...statusCells].map((s) => s.className), api.entries.map((e) => `lgm-status lgm-status--${e.status}`), 'the state as a word and as a class')
  t.same([...el.querySelectorAll('tbody tr')].map((r) => r.className), api.entries.map((e) => `lgm-leaderboard__row lgm-leaderboard__row--${e.status}`))

  rerender(board({ ...props, order: 'desc' }))
  t.same(classes(el), ['lgm-leaderboard', 'lgm-leaderboard--loading', 'my-board'], 'another order: loading, the old rows gone')
  await waitUntil(() => el.querySelector('caption')?.textContent === 'Healthiest first, last hour', 'desc')
  t.same(rows(el).map((r) => r[1]), ['a/good', 'c/mid'])
  t.equal(rows(el)[0]![4], '100%')

  rerender(board({ ...props, order: 'desc', minRequests: 2, limit: 10 }))
  await waitUntil(() => el.querySelector('caption')?.textContent === 'Healthiest first, last hour, at least 2 requests', 'min 2')
  t.same(rows(el).map((r) => r[1]), ['a/good', 'c/mid'], 'b/bad has one request')

  rerender(board({ ...props, minRequests: 30 }))
  await waitUntil(() => el.classList.contains('lgm-leaderboard--empty'), 'nobody has 50')
  t.equal(el.querySelector('.lgm-leaderboard__empty')!.textContent, 'No model had at least 50 requests in the last hour.', 'the threshold the service applied')
  t.equal(el.querySelector('table'), null)
  await until(() => app.metricsStream.subscribers === 1, 'one stream')
  unmount()
  await until(() => app.metricsStream.subscribers === 0, 'the server sees the stream leave')
  t.pass('unmount closes it')
})

t.test('HealthLeaderboard: empty, stale when the store fails (rows kept), an error as an alert', async (t) => {
  const store = new FlakyStore()
  const { base, post } = await listenApp(t, { store, config: { stream: STREAM, readTokens: [READ] } })
  unmountLater(t)
  const { container, rerender } = render(board({ baseUrl: base, token: READ, window: '24h', title: 'Models', locale: L }))
  const el = root(container)
  await waitUntil(() => el.classList.contains('lgm-leaderboard--empty'), 'empty')
  t.equal(el.querySelector('.lgm-leaderboard__empty')!.textContent, 'No model had requests in the last 24 hours.')
  t.equal(within(el).getByRole('heading', { level: 3 }).textContent, 'Models')

  await post('/api/metrics/chat', { model: 'a/one', success: true })
  await waitUntil(() => el.classList.contains('lgm-leaderboard--ready'), 'a row')
  store.failing = true
  await waitUntil(() => el.classList.contains('lgm-leaderboard--stale'), 'stale')
  t.same(classes(el), ['lgm-leaderboard', 'lgm-leaderboard--ready', 'lgm-leaderboard--stale'])
  t.same(rows(el).map((r) => r[1]), ['a/one'], 'the rows are kept')
  t.match(el.querySelector('.lgm-leaderboard__stale')!.textContent, /^Not up to date \(.+\); showing the figures of /)
  store.failing = false
  await waitUntil(() => !el.classList.contains('lgm-leaderboard--stale'), 'recovered')

  rerender(board({ baseUrl: base, token: 'wrong-token-00000000000', window: '24h' }))
  await waitUntil(() => el.classList.contains('lgm-leaderboard--error'), 'error')
  t.match(within(el).getByRole('alert').textContent, /^Could not load the figures: .*METRICS_READ_TOKEN/)
  t.equal(el.querySelector('table'), null)
})
