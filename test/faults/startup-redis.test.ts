/**
 * Start-up against a Redis that refuses the connection (wrong password, no password, a database it
 * does not have): the real server entry exits non-zero with one line naming the problem, and never
 * prints a password.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort, startRedis } from '../helpers/redis.js'
import { spawnServer } from '../helpers/server.js'

const SERVER = fileURLToPath(new URL('../../src/server.ts', import.meta.url))
const PASSWORD = 'right-Passw0rd-4a1f9c'
const WRONG = 'wrong-Passw0rd-77d3e0'

/** Runs the server entry until it exits (killed after 40 s); its exit code and everything it wrote. */
async function runToExit (env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  const port = await freePort()
  const proc = spawn(process.execPath, [...process.execArgv, SERVER], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  proc.stdout.on('data', (d: Buffer) => { output += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const kill = setTimeout(() => proc.kill('SIGKILL'), 40_000)
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)))
  clearTimeout(kill)
  return { code, output }
}

t.test('a Redis refusal at start-up: exit 1 with one line, no password', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  await redis.client.config('SET', 'requirepass', PASSWORD)
  const host = { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) }
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a wrong REDIS_PASSWORD', { ...host, REDIS_PASSWORD: WRONG }, /^start-up error: redis: authentication failed \(WRONGPASS\)/],
    ['a wrong password in REDIS_URL', { REDIS_URL: `redis://:${WRONG}@127.0.0.1:${redis.port}` }, /^start-up error: redis: authentication failed \(WRONGPASS\)/],
    ['no password', host, /^start-up error: redis: a password is required \(NOAUTH\)/],
    ['REDIS_DB=16', { ...host, REDIS_PASSWORD: PASSWORD, REDIS_DB: '16' }, /^start-up error: redis: database 16 does not exist/]
  ]
  for (const [label, env, line] of cases) {
    const { code, output } = await runToExit(env)
    t.equal(code, 1, `${label}: exit code 1`)
    const lines = output.trim().split('\n')
    t.equal(lines.length, 1, `${label}: one line: ${output.trim()}`)
    t.match(lines[0], line, `${label}: names the problem`)
    t.notOk(output.includes(WRONG) || output.includes(PASSWORD), `${label}: no password in the output`)
  }

  // The same Redis with the right password: the server starts (the refusals above were Redis's).
  const ok = await spawnServer({ ...host, REDIS_PASSWORD: PASSWORD })
  t.match(ok.output(), /connected to redis/, 'with the right password it connects and listens')
  t.notOk(ok.output().includes(PASSWORD), 'without printing the password')
  ok.proc.kill('SIGKILL')
  await ok.exited
})
