import { WINDOWS, type WindowName } from '../metrics/buckets.js'
import type { EntityType } from '../metrics/events.js'
import type { Stats } from '../metrics/histogram.js'
import { decodeStats, errorsOf, num } from '../read/decode.js'
import { entityRead } from '../read/realtime.js'
import { resolveWindow } from '../read/window.js'
import type { Family } from '../store/keys.js'
import type { Fields, MetricsStore } from '../store/types.js'

export interface BucketFigures {
  bucket: string
  requests: number
  successes: number
  errors: { timeout: number, rate_limit: number, network: number, other: number }
  ttft_ms: Stats
  total_time_ms: Stats
  output_tokens_per_second: Stats
}

export interface Inspection {
  type: EntityType
  id: string
  window: WindowName
  /** Every bucket of the window, oldest first (empty ones included). */
  buckets: BucketFigures[]
  /** The window as the realtime route merges it (complete 10-minute blocks as one bucket). */
  total: BucketFigures
}

const FAMILIES: Family[] = ['stats', 'ttft', 'total', 'tps']

function figures (bucket: string, [stats, ttft, total, tps]: Fields[]): BucketFigures {
  return {
    bucket,
    requests: num(stats!, 'n'),
    successes: num(stats!, 'ok'),
    errors: errorsOf(stats!),
    ttft_ms: decodeStats(stats!, 'ttft', ttft!),
    total_time_ms: decodeStats(stats!, 'total', total!),
    output_tokens_per_second: decodeStats(stats!, 'tps', tps!)
  }
}

/** One entity's stored buckets over a window, each decoded by the read path's own decoding, in one read. */
export async function inspect (store: Pick<MetricsStore, 'read'>, type: EntityType, id: string, window: WindowName, now = Date.now()): Promise<Inspection> {
  const w = resolveWindow(window, now)
  const reads = [...w.buckets.map((b) => entityRead(type, id, FAMILIES, [b])), entityRead(type, id, FAMILIES, w.cover)]
  const merged = await store.read(reads)
  const buckets = w.buckets.map((b, i) => figures(b.name, merged[i]!))
  return { type, id, window, buckets, total: figures(`${WINDOWS[window].seconds / 60} min`, merged[w.buckets.length]!) }
}

const ms = (v: number | null): string => v === null ? '-' : String(v)

function line (f: BucketFigures): string {
  const e = f.errors
  const t = f.ttft_ms
  const d = f.total_time_ms
  return `${f.bucket.padEnd(18)} ${String(f.requests).padStart(8)} ${String(f.successes).padStart(8)} ${`${e.timeout}/${e.rate_limit}/${e.network}/${e.other}`.padStart(14)}` +
    `  ${[t.p50, t.p90, t.p99].map(ms).join('/').padStart(22)}  ${[d.p50, d.p90, d.p99].map(ms).join('/').padStart(24)}  ${ms(f.output_tokens_per_second.p50).padStart(8)}`
}

/** The inspection as a table: one line per bucket with requests, then the window's total. */
export function formatInspection (x: Inspection): string[] {
  const lines = [`${x.type} ${x.id}, window ${x.window} (times in ms; errors timeout/rate_limit/network/other)`,
    `${'bucket'.padEnd(18)} ${'requests'.padStart(8)} ${'ok'.padStart(8)} ${'errors'.padStart(14)}  ${'ttft p50/p90/p99'.padStart(22)}  ${'total p50/p90/p99'.padStart(24)}  ${'tps p50'.padStart(8)}`]
  const active = x.buckets.filter((b) => b.requests > 0)
  for (const b of active) lines.push(line(b))
  if (active.length < x.buckets.length) lines.push(`(${x.buckets.length - active.length} of ${x.buckets.length} buckets empty)`)
  lines.push(line({ ...x.total, bucket: 'window' }))
  return lines
}
