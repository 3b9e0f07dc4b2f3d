import t from 'tap'
import { ConfigError, defaultConfig, loadConfig } from '../src/config.js'

t.test('loadConfig defaults', async (t) => {
  t.match(loadConfig({}), {
    host: '127.0.0.1',
    port: 3000,
    redis: undefined,
    flushIntervalMs: 200,
    cacheTtlMs: 5000,
    retentionHours: 168,
    logLevel: 'info',
    ingestTokens: [],
    readTokens: [],
    maxBufferedKeys: 200_000,
    rateLimitMax: 20_000,
    rateLimitWindowMs: 1_000,
    corsOrigins: [],
    maxIds: { model: 1000, provider: 100, gateway: 100 },
    maxPairs: { model_gateway: 5000, model_provider: 2000 },
    health: { minSamples: 20, consecutiveMinutes: 3, degradedUptime: 95, downUptime: 50, ttftFactor: 2, baselineMinSamples: 100, anomalyTtftFactor: 1.5, anomalyErrorRatePp: 5 }
  })
  t.same(defaultConfig({ port: 1 }).port, 1)
})

t.test('health thresholds and pair limits from the environment', async (t) => {
  const c = loadConfig({
    METRICS_MAX_MODEL_GATEWAYS: '10',
    METRICS_MAX_MODEL_PROVIDERS: '20',
    METRICS_STATUS_MIN_SAMPLES: '50',
    METRICS_STATUS_CONSECUTIVE_MINUTES: '5',
    METRICS_STATUS_DEGRADED_UPTIME: '99.5',
    METRICS_STATUS_DOWN_UPTIME: '80',
    METRICS_STATUS_TTFT_FACTOR: '3',
    METRICS_BASELINE_MIN_SAMPLES: '500',
    METRICS_ANOMALY_TTFT_FACTOR: '1.25',
    METRICS_ANOMALY_ERROR_RATE_PP: '2.5'
  })
  t.same(c.maxPairs, { model_gateway: 10, model_provider: 20 })
  t.same(c.health, { minSamples: 50, consecutiveMinutes: 5, degradedUptime: 99.5, downUptime: 80, ttftFactor: 3, baselineMinSamples: 500, anomalyTtftFactor: 1.25, anomalyErrorRatePp: 2.5 })
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ METRICS_STATUS_MIN_SAMPLES: '0' }, /^invalid METRICS_STATUS_MIN_SAMPLES=/],
    [{ METRICS_STATUS_CONSECUTIVE_MINUTES: '21' }, /^invalid METRICS_STATUS_CONSECUTIVE_MINUTES=/],
    [{ METRICS_STATUS_DEGRADED_UPTIME: '101' }, /^invalid METRICS_STATUS_DEGRADED_UPTIME=/],
    [{ METRICS_STATUS_TTFT_FACTOR: 'fast' }, /^invalid METRICS_STATUS_TTFT_FACTOR=/],
    [{ METRICS_ANOMALY_TTFT_FACTOR: '0.5' }, /^invalid METRICS_ANOMALY_TTFT_FACTOR=/],
    [{ METRICS_MAX_MODEL_GATEWAYS: '0' }, /^invalid METRICS_MAX_MODEL_GATEWAYS=/],
    [{ METRICS_STATUS_DOWN_UPTIME: '96' }, /^invalid METRICS_STATUS_DOWN_UPTIME=96: expected at most METRICS_STATUS_DEGRADED_UPTIME \(95\)$/]
  ]
  for (const [env, message] of bad) t.throws(() => loadConfig(env), message, JSON.stringify(env))
})

t.test('loadConfig reads every variable', async (t) => {
  const c = loadConfig({ HOST: '0.0.0.0', PORT: '8080', METRICS_FLUSH_INTERVAL_MS: '50', METRICS_CACHE_TTL_MS: '0', METRICS_RETENTION_HOURS: '24', LOG_LEVEL: 'warn' })
  t.match(c, { host: '0.0.0.0', port: 8080, flushIntervalMs: 50, cacheTtlMs: 0, retentionHours: 24, logLevel: 'warn' })
})

t.test('Redis from REDIS_URL or the REDIS_HOST family', async (t) => {
  t.same(loadConfig({ REDIS_URL: 'redis://:pw@10.0.0.1:6380/2' }).redis, { url: 'redis://:pw@10.0.0.1:6380/2' })
  t.same(loadConfig({ REDIS_HOST: 'cache', REDIS_PORT: '6380', REDIS_PASSWORD: 'pw', REDIS_DB: '3' }).redis, { host: 'cache', port: 6380, db: 3, password: 'pw' })
  t.same(loadConfig({ REDIS_HOST: 'cache' }).redis, { host: 'cache', port: 6379, db: 0 })
  t.same(loadConfig({ REDIS_URL: 'redis://a:1', REDIS_HOST: 'b' }).redis, { url: 'redis://a:1' }, 'REDIS_URL wins')
  t.equal(loadConfig({ REDIS_URL: '  ', REDIS_HOST: '' }).redis, undefined, 'empty values count as unset')
})

t.test('Redis Cluster from REDIS_CLUSTER_NODES, with password and TLS as for one node', async (t) => {
  t.same(loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000, r2:7001,[::1]:7002', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' }).redis, {
    cluster: [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7001 }, { host: '::1', port: 7002 }], password: 'pw', tls: true
  })
  t.same(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:6379' }).redis, { cluster: [{ host: '10.0.0.1', port: 6379 }] })
  t.same(loadConfig({ REDIS_HOST: 'cache', REDIS_TLS: 'true' }).redis, { host: 'cache', port: 6379, db: 0, tls: true })
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://b:2' }), { name: 'ConfigError', message: /REDIS_CLUSTER_NODES cannot be combined with REDIS_URL or REDIS_HOST/ })
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_HOST: 'b' }), { name: 'ConfigError' })
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:70000' }), { message: 'invalid REDIS_CLUSTER_NODES: expected ports in 1..65535' })
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:0' }), { message: 'invalid REDIS_CLUSTER_NODES: expected ports in 1..65535' })
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a' }), { message: /^invalid REDIS_CLUSTER_NODES="a": expected comma-separated host:port seed nodes$/ })
  t.throws(() => loadConfig({ REDIS_URL: 'redis://a:1', REDIS_TLS: 'true' }), { message: /use a rediss:\/\/ URL/ })
  t.same(loadConfig({ REDIS_URL: 'rediss://a:1', REDIS_TLS: 'true' }).redis, { url: 'rediss://a:1' })
})

t.test('a bad value names the variable in one line', async (t) => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ METRICS_FLUSH_INTERVAL_MS: '1.5' }, 'METRICS_FLUSH_INTERVAL_MS'],
    [{ METRICS_FLUSH_INTERVAL_MS: '0' }, 'METRICS_FLUSH_INTERVAL_MS'],
    [{ METRICS_CACHE_TTL_MS: '-1' }, 'METRICS_CACHE_TTL_MS'],
    [{ METRICS_RETENTION_HOURS: '0' }, 'METRICS_RETENTION_HOURS'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ REDIS_PORT: 'x' }, 'REDIS_PORT'],
    [{ REDIS_DB: '-2' }, 'REDIS_DB']
  ]
  for (const [env, name] of bad) {
    const err = t.throws(() => loadConfig(env), ConfigError) as Error
    t.match(err.message, new RegExp(`^invalid ${name}`), `${JSON.stringify(env)} names ${name}`)
    t.notMatch(err.message, /\n/, 'one line')
  }
})

t.test('NODE_ENV=production needs an ingest token unless anonymous ingest is allowed', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /METRICS_INGEST_TOKEN is required with NODE_ENV=production/)
  t.same(loadConfig({ NODE_ENV: 'production', METRICS_ALLOW_ANONYMOUS: 'true' }).ingestTokens, [])
  t.same(loadConfig({ NODE_ENV: 'production', METRICS_INGEST_TOKEN: 'a-token-of-16-chars' }).ingestTokens, ['a-token-of-16-chars'])
  t.throws(() => loadConfig({ METRICS_ALLOW_ANONYMOUS: 'yes' }), /invalid METRICS_ALLOW_ANONYMOUS="yes": expected one of true, false/)
  const secret = t.throws(() => loadConfig({ REDIS_PASSWORD: 'x', REDIS_URL: 'http://user:hunter2@h' })) as Error
  t.notMatch(secret.message, /hunter2/, 'a secret is never echoed')
})
