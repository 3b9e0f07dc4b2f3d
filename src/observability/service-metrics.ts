import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Flusher, FlushObserver } from '../ingest/flusher.js'
import type { CacheCounts } from '../read/cache.js'
import type { ReadBudget } from '../read/budget.js'
import { DurationHistogram } from './request-durations.js'

/** Prefix of the service's own series (the HTTP histogram keeps its conventional name). */
export const NAMESPACE = 'llm_gateway_metrics_'

/** From 0.5 ms: most answers come from memory, so the default buckets (from 5 ms) would hide them. */
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** A flush is one pipeline to the store; a slow one waits out the 2 s command timeout. */
const FLUSH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/** Why a recording request was refused (the `reason` label). */
export const REJECT_REASONS = ['validation', 'media_type', 'auth', 'body_too_large', 'rate_limit', 'cardinality', 'buffer_full', 'other'] as const
export type RejectReason = typeof REJECT_REASONS[number]

/** What the counters are read from at scrape time: plain numbers kept by their owners, so the hot paths only add. */
export interface MetricSources {
  buffer: Pick<Flusher, 'acceptedChatEvents' | 'acceptedFetchEvents' | 'flushedEvents' | 'droppedEvents' | 'bufferedKeys' | 'pendingEvents' | 'setAsideGroups' | 'duplicateRequests' | 'duplicateEvents' | 'degraded'>
  cache: { readonly counts: CacheCounts }
  /** The read budget (src/read/budget.ts), when there is one. */
  reads?: Pick<ReadBudget, 'active' | 'queued' | 'admitted' | 'refused' | 'chargedMs'>
}

export interface ServiceMetrics {
  /** Label sets `method`, `route`, `status_code`. */
  httpDuration: DurationHistogram
  rejected: Counter<'route' | 'reason'>
  readErrors: Counter
  redisErrors: Counter
  redisReconnects: Counter
}

/** A counter whose value is kept elsewhere (a plain number) and copied in at scrape time. */
function mirrored (registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({ name, help, registers: [registry], collect () { this.reset(); this.inc(read()) } })
}

/** The same, one series per value of `label`. */
function mirroredBy (registry: Registry, name: string, help: string, label: string, read: Record<string, () => number>): Counter {
  return new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect () {
      this.reset()
      for (const [value, n] of Object.entries(read)) this.inc({ [label]: value }, n())
    }
  })
}

/** A gauge whose value is read at scrape time. */
function sampled (registry: Registry, name: string, help: string, read: () => number): Gauge {
  return new Gauge({ name, help, registers: [registry], collect () { this.set(read()) } })
}

/** Registers the service's own series on `registry` (README, "Prometheus metrics"). */
export function serviceMetrics (registry: Registry, src: MetricSources): ServiceMetrics {
  const registers = [registry]
  const { buffer, cache } = src
  mirroredBy(registry, `${NAMESPACE}events_accepted_total`, 'Events accepted (answered 202) into the buffer, by kind', 'kind',
    { chat: () => buffer.acceptedChatEvents, fetch: () => buffer.acceptedFetchEvents })
  mirrored(registry, `${NAMESPACE}events_flushed_total`, 'Events written to the store', () => buffer.flushedEvents)
  mirrored(registry, `${NAMESPACE}events_dropped_total`, 'Accepted events given up unwritten (the store did not answer during shutdown)', () => buffer.droppedEvents)
  mirrored(registry, `${NAMESPACE}flush_groups_set_aside_total`, 'Flush groups the store refused for their content (e.g. a sum past its largest value): logged whole and set aside so that every other group keeps landing', () => buffer.setAsideGroups)
  mirrored(registry, `${NAMESPACE}idempotent_duplicates_total`, 'Recording requests whose Idempotency-Key had been applied already: answered 202, their events not counted again', () => buffer.duplicateRequests)
  mirrored(registry, `${NAMESPACE}idempotent_duplicate_events_total`, 'Events of those requests', () => buffer.duplicateEvents)
  sampled(registry, `${NAMESPACE}degraded`, '1 while a flush group was set aside within the last hour (GET /readyz says degraded), else 0', () => buffer.degraded ? 1 : 0)
  mirroredBy(registry, `${NAMESPACE}read_cache_requests_total`, 'Read-cache lookups: hit (answered from a cached or in-flight answer) or miss (loaded from the store)', 'result',
    { hit: () => cache.counts.lookups - cache.counts.loads, miss: () => cache.counts.loads })
  sampled(registry, `${NAMESPACE}buffer_entity_buckets`, 'Distinct entity-buckets held in the buffer (limit: METRICS_MAX_BUFFERED_KEYS)', () => buffer.bufferedKeys)
  const reads = src.reads
  if (reads !== undefined) {
    mirroredBy(registry, `${NAMESPACE}store_reads_total`, 'Store reads of the read routes and the stream: admitted within the read budget, or refused (503 METRICS_READ_BUSY)', 'result',
      { admitted: () => reads.admitted, refused: () => reads.refused })
    mirrored(registry, `${NAMESPACE}store_read_seconds_total`, 'Time the store spent on reads admitted by the read budget (its METRICS_READ_BUDGET_MS is per second)', () => reads.chargedMs / 1000)
    sampled(registry, `${NAMESPACE}store_reads_in_flight`, 'Store reads in flight (limit: METRICS_READ_CONCURRENCY)', () => reads.active)
    sampled(registry, `${NAMESPACE}store_reads_waiting`, 'Store reads waiting for the read budget (limit: METRICS_READ_QUEUE)', () => reads.queued)
  }
  sampled(registry, `${NAMESPACE}buffer_pending_events`, 'Events accepted and not yet written to the store', () => buffer.pendingEvents)
  return {
    httpDuration: new DurationHistogram({
      name: 'http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by route pattern ("unmatched" for unknown URLs) and status code',
      buckets: HTTP_BUCKETS,
      registers
    }),
    rejected: new Counter({
      name: `${NAMESPACE}ingest_requests_rejected_total`,
      help: 'Recording requests refused (nothing of them recorded), by route and reason',
      labelNames: ['route', 'reason'],
      registers
    }),
    readErrors: new Counter({ name: `${NAMESPACE}store_read_errors_total`, help: 'Reads answered 503 because the store did not answer', registers }),
    redisErrors: new Counter({ name: `${NAMESPACE}redis_errors_total`, help: 'Errors reported by the Redis client (connection losses, failed connection attempts)', registers }),
    redisReconnects: new Counter({ name: `${NAMESPACE}redis_reconnects_total`, help: 'Reconnection attempts of the Redis client', registers })
  }
}

/** The flushes' series: each write attempt's time, and the attempts that did not fully land. */
export function flushMetrics (registry: Registry): FlushObserver {
  const duration = new Histogram({
    name: `${NAMESPACE}flush_duration_seconds`,
    help: 'Time the store took to apply one flush (successful or not)',
    buckets: FLUSH_BUCKETS,
    registers: [registry]
  })
  const errors = new Counter({ name: `${NAMESPACE}flush_errors_total`, help: 'Flushes that did not fully land (retried with backoff)', registers: [registry] })
  return {
    attempted: (seconds, ok) => {
      duration.observe(seconds)
      if (!ok) errors.inc()
    }
  }
}

/** The `reason` label of a refused recording request, from the error it was answered with. */
export function rejectReason (err: { code?: unknown, statusCode?: unknown }): RejectReason {
  switch (err.code) {
    case 'METRICS_UNAUTHORIZED': return 'auth'
    case 'METRICS_RATE_LIMITED': return 'rate_limit'
    case 'METRICS_TOO_MANY_IDS': return 'cardinality'
    case 'METRICS_BUFFER_FULL': return 'buffer_full'
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'body_too_large'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'media_type'
  }
  return err.statusCode === 400 ? 'validation' : 'other'
}
