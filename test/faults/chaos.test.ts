/**
 * End to end, through a fault on every hop: a gateway process (the SDK inside a small HTTP server) is
 * driven at a steady rate while, in turn, Redis is frozen and killed, the service is SIGTERM-restarted,
 * the service is paused (SIGSTOP) past the SDK's timeout, and the network between SDK and service
 * cuts every answer. At the end the service's counts equal the SDK's own ledger of accepted events,
 * exactly, per model, and the SDK dropped nothing.
 *
 * CHAOS_PHASE_MS scales each phase (default 2 500 ms: about 45 s in all); `npm run test:chaos` runs
 * a longer version.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { bucketName } from '../../src/metrics/buckets.js'
import { sleep, startPersistentRedis, sumN, until, waitFlushed } from '../helpers/faults.js'
import { HttpCutProxy } from '../helpers/http-cut-proxy.js'
import { freePort } from '../helpers/redis.js'
import { spawnServer, type ServerProcess } from '../helpers/server.js'

const PHASE_MS = Number(process.env.CHAOS_PHASE_MS ?? 2_500)
const RATE_PER_S = Number(process.env.CHAOS_RATE ?? 150)
const MODELS = ['chaos/a', 'chaos/b', 'chaos/c', 'other/d']
const GATEWAY = fileURLToPath(new URL('../helpers/gateway-process.ts', import.meta.url))

interface Ledger { ledger: Record<string, number>, recorded: number, stats: Record<string, number>, problems: string[] }

async function startGateway (metricsUrl: string): Promise<{ proc: ChildProcess, url: string }> {
  const port = await freePort()
  const proc = spawn(process.execPath, [...process.execArgv, GATEWAY], { env: { ...process.env, METRICS_URL: metricsUrl, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  if (!(await until(() => out.includes('gateway listening'), 45_000, 50))) throw new Error('the gateway did not start')
  return { proc, url: `http://127.0.0.1:${port}` }
}

t.test('chaos: every event the SDK saw accepted is counted once, through faults on every hop', async (t) => {
  const redis = await startPersistentRedis(t)
  if (redis === null) return
  const servicePort = await freePort()
  const env = { REDIS_URL: redis.url, METRICS_FLUSH_INTERVAL_MS: '100', METRICS_SHUTDOWN_DELAY_MS: '500' }
  let service: ServerProcess = await spawnServer(env, servicePort)
  const alive = (s: ServerProcess): boolean => s.proc.exitCode === null && s.proc.signalCode === null
  t.teardown(() => { if (alive(service)) { service.proc.kill('SIGCONT'); service.proc.kill('SIGKILL') } })
  const proxy = await HttpCutProxy.start(servicePort)
  t.teardown(() => proxy.close())
  const gateway = await startGateway(`http://127.0.0.1:${proxy.port}`)
  t.teardown(() => { gateway.proc.kill('SIGKILL') })

  // The steady load: RATE_PER_S completions a second through the gateway, until told to stop.
  let driving = true
  let driven = 0
  const drive = (async () => {
    const started = Date.now()
    while (driving && Date.now() - started < 40 * PHASE_MS) {
      const due = Math.floor(((Date.now() - started) / 1000) * RATE_PER_S)
      const sends: Array<Promise<unknown>> = []
      for (; driven < due; driven++) sends.push(fetch(`${gateway.url}/v1/chat/completions?model=${encodeURIComponent(MODELS[driven % MODELS.length]!)}`, { method: 'POST' }).then(async (r) => await r.arrayBuffer()))
      await Promise.all(sends)
      await sleep(20)
    }
  })()

  const faults: string[] = []
  const phase = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const before = driven
    await fn()
    faults.push(`${name}: ${driven - before} completions driven meanwhile`)
  }
  await sleep(PHASE_MS)
  await phase('Redis frozen (SIGSTOP)', async () => {
    redis.signal('SIGSTOP')
    await sleep(PHASE_MS)
    redis.signal('SIGCONT')
    await sleep(PHASE_MS)
  })
  await phase('Redis killed (SIGKILL) and restarted', async () => {
    await redis.kill()
    await sleep(PHASE_MS)
    await redis.restart()
    await sleep(PHASE_MS)
  })
  await phase('service SIGTERM, then started again on the same port', async () => {
    service.proc.kill('SIGTERM')
    t.equal(await service.exited, 0, 'the service exits 0 after its drain')
    service = await spawnServer(env, servicePort)
    await sleep(PHASE_MS)
  })
  await phase('service paused (SIGSTOP) past the SDK timeout', async () => {
    service.proc.kill('SIGSTOP')
    await sleep(Math.max(6_000, PHASE_MS))
    service.proc.kill('SIGCONT')
    await sleep(PHASE_MS)
  })
  await phase('network between SDK and service cuts every answer', async () => {
    proxy.cutting = true
    await sleep(PHASE_MS)
    proxy.cutting = false
    proxy.cutAll()
    await sleep(PHASE_MS)
  })
  driving = false
  await drive

  // The gateway closes its SDK (everything queued is sent), then the service writes its buffer.
  const closed = await (await fetch(`${gateway.url}/close`, { method: 'POST' })).json() as Ledger
  t.ok(await waitFlushed(service.baseUrl, 30_000), 'the service wrote everything it accepted')
  const hours = new Set([bucketName('hour', Date.now() - 3_600_000), bucketName('hour', Date.now())])
  const client = redis.client()
  t.teardown(() => client.disconnect())

  t.equal(closed.recorded, driven, 'the gateway recorded every completion driven')
  let ledgerTotal = 0
  for (const model of MODELS) {
    const counted = await sumN(client, 'model', model, hours)
    const accepted = closed.ledger[model] ?? 0
    ledgerTotal += accepted
    t.equal(counted, accepted, `${model}: the service counted exactly the ${accepted} events the SDK saw accepted`)
  }
  t.equal(await sumN(client, 'gateway', 'chaos-gw', hours), ledgerTotal, 'the gateway entity too')
  t.equal(ledgerTotal, driven, 'nothing was lost: every completion was accepted')
  t.match(closed.stats, { queued: 0, dropped: 0, failed: 0, expired: 0 }, 'the SDK dropped nothing')
  t.same(closed.problems, [], 'the SDK reported no problem')
  t.ok(proxy.cutAnswers > 0, `answers cut on the network: ${proxy.cutAnswers}`)
  // The pause and the cuts made the SDK send batches the service had already applied: deduplicated.
  const scrape = await (await fetch(`${service.baseUrl}/metrics`)).text()
  const duplicates = Number(/^llm_gateway_metrics_idempotent_duplicates_total (\d+)/m.exec(scrape)?.[1])
  t.ok(duplicates > 0, `the service left out ${duplicates} batches it had applied already`)
  t.comment(`driven ${driven}, accepted ${ledgerTotal}, SDK stats ${JSON.stringify(closed.stats)}`)
  for (const f of faults) t.comment(f)
})
