import type { HealthThresholds } from '../metrics/status.js'
import type { FastifyBaseLogger } from 'fastify'
import { bucketRange, resolutionMs, WINDOWS, type WindowName } from '../metrics/buckets.js'
import type { EntityType } from '../metrics/events.js'
import type { Order } from '../metrics/score.js'
import type { ReadCache } from '../read/cache.js'
import type { StoreReader } from '../read/budget.js'
import { readIndex, RESERVED_ID_PREFIX } from '../read/activity.js'
import { leaderboardComputation, narrowLeaderboard, readLeaderboard, type LeaderboardAnswer } from '../read/leaderboard.js'
import { readProviderSummary } from '../read/provider-summary.js'
import { readRealtime } from '../read/realtime.js'
import { storeLoad } from '../read/store-load.js'
import { readManyTrends } from '../read/trends.js'
import { resolveWindow, type ResolvedWindow } from '../read/window.js'
import type { Sparklines, StreamTopic } from '../schemas/stream.js'
import type { Fields } from '../store/types.js'
import type { Topic } from './hub.js'
import { cacheKeys } from '../read/cache-keys.js'

/** Gateways shown by the `gateways` topic at most, the busiest first. */
export const GATEWAYS_SHOWN = 20

export interface TopicQuery {
  topics: StreamTopic[]
  window: WindowName
  order: Order
  limit: number
  minRequests: number
  type: EntityType
  /** Required with the realtime topic (the route checks). */
  id: string
}

export interface TopicDeps {
  /** The store within the read budget: a stream's computations count against it like any read. */
  store: StoreReader
  readCache: ReadCache
  log: FastifyBaseLogger
  /** The configured thresholds: the same as the GET routes', whose cache entries a stream shares. */
  health: HealthThresholds
}

/** Sparklines: the last hour by minute for the windows by minute (up to 1h), the last 24 hours by hour beyond. */
function sparkRange (window: WindowName): { resolution: 'minute' | 'hour', hours: number, points: number } {
  return WINDOWS[window].res === 'minute' ? { resolution: 'minute', hours: 1, points: 60 } : { resolution: 'hour', hours: 24, points: 24 }
}

/** Gateways with chat traffic in the window (from the activity index), busiest first. */
async function activeGateways (store: StoreReader, w: ResolvedWindow): Promise<string[]> {
  const [requests] = await readIndex(store, 'gateway', ['requests'], w.buckets) as [Fields]
  return Object.entries(requests)
    .filter(([id]) => !id.startsWith(RESERVED_ID_PREFIX))
    .map(([id, n]) => ({ id, n: Number(n) }))
    .sort((a, b) => b.n - a.n || a.id.localeCompare(b.id))
    .map((g) => g.id)
}

/** The sparklines of a leaderboard computed for its tier, in its order: a view keeps the first `limit`. */
interface SparkComputation { head: Omit<Sparklines, 'series'>, series: Array<[string, Array<number | null>]> }

/**
 * The topics a stream asked for. Every load goes through the read cache with the key the matching
 * GET route uses, so a stream and a poll of the same answer share one computation; the leaderboard
 * (and its sparklines) is computed for its normalised parameters, like the route's, and each stream
 * is sent the first `limit` entries of it.
 */
export function streamTopics (q: TopicQuery, deps: TopicDeps): Topic[] {
  const { store, readCache, log, health } = deps
  const cached = async <T extends object>(key: string, load: () => Promise<T>): Promise<T> =>
    (await readCache.get(key, storeLoad(log, load))).value
  const c = leaderboardComputation({ window: q.window, order: q.order, limit: q.limit, minRequests: q.minRequests })
  const boardKey = cacheKeys.leaderboard(c.window, c.order, c.limit, c.minRequests)
  const sparklinesKey = cacheKeys.sparklines(c.window, c.order, c.limit, c.minRequests)
  const leaderboard = async (): Promise<LeaderboardAnswer> => await cached(boardKey, async () =>
    await readLeaderboard(store, c, Date.now(), health))
  const realtime = async (type: EntityType, id: string) => await cached(cacheKeys.realtime(type, q.window, id), async () =>
    await readRealtime(store, type, id, q.window, Date.now(), health))
  const limit = String(q.limit)

  const all: Record<StreamTopic, () => Topic> = {
    leaderboard: () => ({
      event: 'leaderboard',
      key: boardKey,
      load: leaderboard,
      view: { key: limit, project: (v) => narrowLeaderboard(v as LeaderboardAnswer, q.limit) }
    }),
    sparklines: () => ({
      event: 'sparklines',
      key: sparklinesKey,
      // One read for every model's trend (one turn of the read budget), cached with the leaderboard it follows.
      load: async (): Promise<SparkComputation> => await cached(sparklinesKey, async () => {
        const { resolution, hours, points } = sparkRange(q.window)
        const board = await leaderboard()
        const now = Date.now()
        const trends = await readManyTrends(store, board.entries.map(({ model }) => ({ type: 'model', id: model, metric: 'ttft', stat: 'p50', hours, resolution })), now)
        const from = bucketRange(resolution, now, points)[0]!.start
        return {
          head: { metric: 'ttft', stat: 'p50', resolution, from: new Date(from).toISOString(), step_seconds: resolutionMs(resolution) / 1000 },
          series: trends.map((trend): [string, Array<number | null>] => [trend.id, trend.points.map((p) => p.value)])
        }
      }),
      view: {
        key: limit,
        project: (v): Sparklines => {
          const { head, series } = v as SparkComputation
          return { ...head, series: Object.fromEntries(series.slice(0, q.limit)) }
        }
      }
    }),
    providers: () => ({
      event: 'providers',
      key: cacheKeys.providers(q.window, undefined),
      load: async () => await cached(cacheKeys.providers(q.window, undefined), async () => await readProviderSummary(store, q.window, undefined, Date.now()))
    }),
    gateways: () => ({
      event: 'gateways',
      // A hub key only: the list is read anew each interval, and each gateway's realtime answer is cached.
      key: `gateways\u0000${q.window}`,
      load: async () => {
        const w = resolveWindow(q.window, Date.now())
        const ids = await storeLoad(log, async () => await activeGateways(store, w))()
        return { window: w.info, gateways: await Promise.all(ids.slice(0, GATEWAYS_SHOWN).map(async (id) => await realtime('gateway', id))) }
      }
    }),
    realtime: () => ({
      event: 'realtime',
      key: cacheKeys.realtime(q.type, q.window, q.id),
      load: async () => await realtime(q.type, q.id)
    })
  }
  return q.topics.map((name) => all[name]())
}
