import type { Metric, Registry } from 'prom-client'

/** One label set of the histogram: counts per bucket (not cumulative), sum and count. */
export class DurationSeries {
  readonly labels: Readonly<Record<string, string>>
  readonly counts: Float64Array
  sum = 0
  count = 0
  readonly #bounds: readonly number[]
  readonly #list: (s: DurationSeries) => void

  /** `list` is called at the first observation (since creation or the last reset). */
  constructor (labels: Record<string, string>, bounds: readonly number[], list: (s: DurationSeries) => void) {
    this.labels = labels
    this.#bounds = bounds
    this.#list = list
    this.counts = new Float64Array(bounds.length)
  }

  /** Adds one duration in seconds: a bucket search over a dozen bounds and three additions. */
  observe (seconds: number): void {
    if (this.count === 0) this.#list(this)
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && seconds > bounds[i]!) i++
    if (i < bounds.length) this.counts[i]!++
    this.sum += seconds
    this.count++
  }
}

interface Sample {
  labels: Record<string, string | number>
  sharedLabels?: Record<string, string>
  value: number
  metricName: string
  exemplar: null | undefined
}
interface Exported { name: string, help: string, type: string, aggregator: string, values: Sample[] }

/**
 * A Prometheus histogram for the hot path. prom-client's Histogram checks and hashes the label
 * object on every observation; here a caller asks for its series once per label set and keeps it, so
 * an observation is a few array writes. The registry reads it at scrape time as it reads a
 * prom-client Histogram (`getForPromString()`, `get()`, in the same forms), so /metrics shows the same
 * lines.
 */
export class DurationHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: readonly number[]
  /** In the order of their first observation, as prom-client lists label sets. */
  #series: DurationSeries[] = []

  constructor (opts: { name: string, help: string, buckets: readonly number[], registers: Registry[] }) {
    this.name = opts.name
    this.help = opts.help
    this.#bounds = [...opts.buckets]
    // The registry only calls getForPromString(), get() and reset(); its type names prom-client's classes only.
    for (const registry of opts.registers) registry.registerMetric(this as unknown as Metric)
  }

  /**
   * A new series for `labels`, listed from its first observation on. Each call makes another
   * series: call it once per label set and keep the result.
   */
  series (labels: Record<string, string>): DurationSeries {
    return new DurationSeries(labels, this.#bounds, (s) => { this.#series.push(s) })
  }

  /**
   * What prom-client's Histogram answers the registry for the text format: cumulative buckets, +Inf,
   * sum and count per label set, the label set apart (`sharedLabels`).
   */
  async getForPromString (): Promise<Exported> {
    const values: Sample[] = []
    for (const s of this.#series) {
      const sharedLabels = s.labels
      let cumulative = 0
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!
        values.push({ labels: { le }, sharedLabels, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null })
      })
      values.push({ labels: { le: '+Inf' }, sharedLabels, value: s.count, metricName: `${this.name}_bucket`, exemplar: null })
      values.push({ labels: {}, sharedLabels, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined })
      values.push({ labels: {}, sharedLabels, value: s.count, metricName: `${this.name}_count`, exemplar: undefined })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** The same with the label set merged into each sample's labels (the registry's JSON). */
  async get (): Promise<Exported> {
    const exported = await this.getForPromString()
    exported.values = exported.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }))
    return exported
  }

  /** Forgets every observation (prom-client's `registry.resetMetrics()`). */
  reset (): void {
    for (const s of this.#series) {
      s.counts.fill(0)
      s.sum = 0
      s.count = 0
    }
    this.#series = []
  }
}
