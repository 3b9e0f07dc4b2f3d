/**
 * UTC time buckets. Hour buckets are named `YYYY-MM-DD-HH`, minute buckets `YYYY-MM-DD-HH-mm`,
 * 10-minute buckets (aligned on UTC multiples of 10 minutes) `YYYY-MM-DD-HH-mm+10m`, so a bucket's
 * name alone says its resolution and its start.
 */
export type Resolution = 'hour' | 'tenmin' | 'minute'

export const MINUTE_MS = 60_000
export const TEN_MINUTES_MS = 600_000
export const HOUR_MS = 3_600_000
/** Minute (and 10-minute) buckets are kept this long after they end, whatever the hour retention (docs/api.md). */
export const MINUTE_RETENTION_MS = 2 * HOUR_MS
/**
 * Minute buckets of model × gateway and model × provider pairs serve windows of at most an hour
 * (the comparison, the routing hint, the state's 34 minutes): they are kept an hour after they end.
 */
export const PAIR_MINUTE_RETENTION_MS = HOUR_MS

export function resolutionMs (res: Resolution): number {
  return res === 'hour' ? HOUR_MS : res === 'tenmin' ? TEN_MINUTES_MS : MINUTE_MS
}

/** Start (epoch ms) of the bucket holding `ms`. A time exactly on a boundary starts a new bucket. */
export function bucketStart (res: Resolution, ms: number): number {
  const size = resolutionMs(res)
  return Math.floor(ms / size) * size
}

function pad (n: number): string {
  return n < 10 ? '0' + n : String(n)
}

/** Name of the bucket starting at (or holding) `ms`. */
export function bucketName (res: Resolution, ms: number): string {
  const d = new Date(bucketStart(res, ms))
  const hour = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}-${pad(d.getUTCHours())}`
  if (res === 'hour') return hour
  return res === 'tenmin' ? `${hour}-${pad(d.getUTCMinutes())}+10m` : `${hour}-${pad(d.getUTCMinutes())}`
}

export interface Bucket { name: string, start: number }

/** Most buckets one range may hold: a year of hours, a week of minutes. */
export const MAX_RANGE = 10_080

/** The `count` buckets ending with the one holding `endMs`, oldest first (at most MAX_RANGE). */
export function bucketRange (res: Resolution, endMs: number, count: number): Bucket[] {
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_RANGE) throw new RangeError(`bucket count ${count} is outside 0..${MAX_RANGE}`)
  const size = resolutionMs(res)
  const last = bucketStart(res, endMs)
  const out: Bucket[] = []
  for (let i = count - 1; i >= 0; i--) {
    const start = last - i * size
    out.push({ name: bucketName(res, start), start })
  }
  return out
}

/**
 * The buckets to merge instead of the consecutive minute buckets `minutes` (oldest first), for the
 * same figures with fewer keys: every complete aligned 10-minute block among them as its 10-minute
 * bucket, the minutes at the edges as they are. Exact, since a 10-minute bucket holds the sum of its
 * minutes (histograms merge by adding bins).
 */
export function coverMinutes (minutes: readonly Bucket[]): Bucket[] {
  const out: Bucket[] = []
  for (let i = 0; i < minutes.length;) {
    const b = minutes[i]!
    if (b.start % TEN_MINUTES_MS === 0 && minutes[i + 9]?.start === b.start + 9 * MINUTE_MS) {
      out.push({ name: bucketName('tenmin', b.start), start: b.start })
      i += 10
    } else {
      out.push(b)
      i++
    }
  }
  return out
}

/**
 * When a bucket's keys expire (epoch ms): its end plus the retention of its resolution.
 * Absolute, so that applying the same write twice sets the same TTL.
 */
export function bucketExpiry (res: Resolution, start: number, retentionHours: number): number {
  const keep = res === 'hour' ? retentionHours * HOUR_MS : MINUTE_RETENTION_MS
  return start + resolutionMs(res) + keep
}

export type WindowName = '5m' | '15m' | '1h' | '6h' | '24h'

export interface WindowSpec { res: Resolution, buckets: number, seconds: number }

/**
 * Windows up to 1h are answered from minute buckets (their complete 10-minute blocks from 10-minute
 * buckets, see coverMinutes), longer ones from hour buckets (docs/api.md).
 */
export const WINDOWS: Record<WindowName, WindowSpec> = {
  '5m': { res: 'minute', buckets: 5, seconds: 300 },
  '15m': { res: 'minute', buckets: 15, seconds: 900 },
  '1h': { res: 'minute', buckets: 60, seconds: 3600 },
  '6h': { res: 'hour', buckets: 6, seconds: 21_600 },
  '24h': { res: 'hour', buckets: 24, seconds: 86_400 }
}

export const WINDOW_NAMES = Object.keys(WINDOWS) as WindowName[]
