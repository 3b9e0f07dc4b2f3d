import { bucketRange, coverMinutes, WINDOWS, type Bucket, type Resolution, type WindowName } from '../metrics/buckets.js'

export interface ResolvedWindow {
  buckets: Bucket[]
  /**
   * The buckets to merge for an entity's figures over the window (stats and distributions): the
   * window's buckets, with each complete 10-minute block of a window by minute as one bucket.
   */
  cover: Bucket[]
  info: { from: string, to: string, seconds: number }
}

/** What to merge for an entity's figures over `buckets` of resolution `res` (see coverMinutes). */
export function coverOf (res: Resolution, buckets: Bucket[]): Bucket[] {
  return res === 'minute' ? coverMinutes(buckets) : buckets
}

/** The buckets a window counts at `now`: the current one and the N−1 before it (docs/api.md). */
export function resolveWindow (name: WindowName, now: number): ResolvedWindow {
  const spec = WINDOWS[name]
  const buckets = bucketRange(spec.res, now, spec.buckets)
  return {
    buckets,
    cover: coverOf(spec.res, buckets),
    info: { from: new Date(buckets[0]!.start).toISOString(), to: new Date(now).toISOString(), seconds: spec.seconds }
  }
}
