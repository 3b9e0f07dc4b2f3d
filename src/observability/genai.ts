import { Counter, Gauge, type Registry } from 'prom-client'
import type { WindowName } from '../metrics/buckets.js'
import { CHAT_ERROR_TYPES, type ChatErrorType } from '../metrics/events.js'
import type { Stats } from '../metrics/histogram.js'
import { decodeStats, errorsOf, latestOf, num } from '../read/decode.js'
import { readActivity } from '../read/activity.js'
import { entityRead } from '../read/realtime.js'
import { MergePlan, type Target } from '../read/targets.js'
import { resolveWindow } from '../read/window.js'
import type { Family } from '../store/keys.js'
import type { Fields, MetricsStore } from '../store/types.js'
import { NAMESPACE } from './service-metrics.js'

/** The window the GenAI series describe: the current minute and the four before it. */
export const GENAI_WINDOW: WindowName = '5m'
/** Model (and provider) label of the models beyond the top N, aggregated. */
export const OTHER = 'other'
/** Provider label of a model whose latest provider is not (yet) readable. */
export const UNKNOWN_PROVIDER = 'unknown'

const QUANTILES = [['0.5', 'p50'], ['0.9', 'p90'], ['0.95', 'p95'], ['0.99', 'p99']] as const

/** One exported model (or `other`): its figures over the window, times in ms as the read modules give them. */
export interface GenAiRow {
  model: string
  provider: string
  successes: number
  errors: Record<ChatErrorType, number>
  ttft: Stats
  total: Stats
}

const FAMILIES: Family[] = ['stats', 'ttft', 'total']

/**
 * The figures of the `top` models with the most requests in the window (ties by model id), and of
 * all the others merged into one `other` row (their hashes merged by the store in the same read):
 * two round trips whatever the number of models.
 */
export async function readGenAiRows (store: MetricsStore, top: number, now: number): Promise<GenAiRow[]> {
  const w = resolveWindow(GENAI_WINDOW, now)
  const active = (await readActivity(store, 'model', w)).sort((a, b) => b.requests - a.requests || Number(a.id > b.id) - Number(a.id < b.id))
  if (active.length === 0) return []
  const named = active.slice(0, top).map((a) => a.id)
  const reads = named.map((id) => entityRead('model', id, FAMILIES, w.cover))
  const rest = active.slice(top).map((a): Target => ({ type: 'model', id: a.id }))
  if (rest.length > 0) {
    const others = new MergePlan()
    for (const family of FAMILIES) others.merge(rest, family, w.cover)
    reads.push(others.read)
  }
  const results = await store.read(reads)
  return results.map((result, i): GenAiRow => {
    const [stats, ttft, total] = result as [Fields, Fields, Fields]
    const isRest = i === named.length
    return {
      model: isRest ? OTHER : named[i]!,
      provider: isRest ? OTHER : latestOf(stats, 'last:provider') ?? UNKNOWN_PROVIDER,
      successes: num(stats, 'ok'),
      errors: errorsOf(stats),
      ttft: decodeStats(stats, 'ttft', ttft),
      total: decodeStats(stats, 'total', total)
    }
  })
}

const MODEL = 'gen_ai_request_model'
const PROVIDER = 'gen_ai_provider_name'

/**
 * The OpenTelemetry GenAI-named series (README, "Prometheus metrics"). They describe the last
 * GENAI_WINDOW, so they are gauges (never rate() them): quantiles of time to first token and of
 * operation duration in seconds, and requests by outcome. Refreshed before each scrape.
 */
export class GenAiSeries {
  readonly #ttft: Gauge
  readonly #duration: Gauge
  readonly #operations: Gauge
  readonly #failures: Counter

  constructor (registry: Registry) {
    const registers = [registry]
    const window = `over the last ${GENAI_WINDOW}`
    this.#ttft = new Gauge({ name: 'gen_ai_server_time_to_first_token', help: `Time to first token in seconds, quantiles ${window}`, labelNames: [MODEL, PROVIDER, 'quantile'], registers })
    this.#duration = new Gauge({ name: 'gen_ai_client_operation_duration', help: `Total time of a chat completion in seconds, quantiles ${window}`, labelNames: [MODEL, PROVIDER, 'quantile'], registers })
    this.#operations = new Gauge({ name: 'gen_ai_client_operations', help: `Chat completions ${window}: successful ones without error_type, failed ones by error_type`, labelNames: [MODEL, PROVIDER, 'error_type'], registers })
    this.#failures = new Counter({ name: `${NAMESPACE}genai_export_errors_total`, help: 'Scrapes whose GenAI series could not be read from the store (they were left out)', registers })
  }

  /** Replaces every series with `rows`; null (the store did not answer) leaves them out and counts a failure. */
  update (rows: GenAiRow[] | null): void {
    this.#ttft.reset()
    this.#duration.reset()
    this.#operations.reset()
    if (rows === null) {
      this.#failures.inc()
      return
    }
    for (const r of rows) {
      const labels = { [MODEL]: r.model, [PROVIDER]: r.provider }
      for (const [quantile, stat] of QUANTILES) {
        const ttft = r.ttft[stat]
        const total = r.total[stat]
        if (ttft !== null) this.#ttft.set({ ...labels, quantile }, ttft / 1000)
        if (total !== null) this.#duration.set({ ...labels, quantile }, total / 1000)
      }
      this.#operations.set(labels, r.successes)
      for (const t of CHAT_ERROR_TYPES) this.#operations.set({ ...labels, error_type: t }, r.errors[t])
    }
  }
}
