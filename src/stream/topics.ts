import type { HealthThresholds } from '../metrics/status.js'
import type { FastifyBaseLogger } from 'fastify'
import { bucketRange, resolutionMs, type WindowName } from '../metrics/buckets.js'
import type { EntityType } from '../metrics/events.js'
import type { ReadCache } from '../plugins/read-cache.js'
import { readLeaderboard } from '../read/leaderboard.js'
import { readProviderSummary } from '../read/provider-summary.js'
import { readRealtime } from '../read/realtime.js'
import { storeLoad } from '../read/store-load.js'
import { readTrends } from '../read/trends.js'
import { resolveWindow, type ResolvedWindow } from '../read/window.js'
import type { Sparklines, StreamTopic } from '../schemas/stream.js'
import { indexKey } from '../store/keys.js'
import type { Fields, MetricsStore } from '../store/types.js'
import type { Topic } from './hub.js'
import { cacheKeys } from '../read/cache-keys.js'

/** Gateways shown by the `gateways` topic at most, the busiest first. */
export const GATEWAYS_SHOWN = 20

export interface TopicQuery {
  topics: StreamTopic[]
  window: WindowName
  order: 'asc' | 'desc'
  limit: number
  minRequests: number
  type: EntityType
  /** Required with the realtime topic (the route checks). */
  id: string
}

export interface TopicDeps {
  store: MetricsStore
  readCache: ReadCache
  log: FastifyBaseLogger
  /** The configured thresholds: the same as the GET routes', whose cache entries a stream shares. */
  health: HealthThresholds
}

/** Sparklines: the last hour by minute for windows up to 1h, the last 24 hours by hour beyond. */
function sparkRange (window: WindowName): { resolution: 'minute' | 'hour', hours: number, points: number } {
  return ['5m', '15m', '1h'].includes(window) ? { resolution: 'minute', hours: 1, points: 60 } : { resolution: 'hour', hours: 24, points: 24 }
}

/** Gateways with chat traffic in the window (from the activity index), busiest first. */
async function activeGateways (store: MetricsStore, w: ResolvedWindow): Promise<string[]> {
  const keys = w.buckets.map((b) => indexKey('gateway', 'requests', b.name))
  const [[requests]] = await store.read([{ keys, slots: keys.map(() => 0), nSlots: 1, counters: keys.map(() => true) }]) as [[Fields]]
  return Object.entries(requests)
    .map(([id, n]) => ({ id, n: Number(n) }))
    .sort((a, b) => b.n - a.n || a.id.localeCompare(b.id))
    .map((g) => g.id)
}

/**
 * The topics a stream asked for. Every load goes through the read cache with the key the matching
 * GET route uses, so a stream and a poll of the same answer share one computation.
 */
export function streamTopics (q: TopicQuery, deps: TopicDeps): Topic[] {
  const { store, readCache, log, health } = deps
  const cached = async <T extends object>(key: string, load: () => Promise<T>): Promise<T> =>
    (await readCache.get(key, storeLoad(log, load))).value
  const boardKey = cacheKeys.leaderboard(q.window, q.order, q.limit, q.minRequests)
  const leaderboard = async () => await cached(boardKey, async () =>
    await readLeaderboard(store, { window: q.window, order: q.order, limit: q.limit, minRequests: q.minRequests }, Date.now(), health))
  const realtime = async (type: EntityType, id: string) => await cached(cacheKeys.realtime(type, q.window, id), async () =>
    await readRealtime(store, type, id, q.window, Date.now(), health))

  const all: Record<StreamTopic, () => Topic> = {
    leaderboard: () => ({ event: 'leaderboard', key: boardKey, load: leaderboard }),
    sparklines: () => ({
      event: 'sparklines',
      key: `sparklines\u0000${q.window}\u0000${q.order}\u0000${q.limit}\u0000${q.minRequests}`,
      load: async (): Promise<Sparklines> => {
        const { resolution, hours, points } = sparkRange(q.window)
        const board = await leaderboard()
        const series: Sparklines['series'] = Object.create(null)
        await Promise.all(board.entries.map(async ({ model }) => {
          const trend = await cached(cacheKeys.trends('model', model, 'ttft', 'p50', hours, resolution), async () =>
            await readTrends(store, { type: 'model', id: model, metric: 'ttft', stat: 'p50', hours, resolution }, Date.now()))
          series[model] = trend.points.map((p) => p.value)
        }))
        const from = bucketRange(resolution, Date.now(), points)[0]!.start
        return { metric: 'ttft', stat: 'p50', resolution, from: new Date(from).toISOString(), step_seconds: resolutionMs(resolution) / 1000, series }
      }
    }),
    providers: () => ({
      event: 'providers',
      key: cacheKeys.providers(q.window, undefined),
      load: async () => await cached(cacheKeys.providers(q.window, undefined), async () => await readProviderSummary(store, q.window, undefined, Date.now()))
    }),
    gateways: () => ({
      event: 'gateways',
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
