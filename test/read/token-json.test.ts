/**
 * How token totals are written in JSON (docs/api.md "Token totals"): exact up to 2^53 − 1, the
 * nearest double beyond. Sums that large cannot be reached through the API in a test (9 × 10^8
 * maximal events), so the store here answers every merged stats hash that holds token sums with
 * the sums given below, as decimal strings, exactly as the store contract hands sums back.
 */
import t from 'tap'
import type { MergeRead, Fields } from '../../src/store/types.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { build } from '../helpers/app.js'
import { postEvents } from './fixture.js'

/** The largest sum the store keeps (2^63 − 1), and the largest integer a JSON number holds exactly. */
const LARGEST_SUM = '9223372036854775807'
const SAFE = '9007199254740991'

class LargeSumStore extends MemoryStore {
  constructor (private readonly sums: { in: string, out: string }) {
    super()
  }

  override async read (reads: MergeRead[]): Promise<Fields[][]> {
    const out = await super.read(reads)
    for (const slots of out) {
      for (const fields of slots) {
        if (fields['tokens:in'] !== undefined) fields['tokens:in'] = this.sums.in
        if (fields['tokens:out'] !== undefined) fields['tokens:out'] = this.sums.out
      }
    }
    return out
  }
}

interface Tokens { input_tokens: number, output_tokens: number }

t.test('token sums up to 2^53 − 1 are exact in the JSON; beyond, the nearest double', async (t) => {
  const store = new LargeSumStore({ in: LARGEST_SUM, out: SAFE })
  t.teardown(() => store.close())
  const { app } = await build(t, { store })
  const now = Date.now()
  await postEvents(app, [
    { model: 'big/model', gateway: 'big-gw', success: true, input_tokens: 1, output_tokens: 1, timestamp: now - 1000 },
    { model: 'big/model', gateway: 'big-gw', success: true, input_tokens: 2, output_tokens: 3, timestamp: now - 2000 }
  ])
  const get = async (url: string): Promise<{ raw: string, body: unknown }> => {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, `${url}: 200`)
    return { raw: res.body, body: res.json() }
  }
  const check = (label: string, raw: string, x: Tokens | undefined): void => {
    t.equal(x?.output_tokens, Number.MAX_SAFE_INTEGER, `${label}: 2^53 − 1 exact`)
    t.match(raw, /"output_tokens":9007199254740991\b/, `${label}: 2^53 − 1 written digit for digit`)
    t.equal(x?.input_tokens, 2 ** 63, `${label}: 2^63 − 1 read back as the nearest double, 2^63`)
    t.equal(x?.input_tokens, Number(LARGEST_SUM), `${label}: what JSON.parse makes of the stored digits`)
    t.ok(raw.includes('"input_tokens":9223372036854776000'), `${label}: written as the shortest digits of that double, a plain JSON number`)
  }

  for (const [type, id] of [['model', 'big/model'], ['provider', 'big'], ['gateway', 'big-gw']]) {
    const r = await get(`/api/metrics/realtime?type=${type}&id=${encodeURIComponent(id!)}&window=1h`)
    check(`realtime ${type}`, r.raw, r.body as Tokens)
  }
  const lb = await get('/api/metrics/health/leaderboard?window=1h')
  check('leaderboard', lb.raw, (lb.body as { entries: Tokens[] }).entries[0])
  const ps = await get('/api/metrics/provider/summary?window=1h')
  check('provider summary', ps.raw, (ps.body as { providers: Tokens[] }).providers[0])
  const tr = await get('/api/metrics/trends?model=big/model&metric=tokens&hours=1&resolution=minute')
  const points = (tr.body as { points: Array<Tokens & { count: number, value: number | null }> }).points
  const filled = points.filter((p) => p.count > 0)
  t.ok(filled.length > 0, 'trends: a point holds the requests')
  for (const p of filled) {
    check('trends point', tr.raw, p)
    t.equal(p.value, p.input_tokens + p.output_tokens, 'trends point: value is input + output')
  }
})
