/**
 * How the components write figures: durations in ms or s, rates in %, counts grouped by thousands,
 * in the reader's locale (or the one given). A figure the service has not got (null: no samples)
 * is a dash.
 */
import type { HealthStatus, MetricsWindow } from './hooks.js'

/** What a missing figure looks like. */
export const NO_VALUE = '—'

const number = (locale: string | undefined, options: Intl.NumberFormatOptions): Intl.NumberFormat => new Intl.NumberFormat(locale, options)

/** 4.2 ms, 420 ms, 3.15 s, 42.5 s. */
export function formatMs (ms: number | null | undefined, locale?: string): string {
  if (ms === null || ms === undefined) return NO_VALUE
  if (ms < 1000) return `${number(locale, { maximumFractionDigits: ms < 10 ? 1 : 0 }).format(ms)} ms`
  return `${number(locale, { maximumFractionDigits: ms < 10_000 ? 2 : 1 }).format(ms / 1000)} s`
}

/** A percentage as the service gives it (0..100): 99.5%. */
export function formatPercent (pct: number | null | undefined, locale?: string): string {
  if (pct === null || pct === undefined) return NO_VALUE
  return number(locale, { style: 'percent', maximumFractionDigits: 1 }).format(pct / 100)
}

/** 1,234,567. */
export function formatCount (n: number | null | undefined, locale?: string): string {
  if (n === null || n === undefined) return NO_VALUE
  return number(locale, { maximumFractionDigits: 0 }).format(n)
}

/** A health score (0..100) with one decimal: 87.3. */
export function formatScore (score: number | null | undefined, locale?: string): string {
  if (score === null || score === undefined) return NO_VALUE
  return number(locale, { maximumFractionDigits: 1 }).format(score)
}

const STATUS: Record<HealthStatus, string> = { healthy: 'Healthy', degraded: 'Degraded', down: 'Down', unknown: 'Unknown' }

/** The health state as a word, so that it never rests on colour alone. */
export function formatStatus (status: HealthStatus): string {
  return STATUS[status]
}

const WINDOW: Record<MetricsWindow, string> = { '5m': 'last 5 minutes', '15m': 'last 15 minutes', '1h': 'last hour', '6h': 'last 6 hours', '24h': 'last 24 hours' }

/** "last hour" for 1h; the service's default window when none is given. */
export function formatWindow (window: MetricsWindow | undefined): string {
  return WINDOW[window ?? '1h']
}
