import { bucketRange, WINDOWS, type Bucket, type WindowName } from '../metrics/buckets.js'

export interface ResolvedWindow {
  buckets: Bucket[]
  info: { from: string, to: string, seconds: number }
}

/** The buckets a window counts at `now`: the current one and the N−1 before it (API.md). */
export function resolveWindow (name: WindowName, now: number): ResolvedWindow {
  const spec = WINDOWS[name]
  const buckets = bucketRange(spec.res, now, spec.buckets)
  return {
    buckets,
    info: { from: new Date(buckets[0]!.start).toISOString(), to: new Date(now).toISOString(), seconds: spec.seconds }
  }
}
