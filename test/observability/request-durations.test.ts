import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { DurationHistogram } from '../../src/observability/request-durations.js'

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const help = 'Time to answer'

/** The same observations into a prom-client Histogram and a DurationHistogram, each in its own registry. */
function pair () {
  const ours = new Registry()
  const theirs = new Registry()
  const fast = new DurationHistogram({ name: 'http_request_duration_seconds', help, buckets: BUCKETS, registers: [ours] })
  const reference = new Histogram({ name: 'http_request_duration_seconds', help, labelNames: ['method', 'route', 'status_code'], buckets: BUCKETS, registers: [theirs] })
  const series = new Map<string, ReturnType<typeof fast.series>>()
  const observe = (labels: Record<'method' | 'route' | 'status_code', string>, seconds: number): void => {
    const key = JSON.stringify(labels)
    if (!series.has(key)) series.set(key, fast.series(labels))
    series.get(key)!.observe(seconds)
    reference.observe(labels, seconds)
  }
  return { ours, theirs, fast, observe }
}

t.test('scrapes exactly as a prom-client Histogram fed the same durations', async (t) => {
  const { ours, theirs, observe } = pair()
  t.equal(await ours.metrics(), await theirs.metrics(), 'nothing observed: no label set listed')
  const chat = { method: 'POST', route: '/api/metrics/chat', status_code: '202' }
  const refused = { method: 'POST', route: '/api/metrics/chat', status_code: '400' }
  const unmatched = { method: 'GET', route: 'unmatched', status_code: '404' }
  // Every bound exactly (a bound counts in its own bucket), between bounds, beyond the last, and zero.
  const durations = [0, ...BUCKETS, ...BUCKETS.map((b) => b * 1.5), 12.5, 0.0001234]
  durations.forEach((d, i) => observe(i % 3 === 0 ? refused : chat, d))
  observe(unmatched, 0.0004)
  const text = await ours.metrics()
  t.equal(text, await theirs.metrics(), 'the same text: buckets, +Inf, sum and count per label set, in first-observed order')
  t.match(text, 'http_request_duration_seconds_bucket{le="0.0005",method="POST",route="/api/metrics/chat",status_code="400"}')
  t.same(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON(), 'and the same JSON')
})

t.test('reset forgets every observation; kept series list themselves again when observed', async (t) => {
  const { ours, theirs, fast, observe } = pair()
  const chat = { method: 'POST', route: '/api/metrics/chat', status_code: '202' }
  observe(chat, 0.002)
  observe({ ...chat, status_code: '503' }, 0.2)
  ours.resetMetrics()
  theirs.resetMetrics()
  t.equal(await ours.metrics(), await theirs.metrics(), 'after a reset: no label set listed')
  t.same((await fast.get()).values, [])
  observe({ ...chat, status_code: '503' }, 0.3)
  observe(chat, 0.004)
  t.equal(await ours.metrics(), await theirs.metrics(), 'observed again: listed again, counting from zero')
})
