/**
 * The benchmark suite (`npm run bench`; `npm run bench -- --duration 10 --rounds 5 --full` for longer runs).
 * Every figure is measured beside its baseline in the same run, on this machine:
 * - ceiling: a bare Fastify app with the same body schema and response sizes, doing nothing;
 * - naive: every event its own fire-and-forget Redis pipeline, reads with no cache (bench/baselines).
 * Each scenario runs its server in its own child process (logging off), warms up, then autocannon.
 * A redis-server is started on a free loopback port. Results: bench/results/<date>.json and a table.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { Sealer } from '../src/jobs/sealer.js'
import { FETCH_LUA, SEAL_LUA } from '../src/store/lua.js'
import { RedisStore } from '../src/store/redis-store.js'
import { spawnRedis, stopProcess } from '../test/helpers/redis.js'
import { serve, type Served } from './lib/procs.js'
import { cannon, ENTRY, scenarios, type Scenario } from './lib/scenarios.js'
import { seedTraffic, zipf } from './lib/seed.js'

// The defaults take about two minutes in all (seeding 24 h of traffic is ≈ 40 s of it).
const { values } = parseArgs({ options: { duration: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' }, warmup: { type: 'string', default: '1' }, full: { type: 'boolean', default: false }, only: { type: 'string', multiple: true } } })
const DURATION = Number(values.duration)
const ROUNDS = Number(values.rounds)
const WARMUP = Number(values.warmup)
interface Row { name: string, reqPerSec: number, eventsPerSec?: number, p50: number, p99: number, non2xx: number, errors: number, eldP99?: number, eventsPerCommand?: number, redisUsPerRequest: number, rounds: Array<{ reqPerSec: number, p50: number, p99: number, eldP99: number }> }

interface Sample { r: autocannon.Result, eld: number, cmds: number, redisUsec: number }

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!

/** One row per scenario: the median of its rounds; events per command over all of them. */
function summarize (s: Scenario, samples: Sample[]): Row {
  const reqPerSec = median(samples.map((x) => x.r.requests.average))
  const events = samples.reduce((sum, x) => sum + (x.r['2xx'] ?? 0), 0) * (s.eventsPerRequest ?? 0)
  const cmds = samples.reduce((sum, x) => sum + x.cmds, 0)
  return {
    name: s.name,
    reqPerSec,
    ...(s.eventsPerRequest !== undefined ? { eventsPerSec: reqPerSec * s.eventsPerRequest, eventsPerCommand: cmds > 0 ? events / cmds : undefined, eldP99: median(samples.map((x) => x.eld)) } : {}),
    redisUsPerRequest: median(samples.map((x) => x.r.requests.total > 0 ? x.redisUsec / x.r.requests.total : 0)),
    p50: median(samples.map((x) => x.r.latency.p50)),
    p99: median(samples.map((x) => x.r.latency.p99)),
    non2xx: samples.reduce((sum, x) => sum + x.r.non2xx, 0),
    errors: samples.reduce((sum, x) => sum + x.r.errors, 0),
    rounds: samples.map((x) => ({ reqPerSec: x.r.requests.average, p50: x.r.latency.p50, p99: x.r.latency.p99, eldP99: x.eld }))
  }
}

/** Commands Redis has executed so far and the microseconds spent on them, the bench's own INFO left out. */
async function redisWork (redis: Redis): Promise<{ calls: number, usec: number }> {
  let calls = 0
  let usec = 0
  for (const [, cmd, c, u] of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+),/gm)) {
    if (cmd === 'info') continue
    calls += Number(c)
    usec += Number(u)
  }
  return { calls, usec }
}

/**
 * Waits until Redis is idle (under 2 ms of command time per 200 ms), at most 30 s: what a scenario
 * leaves behind (a flush landing, a baseline's queued commands, requests still in flight when
 * autocannon stopped) is counted with it and never slows the next one. Returns the time waited.
 */
async function settle (redis: Redis): Promise<number> {
  const start = Date.now()
  let last = (await redisWork(redis)).usec
  while (Date.now() - start < 30_000) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    const now = (await redisWork(redis)).usec
    if (now - last < 2_000) break
    last = now
  }
  return Date.now() - start
}

async function run (): Promise<void> {
  const { port, proc, dir } = await spawnRedis()
  const redisUrl = `redis://127.0.0.1:${port}`
  const redis = new Redis(redisUrl)
  const rows: Row[] = []
  let slow: SlowCommands = { reads: [], writes: [] }
  try {
    // Traffic for the read scenarios: 300 models over 24 h, Zipf 100 req/s in all.
    // Seeding writes an hour of traffic per flush: no per-command timeout of the service's 2 s.
    const store = new RedisStore({ url: redisUrl }, { commandTimeout: 120_000 })
    await store.connect(2000)
    const weights = zipf(300)
    const seedStart = Date.now()
    const seeded = await seedTraffic(store, { models: 300, hours: 24, ratePerSec: (m) => 100 * (weights[m] ?? 0) })
    process.stderr.write(`seeded ${seeded} events (300 models × 24 h) in ${((Date.now() - seedStart) / 1000).toFixed(1)} s\n`)
    // What the service's sealer does once a minute, for every period closed since the traffic began.
    const sealed = await seal(redis, store)
    const memory = await memoryReport(redis, 'Zipf 100 req/s over 300 models', seeded)
    const memories = [memory]
    // Read commands over 2 ms: none may be (the reads' FETCH script); listed after the scenarios.
    await redis.config('SET', 'slowlog-log-slower-than', '2000')
    await redis.slowlog('RESET')
    // Every server runs from the start, and the scenarios take turns for ROUNDS rounds: a baseline and
    // the figure compared with it are measured minutes apart at most, so a change in the machine's
    // load between them shows up as spread across rounds instead of as a wrong ratio.
    // --only (repeatable): the scenarios whose name contains one of the parts given.
    const active = scenarios.filter((s) => values.only === undefined || values.only.some((part) => s.name.includes(part)))
    const servers = new Map<Scenario, Served>()
    try {
      for (const s of active.filter((x) => x.server !== 'ceiling')) servers.set(s, await serve(ENTRY[s.server], { REDIS_URL: redisUrl, ...s.env }))
      const hot = active.find((s) => s.name.startsWith('realtime 1h, cache hot'))
      const realtimeBody = hot !== undefined ? await (await fetch(hot.request(servers.get(hot)!.url).url as string)).text() : '{}'
      for (const s of active.filter((x) => x.server === 'ceiling')) servers.set(s, await serve(ENTRY.ceiling, { CEILING_GET_BODY: realtimeBody, ...s.env }))
      const samples = new Map<Scenario, Sample[]>(active.map((s) => [s, []]))
      for (let round = 0; round < ROUNDS; round++) {
        for (const s of active) {
          const server = servers.get(s)!
          const opts = { ...s.request(server.url), connections: s.connections }
          if (round === 0) await cannon({ ...opts, duration: WARMUP })
          await settle(redis)
          const before = await redisWork(redis)
          server.resetEld()
          const r = await cannon({ ...opts, duration: DURATION })
          const eld = await server.eld()
          // Its last flush (or a baseline's backlog) belongs to this scenario.
          const tail = await settle(redis)
          const after = await redisWork(redis)
          samples.get(s)!.push({ r, eld: eld.p99, cmds: after.calls - before.calls, redisUsec: after.usec - before.usec })
          process.stderr.write(`round ${round + 1}/${ROUNDS} ${s.name}: ${Math.round(r.requests.average)} req/s, p99 ${r.latency.p99} ms${tail > 1500 ? ` (Redis busy ${(tail / 1000).toFixed(1)} s after)` : ''}\n`)
        }
      }
      for (const s of active) rows.push(summarize(s, samples.get(s)!))
      slow = slowCommands(await redis.slowlog('GET', 1000) as unknown[][])
    } finally {
      for (const server of servers.values()) await server.stop()
    }
    if (values.full === true) {
      await redis.flushall()
      const n = await seedTraffic(store, { models: 300, hours: 24, ratePerSec: () => 1 })
      await seal(redis, store)
      memories.push(await memoryReport(redis, '1 req/s for each of 300 models', n))
      await redis.flushall()
      const week = await seedTraffic(store, { models: 300, hours: 168, ratePerSec: (m) => 100 * (weights[m] ?? 0) })
      await seal(redis, store)
      memories.push(await memoryReport(redis, 'Zipf 100 req/s over 300 models, 168 h (the default retention)', week, 168))
    }
    await store.close()
    report(rows, memories, sealed, slow)
  } finally {
    redis.disconnect()
    await stopProcess(proc)
    rmSync(dir, { recursive: true, force: true })
  }
}

interface SealReport { seconds: number, units: number, bytes: number, slowWrites: number, slowestMs: number }
interface SlowCommands { reads: string[], writes: string[] }

const sha = (script: string): string => createHash('sha1').update(script).digest('hex')
const FETCH_SHA = sha(FETCH_LUA)
const SEAL_SHA = sha(SEAL_LUA)

/** Runs a sealer pass over everything closed, timing it and counting its calls over 5 ms (slow log). */
async function seal (redis: Redis, store: RedisStore): Promise<SealReport> {
  await redis.config('SET', 'slowlog-log-slower-than', '5000')
  await redis.slowlog('RESET')
  const start = Date.now()
  const r = await new Sealer({ store, retentionHours: 168, log: { debug () {}, warn () {} } as unknown as FastifyBaseLogger, member: 'bench' }).pass(Date.now())
  const seconds = (Date.now() - start) / 1000
  const entries = (await redis.slowlog('GET', 1000) as unknown[][]).filter((e) => (e[3] as string[])[1] === SEAL_SHA)
  process.stderr.write(`sealed ${r.units} units (${(r.bytes / 1e6).toFixed(1)} MB) in ${seconds.toFixed(1)} s; seal calls over 5 ms: ${entries.length}\n`)
  return { seconds, units: r.units, bytes: r.bytes, slowWrites: entries.length, slowestMs: Math.max(0, ...entries.map((e) => Number(e[2]) / 1000)) }
}

/** The slow log's entries, as read (the FETCH script) or write commands, with their time. */
function slowCommands (entries: unknown[][]): SlowCommands {
  const out: SlowCommands = { reads: [], writes: [] }
  for (const e of entries) {
    const args = e[3] as string[]
    const line = `${(Number(e[2]) / 1000).toFixed(1)} ms ${args[0]!} ${args[1] === FETCH_SHA ? 'FETCH' : args[1] === SEAL_SHA ? 'SEAL' : (args[1] ?? '').slice(0, 12)} ${(args[3] ?? '').slice(0, 80)}`
    if (args[1] === FETCH_SHA) out.reads.push(line)
    else out.writes.push(line)
  }
  return out
}

interface Memory { traffic: string, events: number, usedMemory: number, hourBytes: number, minuteBytes: number, otherBytes: number, perModelHour: number, perModelHourWithoutMinutes: number, keys: number, byFamily: Record<string, { keys: number, bytes: number }> }

/**
 * A key's family for the breakdown: entity type, pair kind, family and resolution, ids left out
 * (`metrics:model:{…}:gateway:…:dists:minute`; `tenmin` for 10-minute buckets).
 */
function familyOf (key: string): string {
  return key.replace(/\{[^}]*\}/, '{…}')
    .replace(/:(gateway|provider):[^:]+:(stats|dists):/, ':$1:…:$2:')
    .replace(/:sealed:\d{4}-\d\d-\d\d-\d\d-\d\d\+10m$/, ':sealed:tenmin').replace(/:sealed:\d{4}-\d\d-\d\d-\d\d$/, ':sealed:hour')
    .replace(/\d{4}-\d\d-\d\d-\d\d-\d\d\+10m$/, 'tenmin').replace(/\d{4}-\d\d-\d\d-\d\d-\d\d$/, 'minute').replace(/\d{4}-\d\d-\d\d-\d\d$/, 'hour')
    .replace(/:flushed:.*$/, ':flushed:…').replace(/:catalog:[0-9a-f]+$/, ':catalog:…')
}

async function memoryReport (redis: Redis, traffic: string, events: number, hours = 24): Promise<Memory> {
  await redis.call('MEMORY', 'PURGE').catch(() => {})
  const info = await redis.info('memory')
  const used = Number(info.match(/used_memory:(\d+)/)?.[1]) - Number(info.match(/used_memory_startup:(\d+)/)?.[1])
  const sizes = { hour: 0, minute: 0, other: 0 }
  const byFamily: Memory['byFamily'] = {}
  let keys = 0
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000)
    cursor = next
    const p = redis.pipeline()
    for (const k of batch) p.memory('USAGE', k)
    const res = (await p.exec()) ?? []
    batch.forEach((k, i) => {
      const b = Number(res[i]?.[1] ?? 0)
      keys++
      const f = byFamily[familyOf(k)] ??= { keys: 0, bytes: 0 }
      f.keys++
      f.bytes += b
      // Minute and 10-minute buckets: the levels kept two hours only.
      if (/\d{4}-\d\d-\d\d-\d\d-\d\d(\+10m)?$/.test(k)) sizes.minute += b
      else if (/\d{4}-\d\d-\d\d-\d\d$/.test(k)) sizes.hour += b
      else sizes.other += b
    })
  } while (cursor !== '0')
  const modelHours = 300 * hours
  const keyed = sizes.hour + sizes.minute + sizes.other
  return { traffic, events, usedMemory: used, hourBytes: sizes.hour, minuteBytes: sizes.minute, otherBytes: sizes.other, perModelHour: used / modelHours, perModelHourWithoutMinutes: (used * (sizes.hour + sizes.other) / keyed) / modelHours, keys, byFamily }
}

function report (rows: Row[], memories: Memory[], sealed: SealReport, slow: SlowCommands): void {
  const by = (name: string): Row | undefined => rows.find((r) => r.name === name)
  const ratio = (a: number | undefined, b: number | undefined): string => a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) + '×' : '—'
  const ceilingPost = by('ceiling: POST, same body schema')?.reqPerSec
  const ceilingGet = by('ceiling: GET, same response size')?.reqPerSec
  const single = by('ingest single event')?.reqPerSec
  const baseline: Record<string, [string, number | undefined]> = {
    'ingest single event': ['ceiling', ceilingPost],
    'naive: ingest single event': ['ceiling', ceilingPost],
    'ingest batch of 100': ['single (events/s ÷ req/s)', single],
    'ingest single, token + rate limit': ['ceiling', ceilingPost],
    'realtime 1h, cache hot': ['ceiling', ceilingGet],
    'realtime 1h, cache off (c=10)': ['naive', by('naive: realtime 1h (c=10)')?.reqPerSec]
  }
  const lines = ['| scenario | req/s | events/s | p50 ms | p99 ms | ratio | event-loop p99 ms | events per Redis command | Redis µs per request |', '|---|---|---|---|---|---|---|---|---|']
  for (const r of rows) {
    const [against, base] = baseline[r.name] ?? ['', undefined]
    const value = r.name === 'ingest batch of 100' ? r.eventsPerSec : r.reqPerSec
    lines.push(`| ${r.name} | ${Math.round(r.reqPerSec)} | ${r.eventsPerSec !== undefined ? Math.round(r.eventsPerSec) : ''} | ${r.p50} | ${r.p99} | ${against !== '' ? `${ratio(value, base)} ${against}` : ''} | ${r.eldP99 !== undefined ? r.eldP99.toFixed(1) : ''} | ${r.eventsPerCommand !== undefined ? r.eventsPerCommand.toFixed(1) : ''} | ${r.redisUsPerRequest.toFixed(1)} |`)
  }
  const naive = by('naive: ingest single event')?.reqPerSec
  lines.push('', `ingest single vs naive: ${ratio(single, naive)}`)
  lines.push('', `sealing the 24 h Zipf traffic: ${sealed.units} seal calls, ${(sealed.bytes / 1e6).toFixed(1)} MB of blocks, ${sealed.seconds.toFixed(1)} s; calls over 5 ms: ${sealed.slowWrites} (slowest ${sealed.slowestMs.toFixed(1)} ms)`)
  lines.push('', `slow log after the scenarios (over 2 ms): ${slow.reads.length} read commands, ${slow.writes.length} write commands`)
  for (const l of [...slow.reads, ...slow.writes].slice(0, 10)) lines.push(`    ${l}`)
  lines.push('', '| Redis memory, 300 models | events | used_memory | per model-hour | per model-hour without minute buckets |', '|---|---|---|---|---|')
  for (const m of memories) lines.push(`| ${m.traffic} | ${m.events} | ${(m.usedMemory / 1048576).toFixed(1)} MiB | ${Math.round(m.perModelHour)} B | ${Math.round(m.perModelHourWithoutMinutes)} B |`)
  for (const m of memories) {
    // Where the memory goes: the largest key families (MEMORY USAGE of each key, so without the
    // main dictionary's and the expiry dictionary's share of used_memory).
    lines.push('', `| ${m.traffic}: largest key families | keys | MiB | bytes per key |`, '|---|---|---|---|')
    for (const [family, f] of Object.entries(m.byFamily).sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 8)) {
      lines.push(`| \`${family}\` | ${f.keys} | ${(f.bytes / 1048576).toFixed(1)} | ${Math.round(f.bytes / f.keys)} |`)
    }
    lines.push(`| all ${m.keys} keys, used_memory | | ${(m.usedMemory / 1048576).toFixed(1)} | ${Math.round(m.usedMemory / m.keys)} |`)
  }
  lines.push('', '| target (issue: benchmarks) | measured | met |', '|---|---|---|')
  const target = (what: string, value: number | undefined, ok: (v: number) => boolean, shown: (v: number) => string): void => {
    lines.push(`| ${what} | ${value !== undefined ? shown(value) : 'not run'} | ${value === undefined ? '—' : ok(value) ? 'yes' : 'no'} |`)
  }
  const x = (v: number): string => v.toFixed(2) + '×'
  const ms = (v: number): string => v.toFixed(1) + ' ms'
  const mb = (v: number): string => (v / 1e6).toFixed(1) + ' MB'
  const div = (a: number | undefined, b: number | undefined): number | undefined => a !== undefined && b !== undefined && b > 0 ? a / b : undefined
  target('ingest single ≥ 0.85 × ceiling', div(single, ceilingPost), (v) => v >= 0.85, x)
  target('ingest single ≥ 3 × naive', div(single, naive), (v) => v >= 3, x)
  target('ingest batch of 100, events/s ≥ 8 × single req/s', div(by('ingest batch of 100')?.eventsPerSec, single), (v) => v >= 8, x)
  target('realtime hot ≥ 0.90 × ceiling', div(by('realtime 1h, cache hot')?.reqPerSec, ceilingGet), (v) => v >= 0.9, x)
  target('realtime cold (1h) p99 ≤ 10 ms at c=10', by('realtime 1h, cache off (c=10)')?.p99, (v) => v <= 10, ms)
  target('leaderboard 24h, 300 models, cold p99 ≤ 30 ms at c=10', by('leaderboard 24h, 300 models, cache off (c=10)')?.p99, (v) => v <= 30, ms)
  target('leaderboard 24h limit=100, cold p99 ≤ 60 ms at c=10', by('leaderboard 24h limit=100, cache off (c=10)')?.p99, (v) => v <= 60, ms)
  target('trends 24 h, cold p99 ≤ 10 ms at c=10', by('trends 24 h hourly, cache off (c=10)')?.p99, (v) => v <= 10, ms)
  target('no read command over 2 ms (slow log)', slow.reads.length, (v) => v === 0, String)
  target('no seal call over 5 ms (slow log)', sealed.slowWrites, (v) => v === 0, String)
  target('Redis memory, Zipf 100 req/s, 300 models × 24 h ≤ 32 MB', memories[0]?.usedMemory, (v) => v <= 32e6, mb)
  target('Redis memory, 1 req/s each, 300 models × 24 h ≤ 40 MB (--full)', memories[1]?.usedMemory, (v) => v <= 40e6, mb)
  target('Redis memory, Zipf 100 req/s, 300 models × 168 h ≤ 120 MB (--full)', memories[2]?.usedMemory, (v) => v <= 120e6, mb)
  target('ingest single with token + rate limit ≥ 0.70 × ceiling', div(by('ingest single, token + rate limit')?.reqPerSec, ceilingPost), (v) => v >= 0.7, x)
  const eld = Math.max(...rows.filter((r) => r.eldP99 !== undefined && !r.name.startsWith('naive')).map((r) => r.eldP99 as number))
  target('event-loop delay p99 during ingest ≤ 20 ms (worst ingest scenario)', Number.isFinite(eld) ? eld : undefined, (v) => v <= 20, ms)
  const table = lines.join('\n')
  process.stdout.write(`\n${table}\n`)
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  const file = new URL(`./results/${new Date().toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url)
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), duration: DURATION, rounds: ROUNDS, node: process.version, cpus: cpus().length, rows, memories, table }, null, 2))
  process.stdout.write(`\nresults: ${file.pathname}\n`)
}

await run()
