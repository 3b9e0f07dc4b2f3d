import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../test/helpers/redis.js'

const PRELOAD = fileURLToPath(new URL('./eld-preload.mjs', import.meta.url))

export interface Served { proc: ChildProcess, url: string, eld: () => Promise<{ p50: number, p99: number, max: number }>, resetEld: () => void, stop: () => Promise<void> }

/**
 * Forks a server entry (TypeScript, through tsx) with logging off, and waits until /healthz answers.
 * `execArgv`: more node flags for the server (e.g. `--cpu-prof`).
 */
export async function serve (entry: string, env: Record<string, string>, execArgv: string[] = []): Promise<Served> {
  const port = await freePort()
  const proc = fork(fileURLToPath(new URL(entry, import.meta.url)), [], {
    execArgv: [...execArgv, '--import', 'tsx', '--import', PRELOAD],
    env: { ...process.env, NODE_ENV: 'benchmark', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break
    } catch {}
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${entry} did not start`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    proc,
    url,
    resetEld: () => { proc.send('eld-reset') },
    eld: async () => await new Promise((resolve) => {
      proc.once('message', (m: { eld: { p50: number, p99: number, max: number } }) => resolve(m.eld))
      proc.send('eld')
    }),
    stop: async () => {
      if (proc.exitCode !== null) return
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGTERM')
      await exited
    }
  }
}
