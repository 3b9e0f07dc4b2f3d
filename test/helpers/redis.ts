import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

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
