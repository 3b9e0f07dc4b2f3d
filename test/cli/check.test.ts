import { spawnSync } from 'node:child_process'
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { checkRedis, checkService, CHECK_MODEL, CHECK_NAME, infoField } from '../../src/cli/check.js'
import { Aggregator } from '../../src/ingest/aggregator.js'
import { RedisStore } from '../../src/store/redis-store.js'
import { listenApp } from '../helpers/live.js'
import { startCluster, startRedis } from '../helpers/redis.js'

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
    t.ok(lines.some((l) => l.startsWith('PASS  schema: stored layout version 2')))
    // Every key the probe wrote expires within minutes (its flush markers apart, fixed names).
    const keys = await redis.client.keys('metrics:*')
    t.ok(keys.length > 0)
    for (const k of keys.filter((k) => !k.includes(':flushed:') && k !== 'metrics:schema')) t.ok(await redis.client.pttl(k) <= 5 * 60_000, k)
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

t.test('a field INFO does not report reads as missing, not as a crash', async (t) => {
  t.equal(infoField('redis_version:7.2.4\r\nredis_mode:standalone\r\n', 'redis_mode'), 'standalone')
  t.equal(infoField('redis_version:7.2.4\r\n', 'maxmemory_policy', 'unknown'), 'unknown')
  t.equal(infoField('', 'redis_version'), '?')
})

if (redis !== null) {
  t.test('AOF on and maxmemory set pass; a user refused CONFIG still gets every other step', async (t) => {
    t.teardown(async () => {
      await redis.client.config('SET', 'appendonly', 'no')
      await redis.client.config('SET', 'save', '')
      await redis.client.acl('DELUSER', 'operator')
    })
    await redis.client.config('SET', 'appendonly', 'yes')
    await redis.client.config('SET', 'save', '3600 1')
    const full = await run({ REDIS_URL: redis.url })
    t.ok(full.ok, full.lines.join('\n'))
    t.match(full.lines.join('\n'), /^PASS {2}persistence: AOF on \(appendfsync everysec\), RDB save "3600 1"$/m)
    t.match(full.lines.join('\n'), /^WARN {2}maxmemory-policy: noeviction, no maxmemory set/m)
    await redis.client.acl('SETUSER', 'operator', 'on', '>operator-password-123', '~*', '&*', '+@all', '-config')
    const limited = await run({ REDIS_URL: `redis://operator:operator-password-123@127.0.0.1:${redis.port}` })
    t.ok(limited.ok, limited.lines.join('\n'))
    t.match(limited.lines.join('\n'), /^PASS {2}persistence: AOF on, RDB save unknown \(CONFIG GET refused\)$/m)
    await redis.client.config('SET', 'appendonly', 'no')
    const snapshots = await run({ REDIS_URL: redis.url })
    t.match(snapshots.lines.join('\n'), /^WARN {2}persistence: AOF off, RDB save "3600 1": a restart of Redis loses what was written since the last snapshot$/m)
  })

  t.test('a Redis refusing writes (maxmemory reached, noeviction) fails the write step', async (t) => {
    t.teardown(async () => { await redis.client.config('SET', 'maxmemory', '0') })
    await redis.client.config('SET', 'maxmemory', '1')
    const { ok, lines } = await run({ REDIS_URL: redis.url })
    t.notOk(ok)
    t.match(lines.join('\n'), /^PASS {2}maxmemory-policy: noeviction, maxmemory 1 B/m)
    t.match(lines.join('\n'), /^FAIL {2}write: the probe event was not written: .*OOM/m)
  })

  t.test('a user refused INFO fails with the refusal, one line', async (t) => {
    t.teardown(async () => { await redis.client.acl('DELUSER', 'noinfo') })
    await redis.client.acl('SETUSER', 'noinfo', 'on', '>noinfo-password-123', '~*', '&*', '+@all', '-info')
    const { ok, lines } = await run({ REDIS_URL: `redis://noinfo:noinfo-password-123@127.0.0.1:${redis.port}` })
    t.notOk(ok)
    t.match(lines.join('\n'), /^FAIL {2}redis: .*NOPERM/m)
    t.notMatch(lines.join('\n'), /noinfo-password-123/)
  })

  t.test('foreign data under the probe\'s id fails the read-back step', async (t) => {
    // Another writer's event for the probe model (TTFT 5 s).
    const store = new RedisStore({ url: redis.url })
    t.teardown(async () => { await store.close(); await redis.client.flushdb() })
    t.ok(await store.connect(3_000))
    const now = Date.now()
    const agg = new Aggregator()
    agg.addChat({ model: CHECK_MODEL, provider: CHECK_NAME, gateway: CHECK_NAME, success: true, errorType: null, ttftMs: 5000, totalMs: 6000, inputTokens: 1, outputTokens: 1, streamed: true, ts: now })
    t.same((await store.applyGroups(now, agg.seal({ now, retentionHours: 24, instanceId: 'other' }))).filter((e) => e !== null), [])
    const { ok, lines } = await run({ REDIS_URL: redis.url })
    t.notOk(ok)
    t.match(lines.join('\n'), /^FAIL {2}read back: expected one more request with TTFT 100 ms, read 1 more, TTFT max 5\d{3}/m)
  })

  t.test('--url with a read token: reads use it; a wrong one fails the read step', async (t) => {
    const token = 'ingest-token-0123456789'
    const readToken = 'read-token-0123456789'
    const live = await listenApp(t, { config: { ingestTokens: [token], readTokens: [readToken] } })
    const lines: string[] = []
    t.ok(await checkService(live.base + '/', token, readToken, (l) => lines.push(l)), lines.join('\n'))
    const refused: string[] = []
    t.notOk(await checkService(live.base, token, 'wrong-read-token-0123', (l) => refused.push(l)))
    t.match(refused.join('\n'), /^FAIL {2}read: GET \/api\/metrics\/realtime: 401/m)
  })
}

/** A service answering from a script: each realtime read takes the next answer (the last one repeats). */
async function scripted (t: Test, o: { healthz: number, write: number, reads: Array<number | 'error'> }): Promise<string> {
  let n = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.url === '/healthz') { res.statusCode = o.healthz; res.end('{}'); return }
      if (req.url === '/readyz') { res.end('{}'); return }
      if (req.method === 'POST') { res.statusCode = o.write; res.end('{"accepted":1}'); return }
      const answer = o.reads[Math.min(n++, o.reads.length - 1)]
      if (answer === 'error') { res.statusCode = 503; res.end('{"error":"store"}'); return }
      res.end(JSON.stringify({ requests: answer }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('--url: a service answering errors fails each step it breaks, naming the answer', async (t) => {
  const lines: string[] = []
  // healthz down, the read-back lagging then erroring once, then one request more: only healthz fails.
  t.notOk(await checkService(await scripted(t, { healthz: 503, write: 202, reads: [7, 7, 'error', 8] }), undefined, undefined, (l) => lines.push(l)))
  t.same(lines.map((l) => l.split(':')[0]), ['FAIL  healthz', 'PASS  readyz', 'PASS  write', 'PASS  read back'])
  t.match(lines[3], /7 → 8 requests$/)
  const twice: string[] = []
  t.notOk(await checkService(await scripted(t, { healthz: 200, write: 202, reads: [0, 2] }), undefined, undefined, (l) => twice.push(l)))
  t.match(twice.join('\n'), /^FAIL {2}read back: realtime __check__\/probe 5m: 0 → 2 requests$/m)
  const refused: string[] = []
  t.notOk(await checkService(await scripted(t, { healthz: 200, write: 503, reads: [0] }), undefined, undefined, (l) => refused.push(l)))
  t.match(refused.join('\n'), /^FAIL {2}write: POST \/api\/metrics\/chat: 503 \{"accepted":1\}$/m)
})

t.test('a Redis Cluster is checked through one of its masters', async (t) => {
  const cluster = await startCluster(t)
  if (cluster === null) return
  const { ok, lines } = await run({ REDIS_CLUSTER_NODES: cluster.nodes })
  t.ok(ok, lines.join('\n'))
  t.match(lines[0], /^PASS {2}configuration: cluster of 3 seed nodes, auth none, database 0$/)
  t.match(lines.join('\n'), /^PASS {2}connect: redis \d+\.\d+\.\d+ \(cluster\)/m)
})
