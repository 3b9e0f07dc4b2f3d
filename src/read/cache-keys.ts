import type { WindowName } from '../metrics/buckets.js'

/**
 * Read-cache keys of the answers that the GET routes and the live stream share: both must name an
 * answer alike, or the stream would compute again what a poll has just cached (and the other way).
 */
export const cacheKeys = {
  realtime: (type: string, window: WindowName, id: string): string => `realtime\u0000${type}\u0000${window}\u0000${id}`,
  leaderboard: (window: WindowName, order: string, limit: number, minRequests: number): string => `leaderboard\u0000${window}\u0000${order}\u0000${limit}\u0000${minRequests}`,
  providers: (window: WindowName, provider: string | undefined): string => `providers\u0000${window}\u0000${provider ?? ''}`,
  trends: (type: string, id: string, metric: string, stat: string | null, hours: number, resolution: string): string =>
    `trends\u0000${type}\u0000${id}\u0000${metric}\u0000${stat ?? ''}\u0000${hours}\u0000${resolution}`
}
