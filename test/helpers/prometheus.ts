import type { FastifyInstance } from 'fastify'
import { getMetricsFromIterator, type PromData, type PromHistogramData, type PromMetrics } from 'prom2javascript'

export type { PromMetrics }

/** The content type of the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * Parses a /metrics body with a Prometheus text-format parser (it throws on a malformed line). A
 * sample whose value is NaN (`Nan` as prom-client writes it) is valid exposition, which Prometheus and
 * promtool read, but this parser does not: such samples are left out before parsing.
 */
export async function parseMetrics (text: string): Promise<PromMetrics> {
  return await getMetricsFromIterator(text.split('\n').filter((line) => !/ NaN$/i.test(line))[Symbol.iterator]())
}

/**
 * GET /metrics, checked to be 200 in the Prometheus content type, and parsed. It first lets the
 * event loop turn for 25 ms: the process's event-loop delay monitor (sampling every 10 ms) is reset by
 * each scrape, and a scrape that finds it empty reports its mean as NaN, which this parser does not
 * read (Prometheus does).
 */
export async function scrape (app: FastifyInstance, headers: Record<string, string> = {}): Promise<PromMetrics> {
  await sleep(25)
  const res = await app.inject({ url: '/metrics', headers })
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${res.body}`)
  if (res.headers['content-type'] !== PROMETHEUS_CONTENT_TYPE) throw new Error(`GET /metrics content type ${String(res.headers['content-type'])}`)
  return await parseMetrics(res.body)
}

function sameLabels (a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k])
}

/** The family `name`, checked to exist with `type`. */
export function family (metrics: PromMetrics, name: string, type: 'counter' | 'gauge' | 'histogram'): PromMetrics[string] {
  const f = metrics[name]
  if (f === undefined) throw new Error(`no series ${name}`)
  if (f.type !== type) throw new Error(`${name} is a ${f.type}, not a ${type}`)
  return f
}

/** The value of the counter or gauge sample of `name` with exactly `labels`; undefined when absent. */
export function sample (metrics: PromMetrics, name: string, type: 'counter' | 'gauge', labels: Record<string, string> = {}): number | undefined {
  return (family(metrics, name, type).data as PromData[]).find((d) => sameLabels(d.labels, labels))?.value
}

/** Every sample of a counter or gauge family. */
export function samples (metrics: PromMetrics, name: string, type: 'counter' | 'gauge'): PromData[] {
  return family(metrics, name, type).data as PromData[]
}

/** The histogram of `name` with exactly `labels` (besides `le`); undefined when absent. */
export function histogram (metrics: PromMetrics, name: string, labels: Record<string, string> = {}): PromHistogramData | undefined {
  return (family(metrics, name, 'histogram').data as PromHistogramData[]).find((d) => sameLabels(d.labels, labels))
}

/** Every histogram of a family. */
export function histograms (metrics: PromMetrics, name: string): PromHistogramData[] {
  return family(metrics, name, 'histogram').data as PromHistogramData[]
}
