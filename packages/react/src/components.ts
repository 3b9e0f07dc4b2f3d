/**
 * Ready-made views on the hooks: plain semantic HTML with stable class names (BEM-like, prefixed
 * `lgm-`) and no styles of their own, so that any stylesheet can take them over. Each shows one of
 * four states, named on its root: loading, error (nothing to show, the message instead), empty (no
 * requests in the window) and ready; `--stale` is added while the figures shown are the last good
 * ones and the latest update failed. Written without JSX, so that the package builds with no JSX
 * setting in anyone's compiler.
 */
import { createElement as h, useId, type ReactElement, type ReactNode } from 'react'
import { formatCount, formatMs, formatPercent, formatScore, formatStatus, formatWindow } from './format.js'
import { useLeaderboard, useRealtimeMetrics, type MetricsWindow, type RealtimeMetrics } from './hooks.js'
import type { LiveState } from './live.js'

export type HeadingLevel = 2 | 3 | 4 | 5 | 6

interface ViewProps {
  /** Where the service listens, e.g. https://metrics.example.com; default '': the page's own origin. */
  baseUrl?: string | undefined
  /** One of METRICS_READ_TOKEN, when the service has one. */
  token?: string | undefined
  /** Window of the figures; the service's default (1h) when left out. */
  window?: MetricsWindow | undefined
  /** While the stream is unavailable: how often the service is polled (and the stream tried again), in ms. Default 5000. */
  pollingInterval?: number | undefined
  /** Added to the root element's class names. */
  className?: string | undefined
  /** The heading's level: h3 by default. */
  headingLevel?: HeadingLevel | undefined
  /** The locale of numbers and times; the reader's by default. */
  locale?: string | undefined
}

export interface RealtimeMetricsCardProps extends ViewProps {
  /** Default model. */
  type?: 'model' | 'provider' | 'gateway' | undefined
  id: string
  /** The heading; the id by default. */
  title?: ReactNode | undefined
}

export interface HealthLeaderboardProps extends ViewProps {
  /** desc: the healthiest first (default); asc: the least healthy first. */
  order?: 'desc' | 'asc' | undefined
  /** Rows at most, 1..100; default 10. */
  limit?: number | undefined
  /** Only models with at least this many requests in the window (the service rounds it up to 1, 2 or 5 × a power of ten); default 1. */
  minRequests?: number | undefined
  /** The heading; "Model health" by default. */
  title?: ReactNode | undefined
}

type View = 'loading' | 'error' | 'empty' | 'ready'

function viewOf<T> (state: LiveState<T>, empty: (data: T) => boolean): View {
  if (state.data !== undefined) return empty(state.data) ? 'empty' : 'ready'
  return state.error === undefined ? 'loading' : 'error'
}

function classNames (...names: Array<string | false | undefined>): string {
  return names.filter((n) => n !== undefined && n !== false && n !== '').join(' ')
}

/** The line that says what is going on, when something is: loading, failed, or out of date. */
function notice<T> (block: string, view: View, state: LiveState<T>, locale: string | undefined): ReactElement | null {
  if (view === 'loading') return h('p', { className: `${block}__message`, role: 'status' }, 'Loading…')
  if (view === 'error') return h('p', { className: `${block}__message ${block}__error`, role: 'alert' }, `Could not load the figures: ${state.error!.message}`)
  if (!state.stale) return null
  const at = new Date(state.updatedAt!).toLocaleTimeString(locale)
  return h('p', { className: `${block}__stale`, role: 'status' }, `Not up to date (${state.error!.message}); showing the figures of ${at}.`)
}

function heading (level: HeadingLevel | undefined, id: string, className: string, title: ReactNode): ReactElement {
  return h(`h${level ?? 3}`, { id, className }, title)
}

function statusBadge (status: RealtimeMetrics['status']): ReactElement {
  return h('span', { className: `lgm-status lgm-status--${status}` }, formatStatus(status))
}

const TYPE_LABEL = { model: 'Model', provider: 'Provider', gateway: 'Gateway' }
const ERROR_LABEL = { timeout: 'timeout', rate_limit: 'rate limit', network: 'network', other: 'other' }

/** Failures, with their kinds: "3 (timeout 2, rate limit 1)". */
function failures (d: RealtimeMetrics, locale: string | undefined): string {
  const kinds = (Object.keys(ERROR_LABEL) as Array<keyof typeof ERROR_LABEL>)
    .filter((k) => d.errors[k] > 0)
    .map((k) => `${ERROR_LABEL[k]} ${formatCount(d.errors[k], locale)}`)
  const total = formatCount(d.failures, locale)
  return kinds.length === 0 ? total : `${total} (${kinds.join(', ')})`
}

function figure (key: string, label: string, value: string): ReactElement {
  return h('div', { key, className: `lgm-card__figure lgm-card__figure--${key}` }, h('dt', null, label), h('dd', null, value))
}

/**
 * The figures of one model, provider or gateway: status, requests, success rate, uptime, health
 * score, TTFT p50/p90, total time p50, failures by kind and token totals, kept up to date.
 */
export function RealtimeMetricsCard (props: RealtimeMetricsCardProps): ReactElement {
  const { type = 'model', id, window, baseUrl = '', token, pollingInterval, className, headingLevel, title, locale } = props
  const state = useRealtimeMetrics({ baseUrl, token, type, id, window, pollIntervalMs: pollingInterval })
  const headingId = useId()
  const view = viewOf(state, (d) => d.requests === 0)
  const d = state.data
  // Token totals: in every answer of the service, though older generated types lack them.
  const tokens = d as (RealtimeMetrics & { input_tokens?: number, output_tokens?: number }) | undefined
  return h('section', { className: classNames('lgm-card', `lgm-card--${view}`, state.stale && 'lgm-card--stale', className), 'aria-labelledby': headingId, 'aria-busy': view === 'loading' },
    heading(headingLevel, headingId, 'lgm-card__title', title ?? id),
    h('p', { className: 'lgm-card__subtitle' }, `${TYPE_LABEL[type]} · ${formatWindow(window)}`),
    notice('lgm-card', view, state, locale),
    d !== undefined && h('p', { className: 'lgm-card__status' },
      'Status: ', h('strong', { role: 'status' }, statusBadge(d.status)),
      h('span', { className: 'lgm-card__reason' }, ` (${d.status_reason})`)),
    view === 'empty' && h('p', { className: 'lgm-card__message lgm-card__empty' }, `No requests in the ${formatWindow(window)}.`),
    view === 'ready' && h('dl', { className: 'lgm-card__figures' },
      figure('requests', 'Requests', formatCount(d!.requests, locale)),
      figure('success-rate', 'Success rate', formatPercent(d!.success_rate, locale)),
      figure('uptime', 'Uptime', formatPercent(d!.uptime, locale)),
      figure('health-score', 'Health score', formatScore(d!.health_score, locale)),
      figure('ttft-p50', 'TTFT p50', formatMs(d!.ttft_ms.p50, locale)),
      figure('ttft-p90', 'TTFT p90', formatMs(d!.ttft_ms.p90, locale)),
      figure('total-time-p50', 'Total time p50', formatMs(d!.total_time_ms.p50, locale)),
      figure('failures', 'Failures', failures(d!, locale)),
      figure('tokens', 'Tokens in / out', `${formatCount(tokens!.input_tokens, locale)} / ${formatCount(tokens!.output_tokens, locale)}`)
    )
  )
}

const COLUMNS = ['Rank', 'Model', 'Status', 'Health score', 'Uptime', 'Success rate', 'Requests', 'TTFT p50', 'Total time p50']

/**
 * The leaderboard as a table (a caption, a header per column, a row header per model), kept up to
 * date: the healthiest models first, or the least healthy with order="asc".
 */
export function HealthLeaderboard (props: HealthLeaderboardProps): ReactElement {
  const { order = 'desc', limit, minRequests, window, baseUrl = '', token, pollingInterval, className, headingLevel, title = 'Model health', locale } = props
  const state = useLeaderboard({ baseUrl, token, window, order, limit, minRequests, pollIntervalMs: pollingInterval })
  const headingId = useId()
  const view = viewOf(state, (d) => d.entries.length === 0)
  const d = state.data
  const threshold = d !== undefined && d.min_requests > 1 ? `at least ${formatCount(d.min_requests, locale)} requests` : undefined
  const cell = (value: string): ReactElement => h('td', { className: 'lgm-leaderboard__number' }, value)
  return h('section', { className: classNames('lgm-leaderboard', `lgm-leaderboard--${view}`, state.stale && 'lgm-leaderboard--stale', className), 'aria-labelledby': headingId, 'aria-busy': view === 'loading' },
    heading(headingLevel, headingId, 'lgm-leaderboard__title', title),
    notice('lgm-leaderboard', view, state, locale),
    view === 'empty' && h('p', { className: 'lgm-leaderboard__message lgm-leaderboard__empty' }, `No model had ${threshold ?? 'requests'} in the ${formatWindow(window)}.`),
    view === 'ready' && h('table', { className: 'lgm-leaderboard__table' },
      h('caption', null, `${order === 'asc' ? 'Least healthy first' : 'Healthiest first'}, ${formatWindow(window)}${threshold === undefined ? '' : `, ${threshold}`}`),
      h('thead', null, h('tr', null, COLUMNS.map((c) => h('th', { key: c, scope: 'col' }, c)))),
      h('tbody', null, d!.entries.map((e) => h('tr', { key: e.model, className: `lgm-leaderboard__row lgm-leaderboard__row--${e.status}` },
        cell(formatCount(e.rank, locale)),
        h('th', { scope: 'row', className: 'lgm-leaderboard__model' }, e.model),
        h('td', null, statusBadge(e.status)),
        cell(formatScore(e.health_score, locale)),
        cell(formatPercent(e.uptime, locale)),
        cell(formatPercent(e.success_rate, locale)),
        cell(formatCount(e.requests, locale)),
        cell(formatMs(e.ttft_p50_ms, locale)),
        cell(formatMs(e.total_time_p50_ms, locale))
      )))
    )
  )
}
