import t from 'tap'
import type { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { startCluster, type TestCluster } from '../helpers/redis.js'

const MODELS = ['mig/a', 'mig/b', 'other/c']

/** The master serving `slot`, and its node id. */
async function owner (cluster: TestCluster, slot: number): Promise<{ client: Redis, id: string, port: number }> {
  const ranges = await cluster.masters[0]!.cluster('SLOTS')
  const [, , master] = ranges.find(([from, to]) => slot >= from && slot <= to)!
  const [, port, id] = master!
  return { client: cluster.masters[cluster.ports.indexOf(port)]!, id, port }
}

/**
 * Moves `slot` to another master the way `redis-cli --cluster reshard` does (IMPORTING / MIGRATING,
 * MIGRATE a few keys at a time, then SETSLOT NODE everywhere), pausing between steps so flushes land
 * mid-move and hit ASK, TRYAGAIN and, afterwards, MOVED.
 */
async function moveSlot (cluster: TestCluster, slot: number): Promise<void> {
  const src = await owner(cluster, slot)
  const dstIndex = (cluster.ports.indexOf(src.port) + 1) % cluster.ports.length
  const dst = { client: cluster.masters[dstIndex]!, port: cluster.ports[dstIndex]!, id: await cluster.masters[dstIndex]!.cluster('MYID') as string }
  await dst.client.cluster('SETSLOT', slot, 'IMPORTING', src.id)
  await src.client.cluster('SETSLOT', slot, 'MIGRATING', dst.id)
  for (let i = 0; i < 1000; i++) {
    const keys = await src.client.cluster('GETKEYSINSLOT', slot, 3) as string[]
    if (keys.length === 0) break
    await src.client.migrate('127.0.0.1', dst.port, '', 0, 5000, 'KEYS', ...keys)
    await new Promise((resolve) => setTimeout(resolve, 15))
  }
  for (const m of cluster.masters) await m.cluster('SETSLOT', slot, 'NODE', dst.id)
}

t.test('a slot migration during flushes loses nothing and counts nothing twice', async (t) => {
  const cluster = await startCluster(t)
  if (cluster === null) return
  const config = defaultConfig({ redis: { cluster: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) }, flushIntervalMs: 10, cacheTtlMs: 0 })
  const app = await buildApp({ config, logger: false })
  t.teardown(() => app.close())
  await app.ready()

  const sent = new Map<string, number>()
  let stop = false
  const traffic = (async () => {
    for (let round = 0; round < 2000 && !stop; round++) {
      const events = MODELS.flatMap((model, i) => Array.from({ length: 5 + i }, () => ({ model, success: true, ttft_ms: 100 + round % 50 })))
      const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: events })
      if (res.statusCode === 202) for (const e of events) sent.set(e.model, (sent.get(e.model) ?? 0) + 1)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()

  // the slots of one model's keys, of the model index, and of a provider's keys move while events flow
  for (const tag of ['mig/a', 'model', 'mig']) {
    const slot = await cluster.masters[0]!.cluster('KEYSLOT', tag) as number
    const before = await owner(cluster, slot)
    await moveSlot(cluster, slot)
    t.not((await owner(cluster, slot)).port, before.port, `slot ${slot} ({${tag}}) moved`)
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  stop = true
  await traffic
  t.equal(await app.flusher.drain(10_000), 0, 'everything flushed')

  // Redis counts the redirections it answered: the flushes really did meet the move
  const redirects: Record<string, number> = {}
  for (const m of cluster.masters) {
    for (const [, name, n] of (await m.info('errorstats')).matchAll(/errorstat_(\w+):count=(\d+)/g)) redirects[name!] = (redirects[name!] ?? 0) + Number(n)
  }
  t.comment(`redirections answered: ${JSON.stringify(redirects)}; events: ${JSON.stringify(Object.fromEntries(sent))}`)
  t.ok((redirects.MOVED ?? 0) + (redirects.ASK ?? 0) + (redirects.TRYAGAIN ?? 0) > 0, 'writes or reads were redirected')

  for (const model of MODELS) {
    const rt = (await app.inject({ url: `/api/metrics/realtime?id=${model}&window=5m` })).json()
    t.equal(rt.requests, sent.get(model), `${model}: every accepted event counted once`)
    t.ok(rt.requests > 0)
  }
  const board = (await app.inject({ url: '/api/metrics/health/leaderboard?window=5m' })).json()
  t.same(board.entries.map((e: { model: string, requests: number }) => [e.model, e.requests]).sort(), MODELS.map((m) => [m, sent.get(m)]).sort(), 'the index agrees')
  const providers = (await app.inject({ url: '/api/metrics/provider/summary?window=5m&provider=mig' })).json()
  t.equal(providers.providers[0].requests, (sent.get('mig/a') ?? 0) + (sent.get('mig/b') ?? 0), 'the provider agrees')
})
