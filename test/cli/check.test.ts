import { spawnSync } from 'node:child_process'
import t from 'tap'
import { checkRedis, checkService, CHECK_MODEL } from '../../src/cli/check.js'
import { listenApp } from '../helpers/live.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis(t)

async function run (env: NodeJS.ProcessEnv): Promise<{ ok: boolean, lines: string[] }> {
  const lines: string[] = []
  const ok = await checkRedis(env, (l) => lines.push(l))
  return { ok, lines }
}

if (redis !== null) {
  t.test('passes on a healthy Redis: every step, the probe read back', async (t) => {
    const { ok, lines } = await run({ REDIS_URL: redis.url })
    t.ok(ok, lines.join('\n'))
    t.notOk(lines.some((l) => l.startsWith('FAIL')))
    t.ok(lines.some((l) => /^PASS {2}connect: redis \d+\.\d+/.test(l)))
    t.ok(lines.some((l) => l.startsWith('PASS  read back: realtime __check__/probe')))
    t.ok(lines.some((l) => l.startsWith('PASS  schema: key schema version 1')))
    // Every key the probe wrote expires within minutes (its flush markers apart, fixed names).
    const keys = await redis.client.keys('metrics:*')
    t.ok(keys.length > 0)
    for (const k of keys.filter((k) => !k.includes(':flushed:'))) t.ok(await redis.client.pttl(k) <= 5 * 60_000, k)
    t.notOk(keys.some((k) => k.startsWith('metrics:index:')), 'the activity index is untouched')
    // A second run counts its own probe (the first one is still in the window).
    t.ok((await run({ REDIS_URL: redis.url })).ok)
  })

  t.test('a wrong password fails with one clear line, exit code 1, the password never printed', async (t) => {
    await redis.client.config('SET', 'requirepass', 'the-real-password-123')
    t.teardown(async () => { await redis.client.config('SET', 'requirepass', '') })
    const { ok, lines } = await run({ REDIS_URL: `redis://:not-the-password-456@127.0.0.1:${redis.port}` })
    t.notOk(ok)
    t.match(lines.join('\n'), /^FAIL {2}connect: redis: authentication failed \(WRONGPASS\)/m)
    t.notMatch(lines.join('\n'), /not-the-password-456|the-real-password-123/)
    // The installed command: same line, exit code 1.
    const cli = spawnSync(process.execPath, [...process.execArgv, 'src/cli/main.ts', 'check'], { encoding: 'utf8', env: { ...process.env, REDIS_URL: undefined, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_PASSWORD: 'not-the-password-456' }, timeout: 30_000 })
    t.equal(cli.status, 1)
    t.match(cli.stdout, /FAIL {2}connect: redis: authentication failed \(WRONGPASS\)/)
    t.notMatch(cli.stdout + cli.stderr, /not-the-password-456/)
  })

  t.test('a database Redis does not have fails, naming it', async (t) => {
    const { ok, lines } = await run({ REDIS_URL: `${redis.url}/99` })
    t.notOk(ok)
    t.match(lines.join('\n'), /^FAIL {2}connect: redis: database 99 does not exist/m)
  })

  t.test('an evicting policy fails as data loss; volatile-ttl passes', async (t) => {
    t.teardown(async () => { await redis.client.config('SET', 'maxmemory-policy', 'noeviction') })
    await redis.client.config('SET', 'maxmemory-policy', 'allkeys-lru')
    const evicting = await run({ REDIS_URL: redis.url })
    t.notOk(evicting.ok)
    t.match(evicting.lines.join('\n'), /^FAIL {2}maxmemory-policy: allkeys-lru evicts metrics keys .*data loss/m)
    await redis.client.config('SET', 'maxmemory-policy', 'volatile-ttl')
    const ttl = await run({ REDIS_URL: redis.url })
    t.ok(ttl.ok, ttl.lines.join('\n'))
    t.match(ttl.lines.join('\n'), /^PASS {2}maxmemory-policy: volatile-ttl/m)
  })

  t.test('no Redis configured: a FAIL line, not a probe of the embedded store', async (t) => {
    const { ok, lines } = await run({})
    t.notOk(ok)
    t.match(lines[0], /^FAIL {2}configuration: no REDIS_URL/)
  })

  t.test('--url: a running service answers health, readiness, an authenticated write and its read-back', async (t) => {
    const token = 'ingest-token-0123456789'
    const live = await listenApp(t, { config: { redis: { url: redis.url }, ingestTokens: [token] } })
    const lines: string[] = []
    t.ok(await checkService(live.base, token, undefined, (l) => lines.push(l)), lines.join('\n'))
    t.same(lines.map((l) => l.split(':')[0]), ['PASS  healthz', 'PASS  readyz', 'PASS  write', 'PASS  read back'])
    const refused: string[] = []
    t.notOk(await checkService(live.base, 'wrong-token-0123456789', undefined, (l) => refused.push(l)))
    t.match(refused.join('\n'), /^FAIL {2}write: POST \/api\/metrics\/chat: 401/m)
    t.notMatch(refused.join('\n'), /wrong-token-0123456789/)
    // The probe is readable by id, never listed.
    const board = await fetch(`${live.base}/api/metrics/health/leaderboard?window=5m&min_requests=1`)
    t.equal(board.status, 200)
    t.notMatch(await board.text(), CHECK_MODEL)
    const providers = await fetch(`${live.base}/api/metrics/provider/summary?window=5m`)
    t.equal(providers.status, 200)
    t.notMatch(await providers.text(), '__check__')
  })

  t.test('--url: an unreachable service fails', async (t) => {
    const lines: string[] = []
    t.notOk(await checkService('http://127.0.0.1:1', undefined, undefined, (l) => lines.push(l)))
    t.match(lines[0], /^FAIL/)
  })
}
