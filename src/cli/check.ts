import { randomUUID } from 'node:crypto'
import { Cluster } from 'ioredis'
import { Aggregator } from '../ingest/aggregator.js'
import { RESERVED_ID_PREFIX } from '../read/activity.js'
import { readRealtime } from '../read/realtime.js'
import { KEY_PREFIX } from '../store/keys.js'
import { LAYOUT_VERSION, SCHEMA_KEY } from '../store/layout.js'
import type { RedisStore } from '../store/redis-store.js'
import { bearer, connectStore, redisConfig, Report } from './common.js'

/** The probe's ids: reserved (RESERVED_ID_PREFIX), so listings never show them. */
export const CHECK_MODEL = `${RESERVED_ID_PREFIX}/probe`
export const CHECK_NAME = RESERVED_ID_PREFIX
/** The probe's keys expire this long after it is written, whatever the retention. */
export const CHECK_TTL_MS = 5 * 60_000

/** Policies that never evict, or evict the keys nearest their expiry first (docs/operations.md). */
const SAFE_POLICIES = new Set(['noeviction', 'volatile-ttl'])

/** A field of INFO; `missing` when the server does not report it (Redis-compatible servers differ). */
export function infoField (info: string, name: string, missing = '?'): string {
  const m = new RegExp(`^${name}:(.*)$`, 'm').exec(info)
  return m === null ? missing : m[1]!.trim()
}

interface ProbeEvent {
  model: string
  provider: string
  gateway: string
  success: true
  errorType: null
  ttftMs: number
  totalMs: number
  inputTokens: number
  outputTokens: number
  streamed: true
  ts: number
}

function probeEvent (ts: number): ProbeEvent {
  const figures = { ttftMs: 100, totalMs: 1000, inputTokens: 10, outputTokens: 90 }
  return { model: CHECK_MODEL, provider: CHECK_NAME, gateway: CHECK_NAME, success: true, errorType: null, ...figures, streamed: true, ts }
}

/**
 * `check`: Redis as the service's configuration names it, then one probe event written through the
 * flush encoding and store, and read back through the realtime read path.
 */
export async function checkRedis (env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<boolean> {
  const r = new Report(out)
  let config
  try {
    config = redisConfig(env)
  } catch (err) {
    r.step('FAIL', 'configuration', (err as Error).message)
    return false
  }
  const conn = config.redis
  const password = 'url' in conn ? new URL(conn.url).password !== '' : conn.password !== undefined
  const db = 'url' in conn ? Number(new URL(conn.url).pathname.slice(1) || 0) : 'db' in conn ? conn.db : 0
  r.step('PASS', 'configuration', `${'cluster' in conn ? `cluster of ${conn.cluster.length} seed nodes` : 'single node'}, auth ${password ? 'with a password' : 'none'}, database ${db}`)
  let store: RedisStore
  try {
    store = await connectStore(config)
  } catch (err) {
    r.step('FAIL', 'connect', (err as Error).message)
    return false
  }
  try {
    // One node answers for all: on a cluster, any master (they share the configuration in practice).
    const node = store.client instanceof Cluster ? store.client.nodes('master')[0]! : store.client
    const info = await node.info()
    r.step('PASS', 'connect', `redis ${infoField(info, 'redis_version')} (${infoField(info, 'redis_mode')}), database ${db}`)
    const policy = infoField(info, 'maxmemory_policy', 'unknown')
    const maxmemory = Number(infoField(info, 'maxmemory', '0'))
    const evicted = infoField(info, 'evicted_keys', '0')
    if (SAFE_POLICIES.has(policy)) {
      r.step(policy === 'noeviction' && maxmemory > 0 ? 'PASS' : policy === 'noeviction' ? 'WARN' : 'PASS', 'maxmemory-policy',
        `${policy}${maxmemory > 0 ? `, maxmemory ${maxmemory} B` : ', no maxmemory set (Redis may use all the host\'s memory)'}, evicted_keys ${evicted}${policy === 'volatile-ttl' ? ' (when full, the keys nearest their expiry are evicted: any eviction is data lost)' : ''}`)
    } else {
      r.step('FAIL', 'maxmemory-policy', `${policy} evicts metrics keys when Redis is full: counts are lost without any error (data loss); set maxmemory-policy noeviction`)
    }
    const aof = infoField(info, 'aof_enabled') === '1'
    let save = 'unknown (CONFIG GET refused)'
    try {
      // [name, value], or [] from a server that does not know the setting.
      const value = (await node.config('GET', 'save') as string[]).slice(1).join(' ')
      save = value === '' ? 'off' : `"${value}"`
    } catch {}
    const fsync = aof ? await node.config('GET', 'appendfsync').then((x) => ` (appendfsync ${(x as string[]).slice(1).join(' ')})`, () => '') : ''
    r.step(aof ? 'PASS' : 'WARN', 'persistence', `AOF ${aof ? 'on' : 'off'}${fsync}, RDB save ${save}${aof ? '' : save === 'off' ? ': a restart of Redis loses everything' : ': a restart of Redis loses what was written since the last snapshot'}`)
    try {
      await store.checkLayout()
      r.step('PASS', 'schema', `stored layout version ${LAYOUT_VERSION} (${SCHEMA_KEY}; docs/design.md, "Sealed blocks")`)
    } catch (err) {
      r.step('FAIL', 'schema', (err as Error).message)
      // A layout this version does not know is never written to, not even by the probe.
      if ((err as { code?: string }).code === 'LAYOUT') return false
    }
    await probe(store, config.retentionHours, r)
  } catch (err) {
    r.step('FAIL', 'redis', (err as Error).message)
  } finally {
    await store.close()
  }
  return !r.failed
}

async function probe (store: RedisStore, retentionHours: number, r: Report): Promise<void> {
  const now = Date.now()
  const before = (await readRealtime(store, 'model', CHECK_MODEL, '5m', now)).requests
  const agg = new Aggregator()
  agg.addChat(probeEvent(now))
  // The activity index is left out (the probe is never listed, and its hashes are shared with real
  // ids, whose expiry must not change); every key of the probe's own expires within minutes.
  const groups = agg.seal({ now, retentionHours, instanceId: 'check' })
    .filter((g) => !g.marker.startsWith(`${KEY_PREFIX}index:`))
    .map((g) => ({ ...g, keys: g.keys.map((k) => ({ ...k, expireAt: Math.min(k.expireAt, now + CHECK_TTL_MS) })) }))
  const failed = (await store.applyGroups(now, groups)).find((e) => e !== null)
  if (failed !== undefined) {
    r.step('FAIL', 'write', `the probe event was not written: ${failed.message}`)
    return
  }
  r.step('PASS', 'write', `probe event for ${CHECK_MODEL} written (${groups.length} groups, expires in ${CHECK_TTL_MS / 60_000} minutes)`)
  const after = await readRealtime(store, 'model', CHECK_MODEL, '5m', Date.now())
  if (after.requests - before !== 1 || after.ttft_ms.max !== 100) {
    r.step('FAIL', 'read back', `expected one more request with TTFT 100 ms, read ${after.requests - before} more, TTFT max ${String(after.ttft_ms.max)}`)
  } else {
    r.step('PASS', 'read back', `realtime ${CHECK_MODEL} 5m: ${after.requests} requests, TTFT max ${after.ttft_ms.max} ms`)
  }
}

/** `check --url`: a running service answers health, readiness, an authenticated write and its read-back. */
export async function checkService (base: string, token: string | undefined, readToken: string | undefined, out: (line: string) => void): Promise<boolean> {
  const r = new Report(out)
  const url = base.replace(/\/+$/, '')
  const get = async (path: string, headers: Record<string, string> = {}): Promise<Response> =>
    await fetch(url + path, { headers, signal: AbortSignal.timeout(5_000) })
  try {
    for (const path of ['/healthz', '/readyz']) {
      const res = await get(path)
      const body = await res.text()
      r.step(res.status === 200 ? 'PASS' : 'FAIL', path.slice(1), `${res.status} ${body.slice(0, 200)}`)
    }
    const read = async (): Promise<number | string> => {
      const res = await get(`/api/metrics/realtime?type=model&id=${encodeURIComponent(CHECK_MODEL)}&window=5m`, bearer(readToken ?? token))
      if (res.status !== 200) return `${res.status} ${(await res.text()).slice(0, 200)}`
      return (await res.json() as { requests: number }).requests
    }
    const before = await read()
    if (typeof before === 'string') {
      r.step('FAIL', 'read', `GET /api/metrics/realtime: ${before}`)
      return false
    }
    const key = `check-${randomUUID()}`
    const event = { ...probeEventBody(), timestamp: Date.now() }
    const res = await fetch(`${url}/api/metrics/chat`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key, ...bearer(token) }, body: JSON.stringify(event), signal: AbortSignal.timeout(5_000) })
    const answer = await res.text()
    if (res.status !== 202) {
      r.step('FAIL', 'write', `POST /api/metrics/chat: ${res.status} ${answer.slice(0, 200)}${res.status === 401 ? ' (give the ingest token with --token)' : ''}`)
      return false
    }
    r.step('PASS', 'write', `POST /api/metrics/chat with Idempotency-Key: 202 ${answer}`)
    // The service flushes every METRICS_FLUSH_INTERVAL_MS and caches reads for METRICS_CACHE_TTL_MS.
    const deadline = Date.now() + 15_000
    let after: number | string = before
    while (Date.now() < deadline) {
      after = await read()
      if (typeof after === 'number' && after > before) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    r.step(after === before + 1 ? 'PASS' : 'FAIL', 'read back', `realtime ${CHECK_MODEL} 5m: ${String(before)} → ${String(after)} requests`)
  } catch (err) {
    r.step('FAIL', 'request', (err as Error).message)
  }
  return !r.failed
}

function probeEventBody (): Record<string, unknown> {
  const figures = { ttft_ms: 100, total_time_ms: 1000, input_tokens: 10, output_tokens: 90 }
  return { model: CHECK_MODEL, provider: CHECK_NAME, gateway: CHECK_NAME, success: true, ...figures }
}
