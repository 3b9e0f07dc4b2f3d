import type { WindowName } from '../metrics/buckets.js'

/**
 * The read-cache key of each kind of answer, with its parameters in the order of the key. The GET
 * routes and the live stream build them here alike: a stream and a poll of one answer name it the
 * same, or one would compute again what the other has just cached.
 */
export const cacheKeys = {
  realtime: (type: string, window: WindowName, id: string): string => `realtime\u0000${type}\u0000${window}\u0000${id}`,
  /** The leaderboard computed for its normalised parameters (read/leaderboard.ts leaderboardComputation). */
  leaderboard: (window: WindowName, order: string, limit: number, minRequests: number): string => `leaderboard\u0000${window}\u0000${order}\u0000${limit}\u0000${minRequests}`,
  /** The stream's sparklines of the leaderboard of these (normalised) parameters. */
  sparklines: (window: WindowName, order: string, limit: number, minRequests: number): string =>
    `sparklines\u0000${cacheKeys.leaderboard(window, order, limit, minRequests)}`,
  providers: (window: WindowName, provider: string | undefined): string => `providers\u0000${window}\u0000${provider ?? ''}`,
  /** Trends computed over `hours` (a tier, read/trends.ts trendsComputation). */
  trends: (type: string, id: string, metric: string, stat: string | null, hours: number, resolution: string): string =>
    `trends\u0000${type}\u0000${id}\u0000${metric}\u0000${stat ?? ''}\u0000${hours}\u0000${resolution}`,
  /** A status history computed over `hours` (a tier within the retention, read/params.ts hoursTier). */
  statusHistory: (type: string, hours: number, id: string): string => `history\u0000${type}\u0000${hours}\u0000${id}`,
  /** A gateway's catalog computed over `hours` with `changes` changes (tiers, read/params.ts). */
  catalog: (hours: number, changes: number, gateway: string): string => `catalog\u0000${hours}\u0000${changes}\u0000${gateway}`,
  compare: (window: WindowName, model: string): string => `compare\u0000${window}\u0000${model}`,
  route: (by: string, window: WindowName, model: string): string => `route\u0000${by}\u0000${window}\u0000${model}`,
  /** The GenAI export's rows of the `topModels` busiest models (GET /metrics). */
  genAi: (topModels: number): string => `genai\u0000${topModels}`
}
