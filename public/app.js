// The dashboard: one event stream for the leaderboard, its sparklines, the providers, the gateways
// and the selected model's figures; the selected model's TTFT trend from the trends route.
import { TrendChart, sparkline } from './charts.js'
import * as fmt from './format.js'
import { HttpError, follow, getJson } from './live.js'

const TOKEN_KEY = 'llm-gateway-metrics.read-token'
const LEADERBOARD_SIZE = 15
/** The trend is fetched again at most this often while new figures come in. */
const TREND_REFRESH_MS = 15_000
/** How often the dashboard asks /readyz whether the service is degraded or draining. */
const READINESS_POLL_MS = 15_000

const $ = (sel) => document.querySelector(sel)

const state = {
  window: '1h',
  order: 'desc',
  /** The model whose card is open. */
  selected: null,
  range: '6h',
  board: null,
  spark: null,
  providers: null,
  gateways: null,
  realtime: null,
  connection: 'connecting',
  connectionError: null,
  retryInMs: 0,
  /** topic → message of the stream's last `error` event for it, until the topic comes again. */
  storeErrors: new Map(),
  /** GET /readyz's answer: status ready, degraded, draining or unavailable. */
  service: null,
  updatedAt: null
}

// ---------------------------------------------------------------------------------------------
// The read token: from the URL fragment (never sent to the server) or asked for on a 401; kept in
// this tab's session storage.
// ---------------------------------------------------------------------------------------------

function takeTokenFromFragment () {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token')
  if (token === null) return
  sessionStorage.setItem(TOKEN_KEY, token)
  params.delete('token')
  const rest = params.toString()
  history.replaceState(null, '', location.pathname + location.search + (rest === '' ? '' : `#${rest}`))
}

const readToken = () => sessionStorage.getItem(TOKEN_KEY) ?? undefined

function askForToken (rejected) {
  const dialog = $('#token-dialog')
  $('#token-error').hidden = !rejected
  if (!dialog.open) dialog.showModal()
  $('#token-input').focus()
}

$('#token-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  const value = $('#token-input').value.trim()
  if (value === '') return
  sessionStorage.setItem(TOKEN_KEY, value)
  $('#token-input').value = ''
  $('#token-dialog').close()
  connect()
  loadTrend(true)
})

// ---------------------------------------------------------------------------------------------
// DOM helpers: text goes in as text (model ids are data, never markup).
// ---------------------------------------------------------------------------------------------

function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') node.className = v
    else if (k.startsWith('data-')) node.dataset[k.slice(5).replace(/-([a-z])/g, (_m, c) => c.toUpperCase())] = v
    else node.setAttribute(k, v === true ? '' : String(v))
  }
  node.append(...children.filter((c) => c !== null && c !== undefined))
  return node
}

function placeholder (tbody, columns, text) {
  tbody.replaceChildren(el('tr', { class: 'placeholder' }, el('td', { colspan: columns }, text)))
}

/** The health state (healthy, degraded, down, unknown), with uptime and the reason on hover. */
function statusBadge (status, title) {
  return el('span', { class: `status status-${status ?? 'unknown'}`, 'data-k': 'status', title: title ?? '' }, status ?? 'unknown')
}

function healthCell (score, ...after) {
  const kind = fmt.healthClass(score)
  const fill = el('span', { class: `bg-${kind}` })
  fill.style.width = `${Math.max(0, Math.min(100, score ?? 0))}%`
  return el('div', { class: 'health' }, el('div', { class: 'bar' }, fill), el('span', { class: `score ${kind}`, 'data-k': 'health_score' }, fmt.score(score)), ...after)
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

function renderBoard () {
  const tbody = $('#leaderboard tbody')
  $('#leaderboard-hint').textContent = `${fmt.windowLabel(state.window)} · ${state.order === 'desc' ? 'healthiest first' : 'least healthy first'}`
  if (state.board === null) return placeholder(tbody, 7, state.connection === 'live' ? 'Loading…' : 'Waiting for the service…')
  if (state.board.entries.length === 0) {
    return placeholder(tbody, 7, `No traffic in the ${fmt.windowLabel(state.window)} yet. Models appear here as soon as the gateway records chat completions.`)
  }
  const series = state.spark?.series ?? {}
  const sparkTitle = state.spark === null ? '' : `TTFT p50, ${state.spark.resolution === 'minute' ? 'last hour by minute' : 'last 24 hours by hour'}`
  tbody.replaceChildren(...state.board.entries.map((e) => {
    const row = el('tr', { 'data-model': e.model, tabindex: 0, 'aria-selected': String(e.model === state.selected) },
      el('td', { class: 'num' }, String(e.rank)),
      el('td', { class: 'model', title: e.model }, e.model, el('span', { class: 'provider' }, e.provider ?? '')),
      el('td', {}, healthCell(e.health_score, statusBadge(e.status, e.uptime === null || e.uptime === undefined ? '' : `uptime ${fmt.percent(e.uptime)} (rate limits apart)`))),
      el('td', { class: 'num', 'data-k': 'success_rate' }, fmt.percent(e.success_rate)),
      el('td', { class: 'num', 'data-k': 'requests' }, fmt.count(e.requests)),
      el('td', { class: 'num', 'data-k': 'ttft_p50' }, fmt.ms(e.ttft_p50_ms)),
      el('td', {}, sparkline(Object.hasOwn(series, e.model) ? series[e.model] : [], { title: sparkTitle }))
    )
    row.addEventListener('click', () => select(e.model))
    row.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(e.model) } })
    return row
  }))
}

function renderProviders () {
  const tbody = $('#providers tbody')
  if (state.providers === null) return placeholder(tbody, 9, 'Loading…')
  if (state.providers.providers.length === 0) return placeholder(tbody, 9, `No provider had traffic in the ${fmt.windowLabel(state.window)}.`)
  tbody.replaceChildren(...state.providers.providers.map((p) => el('tr', { 'data-provider': p.provider },
    el('td', {}, p.provider),
    el('td', { class: 'num' }, fmt.count(p.models)),
    el('td', { class: 'num', 'data-k': 'requests' }, fmt.count(p.requests)),
    el('td', { class: 'num' }, fmt.percent(p.success_rate)),
    el('td', {}, healthCell(p.health_score)),
    el('td', { class: 'num' }, fmt.count(p.failures)),
    el('td', { class: 'num' }, fmt.ms(p.ttft_ms.p50)),
    el('td', { class: 'num' }, fmt.ms(p.ttft_ms.p95)),
    el('td', { class: 'num' }, fmt.ms(p.total_time_ms.p50))
  )))
}

function fetchHealth (f) {
  if (f.fetches === 0) return { kind: 'none', text: 'no fetches reported' }
  if (f.errors === 0) return { kind: 'good', text: 'all succeeded' }
  const failed = (100 * f.errors) / f.fetches
  return { kind: failed >= 50 ? 'bad' : 'warn', text: `${failed.toFixed(0)} % failed` }
}

function renderGateways () {
  const tbody = $('#gateways tbody')
  if (state.gateways === null) return placeholder(tbody, 10, 'Loading…')
  if (state.gateways.gateways.length === 0) return placeholder(tbody, 10, `No gateway reported traffic in the ${fmt.windowLabel(state.window)}.`)
  tbody.replaceChildren(...state.gateways.gateways.map((g) => {
    const f = g.gateway_fetches
    const h = fetchHealth(f)
    return el('tr', { 'data-gateway': g.id },
      el('td', {}, g.id),
      el('td', { class: 'num' }, fmt.count(g.requests)),
      el('td', { class: 'num' }, fmt.percent(g.success_rate)),
      el('td', {}, el('span', { class: 'fetch-health', 'data-k': 'fetch_health' }, el('span', { class: `dot bg-${h.kind}` }), h.text)),
      el('td', { class: 'num' }, fmt.count(f.fetches)),
      el('td', { class: 'num' }, fmt.count(f.errors)),
      el('td', { class: 'num' }, fmt.count(f.timeouts)),
      el('td', { class: 'num' }, fmt.ms(f.response_time_ms.p50)),
      el('td', { class: 'num' }, fmt.ms(f.response_time_ms.p95)),
      el('td', { class: 'num' }, fmt.count(f.last_model_count))
    )
  }))
}

function renderCard () {
  const card = $('#card')
  card.hidden = state.selected === null
  if (state.selected === null) return
  $('#card-title').textContent = state.selected
  const r = state.realtime
  const entry = state.board?.entries.find((e) => e.model === state.selected)
  const provider = entry?.provider ? `${entry.provider} · ` : ''
  $('#card-subtitle').textContent = r === null ? 'Loading…' : `${r.status ?? 'unknown'}${r.status_reason ? ` (${r.status_reason})` : ''} · ${provider}${fmt.windowLabel(state.window)} · updated ${fmt.clock(Date.parse(r.generated_at))}`
  const figures = r === null
    ? {}
    : {
        health_score: fmt.score(r.health_score),
        requests: fmt.count(r.requests),
        success_rate: fmt.percent(r.success_rate),
        failures: fmt.count(r.failures),
        errors_timeout: fmt.count(r.errors.timeout),
        errors_rate_limit: fmt.count(r.errors.rate_limit),
        errors_network: fmt.count(r.errors.network),
        errors_other: fmt.count(r.errors.other),
        input_tokens: fmt.count(r.input_tokens),
        output_tokens: fmt.count(r.output_tokens),
        ttft_p50: fmt.ms(r.ttft_ms.p50),
        ttft_p95: fmt.ms(r.ttft_ms.p95),
        ttft_p99: fmt.ms(r.ttft_ms.p99),
        total_p50: fmt.ms(r.total_time_ms.p50),
        total_p95: fmt.ms(r.total_time_ms.p95),
        total_p99: fmt.ms(r.total_time_ms.p99),
        tps_p50: fmt.perSecond(r.output_tokens_per_second.p50),
        tps_p95: fmt.perSecond(r.output_tokens_per_second.p95),
        tps_p99: fmt.perSecond(r.output_tokens_per_second.p99)
      }
  for (const node of card.querySelectorAll('[data-k]')) node.textContent = figures[node.dataset.k] ?? fmt.NONE
  const health = card.querySelector('[data-k="health_score"]')
  health.className = `value ${fmt.healthClass(r?.health_score)}`
}

function renderStatus () {
  const status = $('#status')
  status.dataset.state = state.connection
  const text = {
    connecting: 'Connecting…',
    live: state.updatedAt === null ? 'Live' : `Live · updated ${fmt.clock(state.updatedAt)}`,
    reconnecting: 'Reconnecting…',
    offline: 'Service unreachable',
    unauthorized: 'Read token required'
  }[state.connection]
  $('#status-text').textContent = text

  const banner = $('#banner')
  let message = null
  let kind = 'error'
  if (state.connection === 'offline' || state.connection === 'reconnecting') {
    const since = state.updatedAt === null ? '' : ` Showing the figures of ${fmt.clock(state.updatedAt)}.`
    const why = state.connection === 'offline' ? 'The metrics service cannot be reached' : `The metrics service answered: ${state.connectionError?.message ?? 'an error'}`
    message = `${why}. Retrying in ${Math.round(state.retryInMs / 1000)} s.${since}`
  } else if (state.storeErrors.size > 0) {
    message = `${[...state.storeErrors.values()][0]} The figures shown may be out of date.`
    kind = 'warn'
  } else if (state.service?.status === 'degraded') {
    message = `Service degraded: the store refused ${state.service.set_aside_groups} group(s) of recorded figures in the last day (set aside and logged); everything else is being recorded.`
    kind = 'warn'
  } else if (state.service?.status === 'draining') {
    message = 'The service is shutting down; reconnecting to another instance when it is gone.'
    kind = 'warn'
  }
  banner.hidden = message === null
  banner.textContent = message ?? ''
  banner.dataset.kind = kind
  const stale = state.connection !== 'live'
  for (const panel of document.querySelectorAll('.panel')) panel.dataset.stale = String(stale && state.updatedAt !== null)
}

// ---------------------------------------------------------------------------------------------
// The model card's trend
// ---------------------------------------------------------------------------------------------

let chart = null
let trendLoadedAt = 0
let trendKey = null

async function loadTrend (force) {
  if (state.selected === null) return
  const key = `${state.selected}\u0000${state.range}`
  if (!force && key === trendKey && Date.now() - trendLoadedAt < TREND_REFRESH_MS) return
  trendKey = key
  trendLoadedAt = Date.now()
  const [hours, resolution] = state.range === '6h' ? [6, 'hour'] : [2, 'minute']
  const url = `api/metrics/trends?type=model&id=${encodeURIComponent(state.selected)}&metric=ttft&hours=${hours}&resolution=${resolution}`
  try {
    const [p50, p95] = await Promise.all([getJson(`${url}&stat=p50`, readToken()), getJson(`${url}&stat=p95`, readToken())])
    if (trendKey !== key || state.selected === null) return
    chart ??= new TrendChart($('#ttft-chart'))
    chart.set(p50.points, p95.points)
    $('#chart-empty').hidden = p50.points.some((p) => p.value !== null)
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) askForToken(readToken() !== undefined)
    const empty = $('#chart-empty')
    empty.textContent = `The trend could not be loaded: ${err.message}`
    empty.hidden = false
  }
}

// ---------------------------------------------------------------------------------------------
// The stream
// ---------------------------------------------------------------------------------------------

let stop = () => {}

function onEvent (name, data) {
  state.updatedAt = Date.now()
  if (name === 'error') {
    state.storeErrors.set(data.topic, data.message)
    renderStatus()
    return
  }
  state.storeErrors.delete(name)
  if (name === 'leaderboard') {
    state.board = data
    renderBoard()
    renderCard()
  } else if (name === 'sparklines') {
    state.spark = data
    renderBoard()
  } else if (name === 'providers') {
    state.providers = data
    renderProviders()
  } else if (name === 'gateways') {
    state.gateways = data
    renderGateways()
  } else if (name === 'realtime' && data.id === state.selected) {
    const changed = state.realtime?.requests !== data.requests
    state.realtime = data
    renderCard()
    if (changed) loadTrend(false)
  }
  renderStatus()
}

function onState ({ state: connection, error, retryInMs }) {
  state.connection = connection
  state.connectionError = error ?? null
  state.retryInMs = retryInMs ?? 0
  if (connection === 'unauthorized') askForToken(readToken() !== undefined)
  renderStatus()
  renderBoard()
}

function connect () {
  stop()
  const q = new URLSearchParams({ window: state.window, order: state.order, limit: String(LEADERBOARD_SIZE) })
  for (const topic of ['leaderboard', 'sparklines', 'providers', 'gateways']) q.append('topic', topic)
  if (state.selected !== null) {
    q.append('topic', 'realtime')
    q.set('type', 'model')
    q.set('id', state.selected)
  }
  state.connection = state.connection === 'live' ? 'live' : 'connecting'
  stop = follow({ url: `api/metrics/stream?${q}`, token: readToken(), onEvent, onState })
}

// ---------------------------------------------------------------------------------------------
// Controls
// ---------------------------------------------------------------------------------------------

function press (group, attr, value) {
  for (const b of group.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset[attr] === value))
}

function select (model) {
  if (state.selected === model) return
  state.selected = model
  state.realtime = null
  renderBoard()
  renderCard()
  connect()
  loadTrend(true)
}

$('#card-close').addEventListener('click', () => {
  state.selected = null
  state.realtime = null
  chart?.destroy()
  chart = null
  renderBoard()
  renderCard()
  connect()
})

$('#window-select').addEventListener('click', (ev) => {
  const w = ev.target.closest('button')?.dataset.window
  if (w === undefined || w === state.window) return
  state.window = w
  press($('#window-select'), 'window', w)
  Object.assign(state, { board: null, spark: null, providers: null, gateways: null, realtime: null })
  renderBoard()
  renderProviders()
  renderGateways()
  renderCard()
  connect()
})

$('#order-select').addEventListener('click', (ev) => {
  const o = ev.target.closest('button')?.dataset.order
  if (o === undefined || o === state.order) return
  state.order = o
  press($('#order-select'), 'order', o)
  state.board = null
  state.spark = null
  renderBoard()
  connect()
})

$('#range-select').addEventListener('click', (ev) => {
  const r = ev.target.closest('button')?.dataset.range
  if (r === undefined || r === state.range) return
  state.range = r
  press($('#range-select'), 'range', r)
  loadTrend(true)
})

/** Readiness says whether the service is degraded (a group set aside) or draining: polled, shown in the banner. */
async function pollReadiness () {
  try {
    const res = await fetch('readyz', { cache: 'no-store' })
    state.service = await res.json()
  } catch {
    state.service = null
  }
  renderStatus()
}

takeTokenFromFragment()
renderBoard()
renderStatus()
connect()
pollReadiness()
setInterval(pollReadiness, READINESS_POLL_MS)
