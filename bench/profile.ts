/**
 * Profiles one bench scenario: its server runs with `node --cpu-prof` under the scenario's load, and
 * the profile's heaviest frames are printed (self time, by function and by file or package).
 *
 *   npm run bench:profile -- --scenario "token + rate limit" [--duration 10] [--hours 24]
 *
 * The `.cpuprofile` is kept in bench/results/profiles/ (not committed): open it in Chrome DevTools
 * (Performance → Load profile) or https://www.speedscope.app for the flame graph. Read scenarios get
 * `--hours` hours of the bench's 300-model traffic first (default 24, as in `npm run bench`).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import { Sealer } from '../src/jobs/sealer.js'
import { RedisStore } from '../src/store/redis-store.js'
import { spawnRedis, stopProcess } from '../test/helpers/redis.js'
import { serve } from './lib/procs.js'
import { cannon, ENTRY, scenarios } from './lib/scenarios.js'
import { seedTraffic, zipf } from './lib/seed.js'

const { values } = parseArgs({ options: { scenario: { type: 'string', default: 'ingest single event' }, duration: { type: 'string', default: '10' }, hours: { type: 'string', default: '24' }, top: { type: 'string', default: '25' } } })
const scenario = scenarios.find((s) => s.name.includes(values.scenario))
if (scenario === undefined) {
  process.stderr.write(`no scenario matches "${values.scenario}"; scenarios:\n${scenarios.map((s) => `  ${s.name}`).join('\n')}\n`)
  process.exit(2)
}

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** Where a frame's code lives: an npm package, a file of this project, or V8 / Node internals. */
function origin (url: string, functionName: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  if (url.startsWith('file://')) return fileURLToPath(url).replace(ROOT, '')
  return url !== '' ? url : functionName
}

/** Self time per function and per origin, as shares of all samples. */
function summarize (p: CpuProfile, top: number): string {
  const time = new Map<number, number>()
  p.samples.forEach((id, i) => time.set(id, (time.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)))
  const total = [...time.values()].reduce((a, b) => a + b, 0)
  const byFrame = new Map<string, number>()
  const byOrigin = new Map<string, number>()
  for (const n of p.nodes) {
    const t = time.get(n.id) ?? 0
    const { functionName, url, lineNumber } = n.callFrame
    const where = origin(url, functionName)
    const frame = `${functionName !== '' ? functionName : '(anonymous)'}${url !== '' ? ` ${where}:${lineNumber + 1}` : ''}`
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + t)
    byOrigin.set(where, (byOrigin.get(where) ?? 0) + t)
  }
  const pct = (t: number): string => `${(100 * t / total).toFixed(1).padStart(5)} %`
  const list = (m: Map<string, number>): string[] => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, t]) => `${pct(t)}  ${k}`)
  const ours = [...byOrigin].filter(([k]) => k.startsWith('src/')).reduce((a, [, t]) => a + t, 0)
  return [
    `self time, top ${top} functions:`, ...list(byFrame), '',
    `self time by package or file, top ${top}:`, ...list(byOrigin), '',
    `the service's own files (src/): ${pct(ours).trim()} of all samples`
  ].join('\n')
}

async function main (): Promise<void> {
  const { port, proc, dir } = await spawnRedis()
  const redisUrl = `redis://127.0.0.1:${port}`
  const profiles = fileURLToPath(new URL('./results/profiles/', import.meta.url))
  mkdirSync(profiles, { recursive: true })
  const before = new Set(readdirSync(profiles))
  try {
    // Reads need data to read; ingest starts from an empty store, as in `npm run bench`.
    if (scenario!.server !== 'ceiling' && scenario!.eventsPerRequest === undefined && Number(values.hours) > 0) {
      const store = new RedisStore({ url: redisUrl }, { commandTimeout: 120_000 })
      await store.connect(2000)
      const weights = zipf(300)
      await seedTraffic(store, { models: 300, hours: Number(values.hours), ratePerSec: (m) => 100 * (weights[m] ?? 0) })
      // Sealed as the service's sealer leaves it, as in `npm run bench`.
      await new Sealer({ store, retentionHours: 168, log: { debug () {}, warn () {} } as unknown as FastifyBaseLogger, member: 'profile' }).pass(Date.now())
      await store.close()
    }
    const server = await serve(ENTRY[scenario!.server], { REDIS_URL: redisUrl, ...scenario!.env }, ['--cpu-prof', '--cpu-prof-dir', profiles])
    try {
      const opts = { ...scenario!.request(server.url), connections: scenario!.connections }
      await cannon({ ...opts, duration: 2 })
      const r = await cannon({ ...opts, duration: Number(values.duration) })
      process.stdout.write(`${scenario!.name}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms\n\n`)
    } finally {
      await server.stop()
    }
  } finally {
    await stopProcess(proc)
    rmSync(dir, { recursive: true, force: true })
  }
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the server's main thread; the
  // others are module-loader workers.
  const written = readdirSync(profiles).filter((f) => !before.has(f) && f.endsWith('.cpuprofile'))
  for (const f of written.filter((x) => x.split('.')[4] !== '0')) rmSync(`${profiles}${f}`)
  const main = written.find((x) => x.split('.')[4] === '0')
  if (main === undefined) throw new Error('the server wrote no profile')
  const file = `${profiles}${main}`
  process.stdout.write(`${summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(values.top))}\n\nprofile: ${file}\n`)
}

await main()
