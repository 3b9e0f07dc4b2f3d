import { spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
import t from 'tap'
import { describe, main } from '../../src/cli/commands.js'
import { listenApp } from '../helpers/live.js'

/** Runs main() with stdout and stderr captured. */
async function run (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | string, stdout: string, stderr: string }> {
  const stdout: string[] = []
  const stderr: string[] = []
  const write = { out: process.stdout.write, err: process.stderr.write }
  process.stdout.write = ((s: string) => { stdout.push(s); return true }) as typeof process.stdout.write
  process.stderr.write = ((s: string) => { stderr.push(s); return true }) as typeof process.stderr.write
  let code: number | string
  try {
    code = await main(argv, env)
  } catch (e) {
    code = describe(e)
  } finally {
    process.stdout.write = write.out
    process.stderr.write = write.err
  }
  return { code, stdout: stdout.join(''), stderr: stderr.join('') }
}

/** The installed command, through main.ts's own error handler. */
function cli (args: string[]): { status: number | null, stdout: string, stderr: string } {
  return spawnSync(process.execPath, [...process.execArgv, 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, REDIS_URL: undefined }, timeout: 30_000 })
}

t.test('no command prints the usage with exit code 2; --help and help with 0', async (t) => {
  const none = await run([])
  t.equal(none.code, 2)
  t.match(none.stdout, /^usage: llm-gateway-metrics <command>/)
  for (const argv of [['--help'], ['check', '-h'], ['help']]) {
    const r = await run(argv)
    t.equal(r.code, 0, argv.join(' '))
    t.match(r.stdout, /^usage: /)
  }
})

t.test('an unknown command or option: one error line, exit code 1', async (t) => {
  const command = cli(['frobnicate'])
  t.equal(command.status, 1)
  t.match(command.stderr, /^error: unknown command "frobnicate"\nusage: /)
  const option = cli(['check', '--frobnicate'])
  t.equal(option.status, 1)
  t.match(option.stderr, /^error: Unknown option '--frobnicate'/)
  t.equal(option.stderr.trim().split('\n').length, 1, 'no stack')
})

t.test('the operator\'s mistakes are refused before anything runs', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['loadtest'], /^error: loadtest needs --url <base>$/],
    [['loadtest', '--url', 'http://127.0.0.1:1', '--duration', '0'], /^error: --duration must be an integer in 1\.\.3600$/],
    [['loadtest', '--url', 'http://127.0.0.1:1', '--duration', '3601'], /^error: --duration must be an integer in 1\.\.3600$/],
    [['loadtest', '--url', 'http://127.0.0.1:1', '--connections', 'ten'], /^error: --connections must be an integer in 1\.\.1000$/],
    [['loadtest', '--url', 'http://127.0.0.1:1', '--batch', '2.5'], /^error: --batch must be an integer in 1\.\.1000$/],
    [['inspect', '--id', 'x'], /^error: --type must be one of model, provider, gateway$/],
    [['inspect', '--type', 'team', '--id', 'x'], /^error: --type must be one of/],
    [['inspect', '--type', 'model'], /^error: inspect needs --id$/],
    [['inspect', '--type', 'model', '--id', 'x', '--window', '2h'], /^error: --window must be one of 5m, 15m, 1h, 6h, 24h$/],
    [['inspect', '--type', 'model', '--id', 'x'], /^error: no REDIS_URL, REDIS_HOST or REDIS_CLUSTER_NODES set/]
  ]
  for (const [argv, expected] of cases) t.match((await run(argv)).code, expected, argv.join(' '))
})

t.test('an unexpected error is described with its stack', async (t) => {
  const e = new TypeError('boom')
  t.match(describe(e), /^error: TypeError: boom\n {4}at /)
})

t.test('tokens come from METRICS_INGEST_TOKEN and METRICS_READ_TOKEN (the first of each list)', async (t) => {
  const token = 'ingest-token-0123456789'
  const readToken = 'read-token-0123456789'
  const live = await listenApp(t, { config: { ingestTokens: [token], readTokens: [readToken] } })
  const ok = await run(['check', '--url', live.base], { METRICS_INGEST_TOKEN: ` ${token} ,other-token-0123456789`, METRICS_READ_TOKEN: `${readToken},x` })
  t.equal(ok.code, 0, ok.stdout)
  t.match(ok.stdout, /^PASS {2}read back:/m)
  const refused = await run(['check', '--url', live.base], { METRICS_INGEST_TOKEN: token })
  t.equal(refused.code, 1)
  t.match(refused.stdout, /^FAIL {2}read: GET \/api\/metrics\/realtime: 401/m)
})

t.test('loadtest: exit code 0 when the counts match, 1 when the service refuses; progress on stderr', async (t) => {
  const token = 'ingest-token-0123456789'
  const live = await listenApp(t, { config: { ingestTokens: [token] } })
  const args = ['--duration', '1', '--connections', '1', '--batch', '2']
  const ok = await run(['loadtest', '--url', live.base, ...args], { METRICS_INGEST_TOKEN: token })
  t.equal(ok.code, 0, ok.stdout)
  t.match(ok.stdout, /^requests: \d+ in 1 s, \d+ req\/s \(batches of 2, 1 connections\)$/m)
  t.match(ok.stderr, /^ +1 s +\d+ req\/s/m)
  const refusing = createServer((req, res) => { req.resume(); req.on('end', () => { res.statusCode = 429; res.end('{}') }) })
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { refusing.closeAllConnections(); await new Promise((resolve) => refusing.close(resolve)) })
  const refused = await run(['loadtest', '--url', `http://127.0.0.1:${(refusing.address() as { port: number }).port}`, ...args])
  t.equal(refused.code, 1)
  t.match(refused.stdout, /^FAIL {2}counts: no event was accepted$/m)
})
