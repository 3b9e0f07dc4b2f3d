import { Aggregator } from '../../src/ingest/aggregator.js'
import { HOUR_MS, MINUTE_MS } from '../../src/metrics/buckets.js'
import type { MetricsStore } from '../../src/store/types.js'
import { mulberry32 } from '../../test/helpers/random.js'

/** Seeded PRNG so runs are comparable. */

const PROVIDERS = ['openai', 'anthropic', 'google', 'meta', 'mistral', 'deepseek', 'qwen', 'cohere', 'xai', 'perplexity']

export const modelName = (m: number): string => `${PROVIDERS[m % PROVIDERS.length] ?? 'x'}/model-${m}`

/**
 * Writes `hours` hours of synthetic traffic for `models` models through the service's own
 * aggregation and store, one flush per minute of traffic, with past timestamps. `ratePerSec(m)` is
 * model m's request rate. Returns the number of events.
 */
export async function seedTraffic (store: MetricsStore, opts: { models: number, hours: number, ratePerSec: (m: number) => number, now?: number }): Promise<number> {
  const rnd = mulberry32(42)
  const lognormal = (median: number, sigma: number): number => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(rnd() || 1e-12)) * Math.cos(2 * Math.PI * rnd()))
  const now = opts.now ?? Date.now()
  const start = Math.floor((now - (opts.hours - 1) * HOUR_MS) / HOUR_MS) * HOUR_MS
  const minutes = Math.floor((now - start) / MINUTE_MS) + 1
  const perMinute = Array.from({ length: opts.models }, (_, m) => opts.ratePerSec(m) * 60)
  let events = 0
  let seq = 0
  for (let i = 0; i < minutes; i++) {
    const agg = new Aggregator()
    const minuteStart = start + i * MINUTE_MS
    for (let m = 0; m < opts.models; m++) {
      // Poisson-ish: the expected count, with the fraction drawn.
      const expected = perMinute[m] ?? 0
      const n = Math.floor(expected) + (rnd() < expected % 1 ? 1 : 0)
      const model = modelName(m)
      const provider = model.slice(0, model.indexOf('/'))
      for (let k = 0; k < n; k++) {
        const ts = Math.min(now, minuteStart + Math.floor(rnd() * MINUTE_MS))
        const success = rnd() > 0.03
        const ttft = lognormal(350 + (m % 40) * 10, 0.6)
        agg.addChat({ model, provider, gateway: `gw-${m % 3}`, success, errorType: success ? null : 'timeout', ttftMs: ttft, totalMs: ttft + lognormal(2500, 0.5), inputTokens: 800, outputTokens: 250 + (k % 100), ts })
      }
      events += n
    }
    if (agg.empty) continue
    const errors = await store.applyGroups(++seq, agg.seal({ now, retentionHours: 168, instanceId: 'seed' }))
    if (errors.some((e) => e !== null)) throw new Error('seeding failed')
  }
  return events
}

/** Zipf weights (s = 1) over n items, summing to 1. */
export function zipf (n: number): number[] {
  const raw = Array.from({ length: n }, (_, i) => 1 / (i + 1))
  const sum = raw.reduce((a, b) => a + b, 0)
  return raw.map((w) => w / sum)
}
