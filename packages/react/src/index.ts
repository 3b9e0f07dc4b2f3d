/**
 * React components and hooks for llm-gateway-metrics:
 *
 *   import { RealtimeMetricsCard, HealthLeaderboard, useRealtimeMetrics } from '@llm-gateway-metrics/react'
 *
 * Every component and hook follows the service's event stream, polls while it is unavailable and
 * closes everything on unmount.
 */
export { RealtimeMetricsCard, HealthLeaderboard } from './components.js'
export type { RealtimeMetricsCardProps, HealthLeaderboardProps, HeadingLevel } from './components.js'
export { useRealtimeMetrics, useLeaderboard } from './hooks.js'
export type { CommonOptions, RealtimeOptions, LeaderboardOptions, RealtimeMetrics, Leaderboard, LeaderboardEntry, MetricsWindow, HealthStatus } from './hooks.js'
export { MetricsError } from './live.js'
export type { LiveSource, LiveState } from './live.js'
export { formatCount, formatMs, formatPercent, formatScore, formatStatus, formatWindow, NO_VALUE } from './format.js'
