import type { WindowName } from '../metrics/buckets.js'
import { healthScore, successRate } from '../metrics/score.js'
import type { ProviderRow } from '../schemas/read.js'
import type { Fields } from '../store/types.js'
import type { StoreReader } from './budget.js'
import { decodeStats, errorsOf, num, tokensOf } from './decode.js'
import { readActivity } from './activity.js'
import { entityRead } from './realtime.js'
import { resolveWindow, type ResolvedWindow } from './window.js'

/**
 * GET /api/metrics/provider/summary: every provider with traffic in the window (or just `only`),
 * from the provider entities written at record time: two round trips, one when a provider is named.
 */
export async function readProviderSummary (store: StoreReader, windowName: WindowName, only: string | undefined, now: number): Promise<{ window: ResolvedWindow['info'], providers: ProviderRow[] }> {
  const w = resolveWindow(windowName, now)
  const ids = only !== undefined ? [only] : (await readActivity(store, 'provider', w)).map((a) => a.id)
  const merged = await store.read(ids.map((id) => entityRead('provider', id, ['stats', 'ttft', 'total', 'models'], w.cover)))
  const rows: ProviderRow[] = []
  ids.forEach((id, i) => {
    const [stats, ttft, total, models] = merged[i] as [Fields, Fields, Fields, Fields]
    const requests = num(stats, 'n')
    if (requests === 0) return
    const successes = num(stats, 'ok')
    rows.push({
      provider: id,
      models: Object.keys(models).length,
      requests,
      successes,
      failures: requests - successes,
      success_rate: successRate(successes, requests),
      errors: errorsOf(stats),
      ttft_ms: decodeStats(stats, 'ttft', ttft),
      total_time_ms: decodeStats(stats, 'total', total),
      ...tokensOf(stats),
      health_score: healthScore(successes, requests)
    })
  })
  rows.sort((a, b) => b.requests - a.requests || (a.provider < b.provider ? -1 : 1))
  return { window: w.info, providers: rows }
}
