import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'

import type { Test } from 'tap'

export interface TestRedis {
  port: number
  url: string
  pid: number
  /** A client for the test's own looks at the data; closed in teardown. */
  client: Redis
  process: ChildProcess
  /** Stops the server (SIGTERM by PID) and waits for it to exit. */
  stop: () => Promise<void>
}

export function redisAvailable (): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

async function waitForPong (port: number, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
    c.on('error', () => {})
    try {
      await c.connect()
      if ((await c.ping()) === 'PONG') return
    } catch {
      if (Date.now() > deadline) throw new Error(`redis on port ${port} did not answer PING`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    } finally {
      c.disconnect()
    }
  }
}

/** Starts redis-server on `port` (a free one by default) in a temp dir, no persistence. */
export async function spawnRedis (port?: number, dir?: string): Promise<{ port: number, proc: ChildProcess, dir: string }> {
  const p = port ?? await freePort()
  const d = dir ?? mkdtempSync(join(tmpdir(), 'metrics-redis-'))
  const proc = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', d], { stdio: 'ignore' })
  await waitForPong(p, 10_000)
  return { port: p, proc, dir: d }
}

export async function stopProcess (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  proc.kill('SIGTERM')
  await exited
}

/**
 * A fresh redis-server for this test file, stopped by its PID in teardown. When redis-server is not
 * installed: under CI=true the test fails; elsewhere it is skipped, saying why.
 */
export async function startRedis (t: Test): Promise<TestRedis | null> {
  if (!redisAvailable()) {
    if (process.env.CI === 'true') throw new Error('redis-server is not installed, and CI=true: Redis suites must run in CI')
    t.comment('SKIP: redis-server is not installed (under CI=true this fails)')
    return null
  }
  const { port, proc, dir } = await spawnRedis()
  const client = new Redis({ port, host: '127.0.0.1' })
  const stop = async (): Promise<void> => { await stopProcess(proc) }
  t.teardown(async () => {
    client.disconnect()
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return { port, url: `redis://127.0.0.1:${port}`, pid: proc.pid ?? -1, client, process: proc, stop }
}

export interface TestCluster {
  /** The masters' ports (each node's bus port is port + 10000). */
  ports: number[]
  /** Seed nodes for REDIS_CLUSTER_NODES. */
  nodes: string
  /** One direct client per master, for the test's own looks and for slot moves; closed in teardown. */
  masters: Redis[]
  /** A cluster client for the test's own looks at single keys; closed in teardown. */
  client: Cluster
  /** Every key matching `pattern`, from all masters. */
  keys: (pattern: string) => Promise<string[]>
  /** Deletes every key on every master. */
  flush: () => Promise<void>
}

/** A port whose cluster bus port (port + 10000) is free too; drawn from 20000–29999 for that. */
async function freeClusterPort (taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    if (taken.has(port)) continue
    if (await portIsFree(port) && await portIsFree(port + 10_000)) return port
  }
  throw new Error('no free port pair for a cluster node')
}

async function portIsFree (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/**
 * A real 3-master Redis Cluster on loopback for this test file (no replicas, no persistence), each
 * node stopped by its PID in teardown. Same rule as startRedis when redis-server is missing.
 */
export async function startCluster (t: Test): Promise<TestCluster | null> {
  if (!redisAvailable()) {
    if (process.env.CI === 'true') throw new Error('redis-server is not installed, and CI=true: Redis suites must run in CI')
    t.comment('SKIP: redis-server is not installed (under CI=true this fails)')
    return null
  }
  const dir = mkdtempSync(join(tmpdir(), 'metrics-cluster-'))
  const procs: ChildProcess[] = []
  const masters: Redis[] = []
  let client: Cluster | undefined
  t.teardown(async () => {
    client?.disconnect()
    for (const m of masters) m.disconnect()
    for (const p of procs) await stopProcess(p)
    rmSync(dir, { recursive: true, force: true })
  })
  const ports: number[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freeClusterPort(new Set(ports))
    ports.push(port)
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000'], { stdio: 'ignore' })
    procs.push(proc)
    await waitForPong(port, 10_000)
  }
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
  for (const port of ports) masters.push(new Redis({ port, host: '127.0.0.1' }))
  const deadline = Date.now() + 20_000
  for (;;) {
    const infos = await Promise.all(masters.map(async (m) => await m.cluster('INFO') as string))
    if (infos.every((i) => i.includes('cluster_state:ok'))) break
    if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  client = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })))
  return {
    ports,
    client,
    keys: async (pattern) => (await Promise.all(masters.map(async (m) => await m.keys(pattern)))).flat(),
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    masters,
    flush: async () => { await Promise.all(masters.map(async (m) => await m.flushall())) }
  }
}
