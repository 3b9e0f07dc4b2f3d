import { Aggregator } from '../../src/ingest/aggregator.js'
import { bucketExpiry, HOUR_MS, MINUTE_MS } from '../../src/metrics/buckets.js'
import type { MetricsStore } from '../../src/store/types.js'
import { mulberry32 } from '../../test/helpers/random.js'

/** Seeded PRNG so runs are comparable. */

const PROVIDERS = ['openai', 'anthropic', 'google', 'meta', 'mistral', 'deepseek', 'qwen', 'cohere', 'xai', 'perplexity']

export const modelName = (m: number): string => `${PROVIDERS[m % PROVIDERS.length] ?? 'x'}/model-${m}`

/**
 * Writes `hours` hours of synthetic traffic for `models` models through the service's own
 * aggregation and store, with past timestamps. `ratePerSec(m)` is model m's request rate. Returns the
 * number of events.
 *
 * One flush per hour of traffic: what Redis holds at the end is the same as with the service's
 * flush every second (every bucket's fields are sums, extremes and latest values, whatever the
 * flushes' sizes; one marker per group either way), and the seeding takes seconds instead of minutes.
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
  let agg = new Aggregator()
  // Redis applies one hour while the next is generated: at most one flush in flight, in order.
  let inFlight: Promise<void> = Promise.resolve()
  const flush = async (): Promise<void> => {
    if (agg.empty) return
    const groups = agg.seal({ now, retentionHours: 168, instanceId: 'seed' })
    agg = new Aggregator()
    await inFlight
    const applied = store.applyGroups(++seq, groups).then((errors) => {
      const failed = errors.find((e) => e !== null)
      if (failed !== undefined) throw new Error(`seeding failed: ${String(failed)}`)
    })
    applied.catch(() => {})
    inFlight = applied
  }
  for (let i = 0; i < minutes; i++) {
    const minuteStart = start + i * MINUTE_MS
    if (i > 0 && minuteStart % HOUR_MS === 0) await flush()
    // A minute whose buckets have expired leaves only its hour buckets: its events are given the
    // hour's first minute, which fills the same hour buckets with 60 times fewer (model, minute)
    // combinations to seal.
    const hourOnly = bucketExpiry('minute', minuteStart, 168) <= now
    for (let m = 0; m < opts.models; m++) {
      // Poisson-ish: the expected count, with the fraction drawn.
      const expected = perMinute[m] ?? 0
      const n = Math.floor(expected) + (rnd() < expected % 1 ? 1 : 0)
      const model = modelName(m)
      const provider = model.slice(0, model.indexOf('/'))
      for (let k = 0; k < n; k++) {
        const drawn = Math.min(now, minuteStart + Math.floor(rnd() * MINUTE_MS))
        const ts = hourOnly ? minuteStart - (minuteStart % HOUR_MS) : drawn
        const success = rnd() > 0.03
        const ttft = lognormal(350 + (m % 40) * 10, 0.6)
        agg.addChat({ model, provider, gateway: `gw-${m % 3}`, success, errorType: success ? null : 'timeout', ttftMs: ttft, totalMs: ttft + lognormal(2500, 0.5), inputTokens: 800, outputTokens: 250 + (k % 100), ts })
      }
      events += n
    }
  }
  await flush()
  await inFlight
  return events
}

/** Zipf weights (s = 1) over n items, summing to 1. */
export function zipf (n: number): number[] {
  const raw = Array.from({ length: n }, (_, i) => 1 / (i + 1))
  const sum = raw.reduce((a, b) => a + b, 0)
  return raw.map((w) => w / sum)
}
