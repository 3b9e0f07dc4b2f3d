import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from './redis.js'

const SERVER = fileURLToPath(new URL('../../src/server.ts', import.meta.url))

export interface ServerProcess {
  proc: ChildProcess
  baseUrl: string
  /** Everything the process wrote, stdout and stderr. */
  output: () => string
  exited: Promise<number | null>
}

/**
 * Runs the real server entry (src/server.ts) in a child process with the same TypeScript loader as
 * this test, and resolves once it listens; on `port` when given (a restart on the same address).
 */
export async function spawnServer (env: Record<string, string>, port?: number): Promise<ServerProcess> {
  port ??= await freePort()
  const proc = spawn(process.execPath, [...process.execArgv, SERVER], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const deadline = Date.now() + 90_000
  while (!out.includes('Server listening')) {
    if (proc.exitCode !== null) throw new Error(`server exited early: ${out}`)
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`server did not start: ${out}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { proc, baseUrl: `http://127.0.0.1:${port}`, output: () => out, exited }
}
