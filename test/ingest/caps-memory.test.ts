/**
 * The caps bound what clients can make Redis hold (docs/operations.md, "The most memory clients can
 * make Redis hold"): with small caps and a short retention, every cap is filled in every hour bucket
 * still open to events (distinct ids in each hour, the longest ids the API accepts, every minute of
 * the last two hours, model lists up to their cap, back-dated events included), then Redis's keys
 * under `metrics:` are counted by family and their MEMORY USAGE summed, and both stay within the
 * formula, before and after a sealer pass moves the closed buckets into blocks. One more id of any
 * kind, in the current hour or a past one, is refused; so is one more model-list entry; and a
 * restarted instance still knows a past hour is full.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { defaultConfig, type Config } from '../../src/config.js'
import { Sealer } from '../../src/jobs/sealer.js'
import { HOUR_MS, MINUTE_MS } from '../../src/metrics/buckets.js'
import { decodeBlock, type Snapshot } from '../../src/store/layout.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

const R = 2
const MAX = { model: 3, provider: 2, gateway: 2, model_gateway: 4, model_provider: 3 }
const CATALOG = 40

/** The bound of docs/operations.md for these settings; `n`: instance ids that wrote in the last 24 h. */
function memoryBound (c: { R: number, M: number, P: number, G: number, MG: number, MP: number, C: number, n: number, modelBytes: number, nameBytes: number }): { keys: Record<string, number>, bytes: number } {
  const H = c.R + 2 // hour buckets open to writes: R kept after the current one, the current, the next
  const MIN = 126 // minute buckets (kept 2 h, the current, 5 ahead)
  const TEN = 14 // the 10 minutes those minutes span, each one sealed block
  const PMIN = 66 // pairs' minute buckets (kept 1 h)
  const T = H + MIN
  const keys = {
    model: c.M * (7 * H + 4 * MIN),
    pair: 2 * (c.MG + c.MP) * (H + PMIN),
    provider: c.P * (6 * H + 5 * MIN),
    gateway: c.G * (7 * H + 5 * MIN),
    index: 11 * (H + MIN),
    list: Math.floor(c.C * H / 2),
    marker: (c.n + 1) * (c.M + c.P + c.G) * (c.R + 26) + 5 * c.n,
    // Sealed blocks: one per hash tag and hour or 10 minutes; one seal index per tag.
    sealed: (c.M + c.P + c.G + 5) * (H + TEN),
    seals: (c.M + c.P + c.G) * H + 5,
    other: 7
  }
  const pairBytes = c.modelBytes + 1 + c.nameBytes
  const idField = (bytes: number): number => 192 + 1.25 * bytes
  // Key names hold at most 64 bytes besides their ids, which percent-encoding may triple (but never past 4 bytes a character).
  const keyBytes = (idBytes: number): number => 256 + 1.25 * (64 + idBytes)
  const enc = (bytes: number): number => Math.min(3 * bytes, 4 * 256)
  const overhead = (keys.model + keys.list) * keyBytes(enc(c.modelBytes)) + keys.pair * keyBytes(enc(c.modelBytes) + enc(c.nameBytes)) +
    (keys.provider + keys.gateway) * keyBytes(enc(c.nameBytes)) + keys.marker * keyBytes(enc(c.modelBytes)) + (keys.index + keys.other) * keyBytes(0) +
    // A block holds the fields of the hashes it took (counted below, in fewer bytes); a seal index a period a field.
    keys.sealed * keyBytes(enc(c.modelBytes)) + keys.seals * (keyBytes(enc(c.modelBytes)) + 2 * (H + TEN) * 64)
  const STATS = 28 * 128
  const fields =
    // entity stats and histograms (ttft, total ≤ 579 bins; tps ≤ 790; fetch_rt ≤ 579), every resolution
    (c.M + c.P + c.G) * T * STATS + (c.M + c.P + c.G) * T * 1948 * 64 + c.G * T * 579 * 64 +
    // pairs: stats and their three histograms in one hash (≤ 1 948 bins)
    (c.MG + c.MP) * (H + PMIN) * (STATS + 1948 * 64) +
    // the activity index (requests and successes), hour and minute buckets
    2 * (H + MIN) * (c.M * idField(c.modelBytes) + (c.P + c.G) * idField(c.nameBytes) + (c.MG + c.MP) * idField(pairBytes)) +
    // a provider's models (each resolution), a model's gateways and providers (hour buckets)
    c.P * T * c.M * idField(c.modelBytes) + c.M * H * (c.G + c.P) * idField(c.nameBytes) +
    // state changes: at most one a minute
    (c.M + c.P + c.G) * H * 60 * 512 +
    // model lists and the fetches that carried them
    c.C * H * idField(c.modelBytes)
  return { keys, bytes: overhead + fields }
}

const idField = (bytes: number): number => 192 + 1.25 * bytes

/**
 * The most one key may use (docs/operations.md): 256 B + 1.25 × its name, and per field what its
 * family's fields may use at most. `fields`: how many it holds, for the families whose field count
 * the formula bounds elsewhere (model lists, the fetches that carried them).
 */
function keyBound (key: string, fields: number): number {
  const family = key.endsWith(':seals') ? 'seals' : /:([a-z_]+):[^:]+$/.exec(key)?.[1] ?? ''
  return 256 + 1.25 * Buffer.byteLength(key) + (PER_FIELD[family] ?? 64) * (family === 'catalog' || family === 'catalog_fetches' ? fields : 1)
}

/** The families of a block's parts (src/store/layout.ts), pairs apart. */
const PART_FAMILY: Record<string, string> = {
  s: 'stats', t: 'ttft', T: 'total', p: 'tps', f: 'fetch_rt', m: 'models', g: 'gateways', P: 'providers', S: 'status', c: 'catalog_fetches', r: 'requests', o: 'successes', F: 'requests'
}

/**
 * A block: 256 B + 1.25 × its name, and for each field of each part of each snapshot what a field of
 * the part's family may use in a hash (a part stored as 1, a pair equal to its model, takes a byte).
 */
function blockBound (key: string, snaps: Snapshot[]): number {
  let bytes = 256 + 1.25 * Buffer.byteLength(key)
  for (const snap of snaps) {
    for (const parts of Object.values(snap)) {
      for (const [part, stored] of Object.entries(parts)) {
        if (stored === 1) continue
        const family = /^[gp]:.*:d$/.test(part) ? 'dists' : /^[gp]:.*:s$/.test(part) ? 'stats' : PART_FAMILY[part] ?? ''
        const fields = Math.floor(stored.length / 2)
        bytes += family === 'stats' || family === 'catalog_fetches' || family === 'status' ? fields * 128 : fields * (family === 'models' || family === 'requests' || family === 'successes' ? idField(321) : family === 'gateways' || family === 'providers' ? idField(64) : 64)
      }
    }
  }
  return bytes
}

const PER_FIELD: Record<string, number> = {}
{
  const perFamily: Record<string, number> = {
    stats: 28 * 128,
    ttft: 579 * 64,
    total: 579 * 64,
    fetch_rt: 579 * 64,
    tps: 790 * 64,
    dists: 1948 * 64,
    status: 60 * 512,
    models: MAX.model * idField(256),
    gateways: MAX.gateway * idField(64),
    providers: MAX.provider * idField(64),
    requests: Math.max(MAX.model * idField(256), MAX.model_gateway * idField(321), MAX.model_provider * idField(321), MAX.gateway * idField(64)),
    catalog: idField(256),
    catalog_fetches: 128,
    seals: 2 * (R + 2 + 14) * 64
  }
  perFamily.successes = perFamily.requests!
  perFamily.fetches = MAX.gateway * idField(64)
  Object.assign(PER_FIELD, perFamily)
}

/** The family a key belongs to, for the count by family. */
function familyOf (key: string): string {
  if (key === 'metrics:schema') return 'other'
  if (/^metrics:(model|provider|gateway|index):\{[^}]*\}:sealed:/.test(key)) return 'sealed'
  if (/^metrics:(model|provider|gateway|index):\{[^}]*\}:seals$/.test(key)) return 'seals'
  if (/^metrics:index:\{[a-z_]+\}:flushed:/.test(key)) return 'marker'
  if (key.startsWith('metrics:index:')) return 'index'
  if (key.startsWith('metrics:job:') || key.startsWith('metrics:quota:')) return 'other'
  const m = /^metrics:(model|provider|gateway):\{[^}]*\}:(.*)$/.exec(key)
  if (m === null) return 'unknown'
  const rest = m[2]!
  if (rest.startsWith('flushed:')) return 'marker'
  if (m[1] === 'model' && /^(gateway|provider):/.test(rest)) return 'pair'
  if (rest.startsWith('catalog:')) return 'list'
  return m[1]!
}

const pad = (s: string, n: number): string => s + 'x'.repeat(n - s.length)
/** Distinct ids in each hour (hour offset k), at the longest the API accepts. */
const ids = (k: number) => ({
  model: (i: number) => pad(`h${k}-m${i}/`, 256),
  provider: (i: number) => pad(`h${k}-p${i}`, 64),
  gateway: (i: number) => pad(`h${k}-g${i}`, 64)
})
/** (model, provider, gateway) indexes filling 3 models, 2 providers, 2 gateways, 4 model × gateway and 3 model × provider pairs. */
const COMBOS = [[0, 0, 0], [0, 0, 1], [1, 1, 0], [2, 0, 0]] as const

/** A value spread over many histogram bins (log-uniform over 1 µs … 1 h). */
const spread = (i: number): number => Math.round(10 ** (-3 + ((i * 7919) % 9973) / 9973 * 9.55) * 1000) / 1000

async function post (app: FastifyInstance, route: 'chat' | 'gateway/fetch', body: unknown): Promise<{ statusCode: number, json: () => { code?: string, message?: string, refused?: { type: string } } }> {
  return await app.inject({ method: 'POST', url: `/api/metrics/${route}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
}

t.test('with every cap filled in every hour, Redis holds no more than the formula says, and one more id is refused', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  const config: Partial<Config> = {
    redis: { url: redis.url },
    flushIntervalMs: 20,
    cacheTtlMs: 0,
    retentionHours: R,
    maxIds: { model: MAX.model, provider: MAX.provider, gateway: MAX.gateway },
    maxPairs: { model_gateway: MAX.model_gateway, model_provider: MAX.model_provider },
    maxCatalogIds: CATALOG
  }
  const start = async (): Promise<FastifyInstance> => {
    const app = await buildApp({ config: defaultConfig(config), logger: false })
    await app.ready()
    return app
  }
  let app = await start()
  t.teardown(() => app.close())

  // Every minute from the oldest time the retention accepts to now, every combination of its hour's ids.
  const now = Date.now()
  const hourOffset = (ts: number): number => Math.floor(now / HOUR_MS) - Math.floor(ts / HOUR_MS)
  const oldest = now - R * HOUR_MS + MINUTE_MS
  const chat: unknown[] = []
  const fetches: unknown[] = []
  let i = 0
  for (let ts = oldest; ts <= now; ts += MINUTE_MS) {
    const id = ids(hourOffset(ts))
    for (const [m, p, g] of COMBOS) {
      for (let k = 0; k < 2; k++, i++) {
        const ttft = spread(i)
        const success = i % 5 !== 0
        chat.push({ model: id.model(m), provider: id.provider(p), gateway: id.gateway(g), success, ...(success ? {} : { error_type: ['timeout', 'rate_limit', 'network', 'other'][i % 4] }), ttft_ms: ttft, total_time_ms: Math.min(3_600_000, ttft + spread(i + 1)), input_tokens: i % 997, output_tokens: (i * 31) % 4001, timestamp: ts - k })
      }
    }
    for (let g = 0; g < MAX.gateway; g++) fetches.push({ gateway: id.gateway(g), status: i % 7 === 0 ? 'error' : 'success', response_time_ms: spread(i + g), model_count: 300 + g, timestamp: ts })
  }
  for (let k = 0; k < chat.length; k += 1000) {
    const res = await post(app, 'chat', chat.slice(k, k + 1000))
    t.equal(res.statusCode, 202, `chat batch ${k / 1000}: each hour's own ids fit its caps (${res.json().message ?? 'accepted'})`)
  }
  for (let k = 0; k < fetches.length; k += 1000) t.equal((await post(app, 'gateway/fetch', fetches.slice(k, k + 1000))).statusCode, 202, 'fetches')

  // One model's minute at its largest: every histogram bin the API's values can reach.
  const GAMMA = 1.019 / 0.981
  const bins: unknown[] = []
  const at = { model: ids(0).model(0), provider: ids(0).provider(0), gateway: ids(0).gateway(0), success: true, timestamp: now }
  for (let k = 0; k <= 790; k++) {
    const v = GAMMA ** (k - 0.5) / 1000 // in the middle of bin k (µs, or thousandths of a token/s), as ms or tokens/s
    if (k <= 578) bins.push({ ...at, ttft_ms: Math.min(3_600_000, v) }, { ...at, total_time_ms: Math.min(3_600_000, v) })
    const genMs = Math.min(3_600_000, Math.max(1, 200_000 / v))
    bins.push({ ...at, ttft_ms: 0, total_time_ms: genMs, output_tokens: Math.min(10_000_000, Math.max(1, Math.round(v * genMs / 1000))) })
  }
  for (let k = 0; k < bins.length; k += 1000) t.equal((await post(app, 'chat', bins.slice(k, k + 1000))).statusCode, 202, 'values over every bin')

  // Model lists up to the cap: 11 + 11 + 16 entries for three new lists, then one entry per repeat.
  const cur = ids(0)
  const list = (tag: string, n: number): string[] => Array.from({ length: n }, (_, j) => pad(`list/${tag}${j}-`, 256))
  const lists = [
    { gateway: cur.gateway(0), status: 'success', models: list('a', 10), timestamp: now },
    { gateway: cur.gateway(0), status: 'success', models: list('b', 10), timestamp: now - 1 },
    { gateway: ids(1).gateway(1), status: 'success', models: list('c', 15), timestamp: now - HOUR_MS }
  ]
  t.equal((await post(app, 'gateway/fetch', lists)).statusCode, 202, 'three lists (38 entries, one of them back-dated)')
  t.equal((await post(app, 'gateway/fetch', [{ ...lists[0], timestamp: now - 2 }, { ...lists[1], timestamp: now - 3 }])).statusCode, 202, 'two repeats (40 entries)')
  const oneMore = await post(app, 'gateway/fetch', { ...lists[0], timestamp: now - 4 })
  t.equal(oneMore.statusCode, 429, 'one more model-list entry: 429')
  t.match(oneMore.json(), { code: 'METRICS_TOO_MANY_IDS', message: /METRICS_MAX_CATALOG_IDS/ })
  t.equal((await post(app, 'gateway/fetch', { gateway: cur.gateway(0), status: 'success', response_time_ms: 5, timestamp: now })).statusCode, 202, 'a fetch without a list still passes')

  // One more id of every kind, now and in a past hour.
  const past = now - HOUR_MS
  const old = ids(1)
  const refusals: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a fourth model', { model: cur.model(3), provider: cur.provider(0), gateway: cur.gateway(0) }, /METRICS_MAX_MODELS/],
    ['a third provider', { model: cur.model(0), provider: cur.provider(2), gateway: cur.gateway(0) }, /METRICS_MAX_PROVIDERS/],
    ['a third gateway', { model: cur.model(0), provider: cur.provider(0), gateway: cur.gateway(2) }, /METRICS_MAX_GATEWAYS/],
    ['a fifth model × gateway pair', { model: cur.model(1), provider: cur.provider(1), gateway: cur.gateway(1) }, /METRICS_MAX_MODEL_GATEWAYS/],
    ['a fourth model × provider pair', { model: cur.model(0), provider: cur.provider(1), gateway: cur.gateway(0) }, /METRICS_MAX_MODEL_PROVIDERS/],
    ['a fourth model in the past hour', { model: old.model(3), provider: old.provider(0), gateway: old.gateway(0), timestamp: past }, /in hour .*METRICS_MAX_MODELS/],
    ['this hour\'s model in the past hour (a fourth there)', { model: cur.model(0), provider: old.provider(0), gateway: old.gateway(0), timestamp: past }, /in hour .*METRICS_MAX_MODELS/]
  ]
  for (const [name, event, message] of refusals) {
    const res = await post(app, 'chat', { ...event, success: true })
    t.equal(res.statusCode, 429, `${name}: 429`)
    t.match(res.json(), { code: 'METRICS_TOO_MANY_IDS', message }, `${name}: names the cap`)
  }
  t.equal((await post(app, 'chat', { model: old.model(2), provider: old.provider(0), gateway: old.gateway(0), success: true, timestamp: past })).statusCode, 202, 'known ids of the past hour still pass')
  t.ok(await app.flusher.flush(), 'everything flushed')

  // A restarted instance reads the kept hours at start: the past hour is still full.
  await app.close()
  app = await start()
  const again = await post(app, 'chat', { model: old.model(3), provider: old.provider(0), gateway: old.gateway(0), success: true, timestamp: past })
  t.equal(again.statusCode, 429, 'after a restart, a fourth model in the past hour: still 429')
  t.equal((await post(app, 'chat', { model: old.model(1), provider: old.provider(1), gateway: old.gateway(0), success: true, timestamp: past })).statusCode, 202, 'its known ids pass')
  t.ok(await app.flusher.flush())

  // What Redis holds, as the flushes left it, and again once a sealer pass has moved every closed
  // bucket into blocks.
  const bound = memoryBound({ R, M: MAX.model, P: MAX.provider, G: MAX.gateway, MG: MAX.model_gateway, MP: MAX.model_provider, C: CATALOG, n: 2, modelBytes: 256, nameBytes: 64 })
  const live = await measure(t, redis, bound, 'as flushed')
  t.ok((live.byFamily.model ?? 0) >= MAX.model * 7 * 2, `the fill reached the model caps of at least two hours (${live.byFamily.model} model keys)`)
  const sealer = new Sealer({ store: app.metricsStore, retentionHours: R, log: app.log, member: 'caps' })
  const pass = await sealer.pass(Date.now())
  t.ok(pass.units > 0, `a sealer pass: ${pass.periods} periods, ${pass.units} units, ${pass.bytes} bytes`)
  const sealed = await measure(t, redis, bound, 'sealed')
  t.ok((sealed.byFamily.sealed ?? 0) > 0, `${sealed.byFamily.sealed} blocks`)
  t.ok(sealed.bytes < live.bytes, `sealing shrinks what Redis holds: ${live.bytes} B in ${live.keys} keys → ${sealed.bytes} B in ${sealed.keys} keys`)
})

/** Redis's keys under `metrics:` by family, each within its own bound, and all within the formula. */
async function measure (t: Test, redis: TestRedis, bound: ReturnType<typeof memoryBound>, label: string): Promise<{ keys: number, bytes: number, byFamily: Record<string, number> }> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.client.scan(cursor, 'MATCH', 'metrics:*', 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  const byFamily: Record<string, number> = {}
  let bytes = 0
  let over = 0
  let largest = { key: '', bytes: 0 }
  for (const key of keys) {
    const family = familyOf(key)
    byFamily[family] = (byFamily[family] ?? 0) + 1
    const used = Number(await redis.client.memory('USAGE', key, 'SAMPLES', 0))
    bytes += used
    if (used > largest.bytes) largest = { key, bytes: used }
    const type = await redis.client.type(key)
    const allowed = family === 'sealed' ? blockBound(key, decodeBlock((await redis.client.getBuffer(key))!)) : keyBound(key, type === 'hash' ? await redis.client.hlen(key) : 0)
    if (used > allowed) {
      over++
      t.fail(`${label}: ${key.slice(0, 120)}…: ${used} B > ${allowed} B`)
    }
  }
  t.equal(over, 0, `${label}: every key within its own bound (the largest: ${largest.bytes} B, ${largest.key.replace(/x{20,}/g, '…')})`)
  t.equal(byFamily.unknown, undefined, `${label}: every key belongs to a family of the formula`)
  for (const [family, n] of Object.entries(byFamily)) {
    t.ok(n <= bound.keys[family]!, `${label}: ${family}: ${n} keys ≤ ${bound.keys[family]}`)
  }
  const maxKeys = Object.values(bound.keys).reduce((a, b) => a + b, 0)
  t.ok(keys.length <= maxKeys, `${label}: ${keys.length} keys ≤ ${maxKeys}`)
  t.ok(bytes <= bound.bytes, `${label}: MEMORY USAGE ${bytes} B ≤ ${Math.round(bound.bytes)} B`)
  return { keys: keys.length, bytes, byFamily }
}
