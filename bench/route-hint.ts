/**
 * The routing hint as a gateway would ask it, once per request: GET /api/metrics/route against a
 * listening server (its own child process, logging off, on a redis-server started here), one
 * connection (autocannon -c 1), after a warm-up. Two cases: a cache hit (the cache outlives the run)
 * and cold (the cache off: every request reads Redis), for scale.
 *
 *   node --import tsx bench/route-hint.ts [--duration 10] [--warmup 2] [--gateways 5]
 *
 * Latencies are taken per response from autocannon's own timing (float ms; its summary rounds to
 * whole milliseconds, which is too coarse here). Prints a table and a JSON line.
 */
import { rmSync } from 'node:fs'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { spawnRedis, stopProcess } from '../test/helpers/redis.js'
import { serve } from './lib/procs.js'

const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' }, gateways: { type: 'string', default: '5' } } })
const DURATION = Number(values.duration)
const WARMUP = Number(values.warmup)
const GATEWAYS = Number(values.gateways)
const MODEL = 'openai/gpt-4o'
const PATH = `/api/metrics/route?model=${encodeURIComponent(MODEL)}`

interface Row { name: string, requests: number, reqPerSec: number, p50: number, p90: number, p99: number, max: number, acP50: number, acP99: number, non2xx: number }

function pct (sorted: number[], p: number): number {
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1] ?? NaN
}

/** One autocannon run; every 2xx latency (float ms) is kept. */
async function measure (url: string, duration: number): Promise<{ result: autocannon.Result, latencies: number[] }> {
  const latencies: number[] = []
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ url: url + PATH, connections: 1, duration }, (err, r) => { if (err !== null && err !== undefined) reject(err); else resolve(r) })
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => { if (status === 200) latencies.push(ms) })
  })
  return { result, latencies: latencies.sort((a, b) => a - b) }
}

/** 15 minutes of traffic for MODEL through GATEWAYS gateways, of different health. */
async function seed (url: string): Promise<void> {
  const now = Date.now()
  const events = []
  for (let k = 15; k >= 0; k--) {
    for (let g = 0; g < GATEWAYS; g++) {
      for (let i = 0; i < 20; i++) {
        const failing = i < g * 2
        events.push({ model: MODEL, gateway: `gw-${g}`, success: !failing, ...(failing ? { error_type: 'timeout' } : {}), ttft_ms: 250 + 40 * g + i, total_time_ms: 2500, output_tokens: 300, timestamp: now - k * 60_000 - i * 100 })
      }
    }
  }
  for (let i = 0; i < events.length; i += 1000) {
    const res = await fetch(`${url}/api/metrics/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events.slice(i, i + 1000)) })
    if (res.status !== 202) throw new Error(`seed: ${res.status} ${await res.text()}`)
  }
  await new Promise((resolve) => setTimeout(resolve, 500)) // a few flush intervals
  const hint = await (await fetch(url + PATH)).json() as { candidates: unknown[] }
  if (hint.candidates.length !== GATEWAYS) throw new Error(`expected ${GATEWAYS} candidates, got ${JSON.stringify(hint)}`)
}

async function main (): Promise<void> {
  const { port, proc, dir } = await spawnRedis()
  const rows: Row[] = []
  try {
    const cases: Array<[string, Record<string, string>]> = [
      ['route hint, cache hit (c=1)', { METRICS_CACHE_TTL_MS: '3600000' }],
      ['route hint, cache off (c=1)', { METRICS_CACHE_TTL_MS: '0' }]
    ]
    for (const [name, env] of cases) {
      const server = await serve('../../src/server.ts', { REDIS_URL: `redis://127.0.0.1:${port}/${rows.length}`, METRICS_RATE_LIMIT_MAX: '0', ...env })
      try {
        await seed(server.url)
        await measure(server.url, WARMUP)
        const { result, latencies } = await measure(server.url, DURATION)
        rows.push({
          name,
          requests: latencies.length,
          reqPerSec: Math.round(result.requests.average),
          p50: pct(latencies, 50),
          p90: pct(latencies, 90),
          p99: pct(latencies, 99),
          max: latencies[latencies.length - 1] ?? NaN,
          acP50: result.latency.p50,
          acP99: result.latency.p99,
          non2xx: result.non2xx
        })
      } finally {
        await server.stop()
      }
    }
  } finally {
    await stopProcess(proc)
    rmSync(dir, { recursive: true, force: true })
  }
  const f = (v: number): string => v.toFixed(3)
  console.log(`\n${GATEWAYS} candidates, ${DURATION} s each after ${WARMUP} s of warm-up, one connection\n`)
  console.log('| case | req/s | p50 ms | p90 ms | p99 ms | max ms | autocannon p50/p99 (whole ms) | non-2xx |')
  console.log('|---|---|---|---|---|---|---|---|')
  for (const r of rows) console.log(`| ${r.name} | ${r.reqPerSec} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p99)} | ${f(r.max)} | ${r.acP50} / ${r.acP99} | ${r.non2xx} |`)
  console.log(JSON.stringify({ date: new Date().toISOString(), duration: DURATION, gateways: GATEWAYS, rows }))
}

await main()
