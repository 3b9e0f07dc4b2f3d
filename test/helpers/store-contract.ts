import type { Test } from 'tap'
import { isRefusal, MAX_SUM, type GroupWrite, type MetricsStore } from '../../src/store/types.js'

/**
 * A store under test. `pttl` and `keys` look at its keys from outside, where it has an outside (Redis,
 * through a client of the test's own); with them the contract also checks each key's remaining life.
 * The embedded store has no outside: test/store/memory-store.test.ts checks its expiries through time.
 */
export interface ContractSubject {
  store: MetricsStore
  /** Remaining life of a key in ms, -1 without expiry, -2 when absent (Redis PTTL). */
  pttl?: (key: string) => Promise<number>
  /** Every key the store holds under `prefix`. */
  keys?: (prefix: string) => Promise<string[]>
}

const HOUR = 3_600_000

/**
 * The store contract (src/store/types.ts), run against every store. `prefix` keeps this run's keys
 * apart from other runs on the same store.
 */
export function storeContract (t: Test, subject: ContractSubject, prefix: string): void {
  const { store, pttl, keys } = subject
  const k = (name: string): string => `${prefix}:{e}:${name}`
  const marker = `${prefix}:{e}:flushed:inst`
  const future = Date.now() + HOUR

  const group = (ops: GroupWrite['keys'][number]['ops'], key = k('stats'), expireAt = future): GroupWrite => ({ marker, keys: [{ key, expireAt, ops }] })

  t.test('applies every op by its rule', async (t) => {
    const g = group([['i', 'n', '2'], ['m', 'x:min', '50'], ['M', 'x:max', '50'], ['l', 'last:p', '000000000000100a']], k('ops'))
    t.same(await store.applyGroups(1, [g]), [null])
    const g2 = group([['i', 'n', '3'], ['m', 'x:min', '40'], ['M', 'x:max', '40'], ['l', 'last:p', '000000000000099b']], k('ops'))
    t.same(await store.applyGroups(2, [g2]), [null])
    const g3 = group([['m', 'x:min', '60'], ['M', 'x:max', '70'], ['l', 'last:p', '000000000000100c']], k('ops'))
    await store.applyGroups(3, [g3])
    const [[fields]] = await store.read([{ keys: [k('ops')], slots: [0], nSlots: 1 }]) as [[Record<string, string>]]
    t.same(fields, { n: '5', 'x:min': '40', 'x:max': '70', 'last:p': '000000000000100c' }, 'sum, min, max; equal time: the newer write wins')
  })

  t.test('a group is applied at most once per sequence', async (t) => {
    const m = `${prefix}:{once}:flushed:a`
    const g: GroupWrite = { marker: m, keys: [{ key: `${prefix}:{once}:c`, expireAt: future, ops: [['i', 'n', '1']] }] }
    await store.applyGroups(5, [g])
    t.same(await store.applyGroups(5, [g]), [null], 'the same sequence again is skipped, not an error')
    await store.applyGroups(4, [g])
    let [[f]] = await store.read([{ keys: [`${prefix}:{once}:c`], slots: [0], nSlots: 1 }]) as [[Record<string, string>]]
    t.equal(f.n, '1', 'a repeated or older sequence changes nothing')
    await store.applyGroups(6, [g])
    ;[[f]] = await store.read([{ keys: [`${prefix}:{once}:c`], slots: [0], nSlots: 1 }]) as [[Record<string, string>]]
    t.equal(f.n, '2', 'the next sequence applies')
    const other: GroupWrite = { marker: `${prefix}:{once}:flushed:b`, keys: g.keys }
    await store.applyGroups(5, [other])
    ;[[f]] = await store.read([{ keys: [`${prefix}:{once}:c`], slots: [0], nSlots: 1 }]) as [[Record<string, string>]]
    t.equal(f.n, '3', 'another instance\'s sequence is its own')
    if (pttl !== undefined) {
      const ttl = await pttl(m)
      t.ok(ttl > 23 * HOUR && ttl <= 24 * HOUR, `the marker expires (pttl ${ttl})`)
    }
  })

  t.test('every written key gets its expiry; an expired one is not written', async (t) => {
    const at = Date.now() + 2 * HOUR
    await store.applyGroups(1, [{
      marker: `${prefix}:{ttl}:flushed:a`,
      keys: [
        { key: `${prefix}:{ttl}:a`, expireAt: at, ops: [['i', 'n', '1']] },
        { key: `${prefix}:{ttl}:b`, expireAt: Date.now() - 1000, ops: [['i', 'n', '1']] }
      ]
    }])
    t.same(await store.fieldNames([`${prefix}:{ttl}:a`, `${prefix}:{ttl}:b`]), [['n'], []], 'a key past its expiry is not written')
    if (pttl === undefined || keys === undefined) return
    const ttl = await pttl(`${prefix}:{ttl}:a`)
    t.ok(ttl > 2 * HOUR - 60_000 && ttl <= 2 * HOUR, `expiry is absolute (pttl ${ttl})`)
    t.equal(await pttl(`${prefix}:{ttl}:b`), -2, 'a key past its expiry does not exist')
    for (const key of await keys(prefix)) {
      t.ok(await pttl(key) > 0, `${key} has a TTL`)
    }
  })

  t.test('reads merge keys into slots, in one call for many reads', async (t) => {
    const mk = (i: number): string => `${prefix}:{r}:h${i}`
    const groups: GroupWrite[] = [{ marker: `${prefix}:{r}:flushed:a`, keys: [1, 2, 3].map((i) => ({ key: mk(i), expireAt: future, ops: [['i', 'n', String(i)], ['m', 'v:min', String(10 * i)], ['M', 'v:max', String(10 * i)], ['i', String(-i), '1']] })) }]
    await store.applyGroups(1, groups)
    const res = await store.read([
      { keys: [mk(1), mk(2), mk(3), `${prefix}:{r}:missing`], slots: [0, 0, 1, 1], nSlots: 3 },
      { keys: [], slots: [], nSlots: 1 }
    ])
    t.same(res[0], [{ n: '3', 'v:min': '10', 'v:max': '20', '-1': '1', '-2': '1' }, { n: '3', 'v:min': '30', 'v:max': '30', '-3': '1' }, {}])
    t.same(res[1], [{}])
  })

  t.test('counters keys add every field, even one named like a rule', async (t) => {
    const mk = (i: number): string => `${prefix}:{ids}:b${i}`
    await store.applyGroups(1, [{ marker: `${prefix}:{ids}:flushed:a`, keys: [1, 2].map((i) => ({ key: mk(i), expireAt: future, ops: [['i', 'acme/x:max', String(i)], ['i', 'last:x', String(i)], ['i', 'y:min', '1']] })) }])
    const [[plain], [ruled]] = await store.read([
      { keys: [mk(1), mk(2)], slots: [0, 0], nSlots: 1, counters: [true, true] },
      { keys: [mk(1), mk(2)], slots: [0, 0], nSlots: 1 }
    ]) as [[Record<string, string>], [Record<string, string>]]
    t.same(plain, { 'acme/x:max': '3', 'last:x': '3', 'y:min': '2' }, 'ids as field names are counted')
    t.equal(ruled['y:min'], '1', 'without the flag, field names carry rules')
  })

  t.test('fields named like members of a JavaScript object come back as own fields', async (t) => {
    const mk = (i: number): string => `${prefix}:{proto}:b${i}`
    const odd = ['__proto__', 'toString', 'constructor', 'hasOwnProperty']
    await store.applyGroups(1, [{ marker: `${prefix}:{proto}:flushed:a`, keys: [1, 2].map((i) => ({ key: mk(i), expireAt: future, ops: odd.slice(i - 1).map((f) => ['i', f, String(i)] as ['i', string, string]) })) }])
    const [[merged, one], [ruled]] = await store.read([
      { keys: [mk(1), mk(2), mk(1)], slots: [0, 0, 1], nSlots: 2, counters: [true, true, true] },
      { keys: [mk(1), mk(2)], slots: [0, 0], nSlots: 1 }
    ]) as [[Record<string, string>, Record<string, string>], [Record<string, string>]]
    const expected = [['__proto__', '1'], ['toString', '3'], ['constructor', '3'], ['hasOwnProperty', '3']]
    t.strictSame(Object.entries(merged).sort(), [...expected].sort(), 'merged by counting: each an own field with its sum')
    t.strictSame(Object.entries(ruled).sort(), [...expected].sort(), 'merged by rules: the same')
    t.strictSame(Object.entries(one).sort(), odd.map((f) => [f, '1']).sort(), 'a slot fed by one key: as stored')
    t.equal(Object.getPrototypeOf(merged), Object.prototype, 'the prototype is untouched')
  })

  t.test('a key listed several times feeds each of its slots, by the rules of each', async (t) => {
    const a = `${prefix}:{many}:a`
    const b = `${prefix}:{many}:b`
    const c = `${prefix}:{many}:c`
    const lv = (ts: number, v: string): string => String(ts).padStart(15, '0') + v
    await store.applyGroups(1, [{
      marker: `${prefix}:{many}:flushed:a`,
      keys: [
        { key: a, expireAt: future, ops: [['i', 'n', '2'], ['m', 'x:min', '7'], ['M', 'x:max', '7'], ['l', 'last:p', lv(5, 'a')]] },
        { key: b, expireAt: future, ops: [['i', 'n', '3'], ['m', 'x:min', '4'], ['M', 'x:max', '4'], ['l', 'last:p', lv(6, 'b')]] },
        { key: c, expireAt: future, ops: [['i', 'y:min', '3'], ['i', '17', '1']] }
      ]
    }])
    const missing = `${prefix}:{many}:missing`
    const [slots] = await store.read([{
      keys: [a, b, a, missing, c, c, missing, c, b],
      slots: [0, 0, 1, 1, 2, 2, 2, 3, 3],
      nSlots: 4,
      counters: [false, false, false, false, true, true, true, false, false]
    }])
    t.strictSame(slots, [
      { n: '5', 'x:min': '4', 'x:max': '7', 'last:p': lv(6, 'b') },
      { n: '2', 'x:min': '7', 'x:max': '7', 'last:p': lv(5, 'a') },
      { 'y:min': '6', 17: '2' },
      { 'y:min': '3', 17: '1', n: '3', 'x:min': '4', 'x:max': '4', 'last:p': lv(6, 'b') }
    ], 'every listing counts, by its slot\'s rules; a missing key adds nothing; values come back as strings')
  })

  t.test('a slot fed by one key answers that key as stored; by one missing key, nothing', async (t) => {
    const key = `${prefix}:{one}:a`
    const lv = String(9).padStart(15, '0') + 'p'
    await store.applyGroups(1, [{ marker: `${prefix}:{one}:flushed:a`, keys: [{ key, expireAt: future, ops: [['i', 'n', '4503599627370001'], ['m', 'x:min', '3'], ['l', 'last:p', lv], ['i', '12', '2']] }] }])
    const [slots] = await store.read([{ keys: [key, `${prefix}:{one}:missing`, key], slots: [0, 1, 2], nSlots: 3, counters: [false, false, true] }])
    const stored = { n: '4503599627370001', 'x:min': '3', 'last:p': lv, 12: '2' }
    t.strictSame(slots, [stored, {}, stored], 'fields and values as written, big integers whole')
  })

  t.test('large integer sums stay exact', async (t) => {
    const key = `${prefix}:{big}:s`
    const big = '4503599627370000'
    await store.applyGroups(1, [{ marker: `${prefix}:{big}:flushed:a`, keys: [{ key, expireAt: future, ops: [['i', 'sum', big]] }] }])
    await store.applyGroups(2, [{ marker: `${prefix}:{big}:flushed:a`, keys: [{ key, expireAt: future, ops: [['i', 'sum', '7']] }] }])
    const [[f]] = await store.read([{ keys: [key, key], slots: [0, 0], nSlots: 1 }]) as [[Record<string, string>]]
    t.equal(f.sum, String(2 * (Number(big) + 7)), 'merging a key with itself doubles it exactly')
  })

  t.test('claim: one caller takes a key, every other is refused until it expires; the key expires', async (t) => {
    const job = `${prefix}:{job}:1`
    const soon = Date.now() + 400
    t.equal(await store.claim(job, 'a', soon), true, 'the first caller takes it')
    t.equal(await store.claim(job, 'b', soon), false, 'another caller does not')
    t.equal(await store.claim(job, 'a', soon), false, 'nor the holder a second time')
    if (pttl !== undefined) {
      const ttl = await pttl(job)
      t.ok(ttl > 0 && ttl <= 400, `it expires when asked (${ttl} ms left)`)
    }
    const race = await Promise.all(['a', 'b', 'c'].map(async (m) => await store.claim(`${prefix}:{job}:2`, m, soon)))
    t.equal(race.filter((x) => x).length, 1, 'of three callers at once, one takes it')
    await new Promise((resolve) => setTimeout(resolve, soon + 50 - Date.now()))
    t.equal(await store.claim(job, 'b', Date.now() + 1000), true, 'once expired, it can be taken again')
  })

  t.test('a checked sum that would pass MAX_SUM refuses its whole group, writing nothing; other groups land', async (t) => {
    const m = `${prefix}:{sum}:flushed:a`
    const a = `${prefix}:{sum}:a`
    const b = `${prefix}:{sum}:b`
    const near = String(BigInt(MAX_SUM) - 10n)
    t.same(await store.applyGroups(1, [{ marker: m, keys: [{ key: a, expireAt: future, ops: [['s', 'sum', near]] }] }]), [null], 'up to MAX_SUM is stored')
    const over: GroupWrite = {
      marker: m,
      keys: [
        { key: b, expireAt: future, ops: [['i', 'n', '1'], ['s', 'sum', '5']] },
        { key: a, expireAt: future, ops: [['i', 'n', '1'], ['s', 'sum', '11']] }
      ]
    }
    const fine: GroupWrite = { marker: `${prefix}:{sum2}:flushed:a`, keys: [{ key: `${prefix}:{sum2}:c`, expireAt: future, ops: [['s', 'sum', '3']] }] }
    const [refused, landed] = await store.applyGroups(2, [over, fine])
    t.ok(isRefusal(refused), `refused for its content: ${String((refused as Error | null)?.message)}`)
    t.equal(landed, null, 'the other group lands')
    const [[fa, fb]] = await store.read([{ keys: [a, b], slots: [0, 1], nSlots: 2 }]) as [[Record<string, string>, Record<string, string>]]
    t.same(fa, { sum: near }, 'stored exactly; nothing of the refused group was written, not even to a key checked first')
    t.same(fb, {})
    t.same(await store.fieldNames([b]), [[]], 'the refused group\'s new key is not created')
    if (pttl !== undefined) t.equal(await pttl(b), -2, 'no key created without its expiry')
    t.same(await store.applyGroups(2, [over]), [refused], 'refused again on a retry: never half applied')
    t.same(await store.applyGroups(3, [{ marker: m, keys: [{ key: a, expireAt: future, ops: [['s', 'sum', '10']] }] }]), [null], 'exactly MAX_SUM is stored')
    const [[f]] = await store.read([{ keys: [a], slots: [0], nSlots: 1 }]) as [[Record<string, string>]]
    t.equal(f.sum, MAX_SUM)
  })

  t.test('claimOnce: the first token holds a key, again when it asks again; any other token is refused', async (t) => {
    const soon = Date.now() + 400
    const key = (n: number): string => `${prefix}:idem:{k${n}}`
    t.same(await store.claimOnce([]), [])
    t.same(await store.claimOnce([{ key: key(1), token: 'a:1', expireAt: soon }, { key: key(2), token: 'a:2', expireAt: soon }]), [true, true])
    t.same(await store.claimOnce([{ key: key(1), token: 'b:1', expireAt: soon }, { key: key(2), token: 'a:2', expireAt: soon }]), [false, true],
      'another token is refused; the holder asking again (its first answer lost) still holds it')
    if (pttl !== undefined) {
      const ttl = await pttl(key(1))
      t.ok(ttl > 0 && ttl <= 400, `the claim expires when asked (${ttl} ms left)`)
    }
    const race = await Promise.all(['x', 'y', 'z'].map(async (tok) => await store.claimOnce([{ key: key(3), token: tok, expireAt: soon }])))
    t.equal(race.filter(([won]) => won === true).length, 1, 'of three tokens at once, one holds it')
    await new Promise((resolve) => setTimeout(resolve, soon + 50 - Date.now()))
    t.same(await store.claimOnce([{ key: key(1), token: 'b:1', expireAt: Date.now() + 1000 }]), [true], 'once expired, another token takes it')
  })

  t.test('ping answers', async (t) => {
    await t.resolves(store.ping())
  })
}
