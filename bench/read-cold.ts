/**
 * Cold-cache reads at 300 models × 24 h in a real Redis: leaderboard, provider summary, trends and
 * realtime answered through the whole app with the read cache off. Also the memory the data takes.
 *
 *   npm run bench:read -- [--models 300] [--hours 24] [--per-hour 60] [--runs 30]
 */
import { parseArgs } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import { rmSync } from 'node:fs'
import { Redis } from 'ioredis'
import { buildApp } from '../src/app.js'
import { defaultConfig } from '../src/config.js'
import { Aggregator } from '../src/ingest/aggregator.js'
import { Sealer } from '../src/jobs/sealer.js'
import { HOUR_MS } from '../src/metrics/buckets.js'
import { readActivity } from '../src/read/activity.js'
import { entityRead } from '../src/read/realtime.js'
import { resolveWindow } from '../src/read/window.js'
import { RedisStore } from '../src/store/redis-store.js'
import { spawnRedis, stopProcess } from '../test/helpers/redis.js'
import { mulberry32 } from '../test/helpers/random.js'

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '300' },
    hours: { type: 'string', default: '24' },
    'per-hour': { type: 'string', default: '60' },
    runs: { type: 'string', default: '30' }
  }
})
const MODELS = Number(values.models)
const HOURS = Number(values.hours)
const PER_HOUR = Number(values['per-hour'])
const RUNS = Number(values.runs)

/** Seeded PRNG so runs are comparable. */
const rnd = mulberry32(42)
const lognormal = (median: number, sigma: number): number => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(rnd() || 1e-12)) * Math.cos(2 * Math.PI * rnd()))

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}
function p90 (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.ceil(0.9 * s.length) - 1] ?? NaN
}

async function main (): Promise<void> {
  const { port, proc, dir } = await spawnRedis()
  const url = `redis://127.0.0.1:${port}`
  const admin = new Redis(url)
  try {
    // An hour per flush: no per-command timeout of the service's 2 s.
    const store = new RedisStore({ url }, { commandTimeout: 120_000 })
    await store.connect(2000)
    const base = Number((await admin.info('memory')).match(/used_memory:(\d+)/)?.[1])
    const now = Date.now()
    const providers = ['openai', 'anthropic', 'google', 'meta', 'mistral', 'deepseek', 'qwen', 'cohere', 'xai', 'perplexity']
    let events = 0
    let seq = 0
    const seedStart = performance.now()
    for (let h = HOURS - 1; h >= 0; h--) {
      const agg = new Aggregator()
      for (let m = 0; m < MODELS; m++) {
        const provider = providers[m % providers.length] as string
        for (let i = 0; i < PER_HOUR; i++) {
          const ts = now - h * HOUR_MS - Math.floor(rnd() * Math.min(HOUR_MS, h === 0 ? (now % HOUR_MS) + 1 : HOUR_MS))
          const success = rnd() > 0.05
          const ttft = lognormal(400 + m, 0.6)
          const total = ttft + lognormal(3000, 0.5)
          agg.addChat({ model: `${provider}/model-${m}`, provider, gateway: `gw-${m % 3}`, success, errorType: success ? null : 'timeout', ttftMs: ttft, totalMs: total, inputTokens: 500, outputTokens: 300, ts })
          events++
        }
      }
      const errors = await store.applyGroups(++seq, agg.seal({ now, retentionHours: 168, instanceId: 'bench' }))
      if (errors.some((e) => e !== null)) throw new Error('seed failed')
    }
    const seedMs = performance.now() - seedStart
    // Sealed as the service's sealer leaves it: every closed period in blocks.
    await new Sealer({ store, retentionHours: 168, log: { debug () {}, warn () {} } as unknown as FastifyBaseLogger, member: 'bench' }).pass(Date.now())
    // The leaderboard's two round trips, apart.
    const w = resolveWindow('24h', Date.now())
    const activityMs: number[] = []
    const detailMs: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now()
      const active = await readActivity(store, 'model', w)
      const t1 = performance.now()
      await store.read(active.slice(0, 10).map((a) => entityRead('model', a.id, ['stats', 'ttft', 'total'], w.buckets)))
      activityMs.push(t1 - t0)
      detailMs.push(performance.now() - t1)
    }
    const used = Number((await admin.info('memory')).match(/used_memory:(\d+)/)?.[1]) - base
    const keys = await admin.dbsize()
    // Memory by resolution: MEMORY USAGE of every key, hour buckets (…-HH) apart from the levels kept 2 h,
    // minute (…-HH-mm) and 10-minute (…-HH-mm+10m) buckets.
    const usage = { hour: 0, minute: 0, index: 0, markers: 0 }
    const counts = { hour: 0, minute: 0 }
    let cursor = '0'
    do {
      const [next, batch] = await admin.scan(cursor, 'COUNT', 1000)
      cursor = next
      const p = admin.pipeline()
      for (const k of batch) p.memory('USAGE', k)
      const sizes = (await p.exec()) ?? []
      batch.forEach((k, i) => {
        const bytes = Number(sizes[i]?.[1] ?? 0)
        if (k.includes(':flushed:')) usage.markers += bytes
        else if (k.startsWith('metrics:index:')) usage.index += bytes
        else if (/\d{4}-\d\d-\d\d-\d\d-\d\d(?:\+10m)?$/.test(k)) { usage.minute += bytes; counts.minute++ } else { usage.hour += bytes; counts.hour++ }
      })
    } while (cursor !== '0')
    await store.close()

    const app = await buildApp({ config: defaultConfig({ redis: { url }, cacheTtlMs: 0 }), logger: false })
    await app.ready()
    const routes: Array<[string, string]> = [
      ['leaderboard 24h (limit 10)', '/api/metrics/health/leaderboard?window=24h'],
      ['leaderboard 24h (limit 100)', '/api/metrics/health/leaderboard?window=24h&limit=100'],
      ['leaderboard 1h (limit 10)', '/api/metrics/health/leaderboard?window=1h'],
      ['provider summary 24h', '/api/metrics/provider/summary?window=24h'],
      ['trends 24 h hourly (model)', '/api/metrics/trends?model=openai/model-0&hours=24'],
      ['trends 24 h hourly (provider)', '/api/metrics/trends?type=provider&id=openai&hours=24'],
      ['trends 2 h by minute (model)', '/api/metrics/trends?model=openai/model-0&hours=2&resolution=minute'],
      ['realtime 24h (model)', '/api/metrics/realtime?id=openai/model-0&window=24h'],
      ['realtime 24h (gateway)', '/api/metrics/realtime?type=gateway&id=gw-0&window=24h']
    ]
    const rows: string[] = []
    for (const [name, url] of routes) {
      for (let i = 0; i < 3; i++) await app.inject({ url }) // warm-up: JIT, scripts loaded
      const times: number[] = []
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now()
        const res = await app.inject({ url })
        times.push(performance.now() - t0)
        if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
      }
      rows.push(`| ${name} | ${median(times).toFixed(2)} | ${p90(times).toFixed(2)} |`)
    }
    await app.close()

    console.log(`seeded ${events} events (${MODELS} models × ${HOURS} h × ${PER_HOUR}/h) in ${(seedMs / 1000).toFixed(1)} s; ${keys} keys`)
    console.log(`redis used_memory for the data: ${(used / 1048576).toFixed(1)} MiB = ${Math.round(used / (MODELS * HOURS))} B per model-hour (model, provider, gateway and index keys included; minute buckets for the last 2 h)`)
    console.log(`MEMORY USAGE: hour-bucket keys ${(usage.hour / 1048576).toFixed(1)} MiB (${counts.hour} keys, ${Math.round(usage.hour / (MODELS * HOURS))} B per model-hour incl. its share of provider and gateway keys), minute and 10-minute bucket keys ${(usage.minute / 1048576).toFixed(1)} MiB (${counts.minute} keys), index ${(usage.index / 1048576).toFixed(2)} MiB, flush markers ${(usage.markers / 1024).toFixed(0)} KiB`)
    console.log(`leaderboard 24h round trips: activity index ${median(activityMs).toFixed(2)} ms, details of 10 models ${median(detailMs).toFixed(2)} ms (medians)`)
    console.log(`\ncold reads through the app (cache off, ${RUNS} runs each, ms)\n| read | median | p90 |\n|---|---|---|\n${rows.join('\n')}`)
  } finally {
    admin.disconnect()
    await stopProcess(proc)
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
