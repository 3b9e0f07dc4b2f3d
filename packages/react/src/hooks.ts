/**
 * Hooks that keep one answer of the service up to date. Each follows the service's event stream
 * (one request per hook, pushed snapshots), polls the matching GET route while the stream is
 * unavailable, and closes everything on unmount or when its options change.
 */
import { useEffect, useState } from 'react'
import type { paths } from '@llm-gateway-metrics/client/api-types'
import { INITIAL_STATE, startLive, type LiveOptions, type LiveState } from './live.js'

type Ok<P extends keyof paths> = paths[P]['get'] extends { responses: { 200: { content: { 'application/json': infer B } } } } ? B : never
export type RealtimeMetrics = Ok<'/api/metrics/realtime'>
export type Leaderboard = Ok<'/api/metrics/health/leaderboard'>
export type LeaderboardEntry = Leaderboard['entries'][number]
export type MetricsWindow = '5m' | '15m' | '1h' | '6h' | '24h'
export type HealthStatus = RealtimeMetrics['status']

export interface CommonOptions {
  /** Where the service listens, e.g. http://127.0.0.1:3000, or '' for the page's own origin. */
  baseUrl: string
  /** One of METRICS_READ_TOKEN, when the service has one. */
  token?: string | undefined
  /** Window of the figures; the service's default (1h) when left out. */
  window?: MetricsWindow | undefined
  /** While the stream is unavailable: how often the route is polled and the stream tried again. Default 5000 ms. */
  pollIntervalMs?: number | undefined
  /** A stream silent this long (no snapshot, no heartbeat) is opened again. Default 45 000 ms (three heartbeats). */
  staleAfterMs?: number | undefined
}

export interface RealtimeOptions extends CommonOptions {
  /** Default model. */
  type?: 'model' | 'provider' | 'gateway' | undefined
  id: string
}

export interface LeaderboardOptions extends CommonOptions {
  /** desc: the healthiest first (default); asc: the least healthy first. */
  order?: 'desc' | 'asc' | undefined
  /** 1..100, default 10. */
  limit?: number | undefined
  /** Default 1. */
  minRequests?: number | undefined
}

function useLive<T> (opts: LiveOptions): LiveState<T> {
  // Everything that changes what is followed, as one value: a new value starts over.
  const key = JSON.stringify(opts)
  const [state, setState] = useState<{ key: string, live: LiveState<T> }>({ key, live: INITIAL_STATE })
  useEffect(() => startLive<T>(opts, (live) => { setState({ key, live }) }),
    // `key` stands for `opts`, a new object on every render.
    [key])
  // Until the effect of new options runs, the state still holds the answer to the previous ones.
  return state.key === key ? state.live : INITIAL_STATE
}

function live (o: CommonOptions, rest: Pick<LiveOptions, 'topic' | 'path' | 'query'>): LiveOptions {
  const { baseUrl, token, pollIntervalMs = 5000, staleAfterMs = 45_000 } = o
  return { baseUrl, token, pollIntervalMs, staleAfterMs, ...rest }
}

/** GET /api/metrics/realtime of one model, provider or gateway, kept up to date. */
export function useRealtimeMetrics (o: RealtimeOptions): LiveState<RealtimeMetrics> {
  return useLive<RealtimeMetrics>(live(o, { topic: 'realtime', path: '/api/metrics/realtime', query: { type: o.type, id: o.id, window: o.window } }))
}

/** GET /api/metrics/health/leaderboard, kept up to date. */
export function useLeaderboard (o: LeaderboardOptions): LiveState<Leaderboard> {
  return useLive<Leaderboard>(live(o, { topic: 'leaderboard', path: '/api/metrics/health/leaderboard', query: { window: o.window, order: o.order, limit: o.limit, min_requests: o.minRequests } }))
}
