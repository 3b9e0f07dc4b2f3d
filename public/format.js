// Number formatting shared by the dashboard's tables and cards. Fixed to en-US so that every
// browser shows the same digits.

export const NONE = '—'

const WINDOW_LABELS = { '5m': 'last 5 minutes', '15m': 'last 15 minutes', '1h': 'last hour', '6h': 'last 6 hours', '24h': 'last 24 hours' }

function decimal (v) {
  return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')
}

/** Milliseconds: one decimal below 10 ms, whole numbers beyond. */
export function ms (v) {
  return v === null || v === undefined ? NONE : `${decimal(v)} ms`
}

export function perSecond (v) {
  return v === null || v === undefined ? NONE : decimal(v)
}

export function percent (v) {
  return v === null || v === undefined ? NONE : `${v.toFixed(1)} %`
}

export function count (v) {
  return v === null || v === undefined ? NONE : v.toLocaleString('en-US')
}

export function score (v) {
  return v === null || v === undefined ? NONE : v.toFixed(1)
}

/** good / warn / bad / none, for a health score (the Wilson lower bound of the success rate). */
export function healthClass (v) {
  if (v === null || v === undefined) return 'none'
  return v >= 90 ? 'good' : v >= 60 ? 'warn' : 'bad'
}

export function windowLabel (w) {
  return WINDOW_LABELS[w] ?? w
}

export function clock (ms) {
  return new Date(ms).toLocaleTimeString('en-GB')
}
