/**
 * The read budget (read/budget.ts): store reads in flight never above METRICS_READ_CONCURRENCY, a
 * bounded queue beyond which reads are refused at once, a time budget, and reads split into bounded
 * MERGE calls and round trips whose results are the same as one unsplit read's.
 */
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { ReadBusyError } from '../../src/errors.js'
import { budgetedReader, ReadBudget, splitReads } from '../../src/read/budget.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { latestValue } from '../../src/store/merge.js'
import type { Fields, GroupWrite, MergeRead } from '../../src/store/types.js'
import { mulberry32 } from '../helpers/random.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** A store whose reads take `delayMs`, recording how many overlap and what each call carried. */
class SlowStore {
  active = 0
  mostActive = 0
  calls: MergeRead[][] = []
  constructor (readonly delayMs: number, readonly inner = new MemoryStore()) {}
  async read (reads: MergeRead[]): Promise<Fields[][]> {
    this.calls.push(reads)
    this.active++
    this.mostActive = Math.max(this.mostActive, this.active)
    try {
      await sleep(this.delayMs)
      return await this.inner.read(reads)
    } finally {
      this.active--
    }
  }
}

const oneKey: MergeRead = { keys: ['k'], slots: [0], nSlots: 1 }

t.test('reads in flight never exceed the concurrency; beyond the queue they are refused at once', async (t) => {
  const store = new SlowStore(5)
  t.teardown(() => store.inner.close())
  const budget = new ReadBudget({ concurrency: 3, queue: 20, msPerSecond: 0, maxWaitMs: 60_000 })
  const reader = budgetedReader(store, budget)
  const outcomes = await Promise.allSettled(Array.from({ length: 200 }, async () => await reader.read([oneKey])))
  const refused = outcomes.filter((o) => o.status === 'rejected')
  t.equal(store.mostActive, 3, 'the store saw at most 3 reads at once')
  t.equal(budget.maxActive, 3, 'and the budget says so')
  t.equal(outcomes.length - refused.length, 23, '3 in flight and 20 waiting were served')
  t.equal(refused.length, 177, 'the rest refused')
  t.ok(refused.every((o) => o.status === 'rejected' && o.reason instanceof ReadBusyError), 'as ReadBusyError')
  t.match((refused[0] as PromiseRejectedResult).reason, { statusCode: 503, code: 'METRICS_READ_BUSY' })
  t.same([budget.admitted, budget.refused, budget.active, budget.queued], [23, 177, 0, 0], 'the counts')
  // Once the queue drained, reads are admitted again.
  t.same(await reader.read([oneKey]), [[{}]])
})

t.test('a read that waited too long is refused; the others still run', async (t) => {
  const store = new SlowStore(60)
  t.teardown(() => store.inner.close())
  const budget = new ReadBudget({ concurrency: 1, queue: 10, msPerSecond: 0, maxWaitMs: 20 })
  const reader = budgetedReader(store, budget)
  const [first, second] = await Promise.allSettled([reader.read([oneKey]), reader.read([oneKey])])
  t.equal(first.status, 'fulfilled')
  t.ok(second.status === 'rejected' && second.reason instanceof ReadBusyError, 'refused after waiting its longest')
  t.equal(budget.queued, 0, 'no longer queued')
})

t.test('the time budget: store time charged beyond it holds reads back until it refills', async (t) => {
  const budget = new ReadBudget({ concurrency: 4, queue: 10, msPerSecond: 1000, maxWaitMs: 10_000 })
  const release = await budget.acquire()
  budget.charge(1050)
  release()
  t.equal(budget.chargedMs, 1050)
  let started = false
  const next = budget.acquire().then((r) => { started = true; return r })
  t.equal(budget.queued, 1, 'the next read waits although no read is in flight')
  t.notOk(started)
  ;(await next)()
  t.ok(started, 'and starts once the budget refilled')
  t.equal(budget.refused, 0)
})

t.test('close refuses whatever waits', async (t) => {
  const budget = new ReadBudget({ concurrency: 1, queue: 10, msPerSecond: 0, maxWaitMs: 10_000 })
  const release = await budget.acquire()
  const waiting = budget.acquire()
  budget.close()
  await t.rejects(waiting, ReadBusyError)
  release()
})

/** Random hashes of every field kind: counters, sums, extremes, latest values, ids as field names. */
async function randomStore (seed: number): Promise<{ store: MemoryStore, keys: string[] }> {
  const rnd = mulberry32(seed)
  const store = new MemoryStore()
  const keys = Array.from({ length: 40 }, (_, i) => `{e}:k${i}`)
  const group: GroupWrite = { marker: '{e}:m', keys: [] }
  for (const key of keys) {
    const ops: GroupWrite['keys'][number]['ops'] = []
    for (let f = 0; f < 12; f++) {
      if (rnd() < 0.3) continue
      ops.push(['i', `n${f}`, String(1 + Math.floor(rnd() * 100))])
    }
    ops.push(['m', 'ttft:min', String(Math.floor(rnd() * 1000))], ['M', 'ttft:max', String(Math.floor(rnd() * 1000))])
    ops.push(['l', 'last:provider', latestValue(Math.floor(rnd() * 1e12), `p${Math.floor(rnd() * 5)}`)])
    // An id that looks like a rule: only a counters read adds it whatever its name.
    ops.push(['i', 'x:max', String(1 + Math.floor(rnd() * 9))])
    group.keys.push({ key, expireAt: Date.now() + 3_600_000, ops })
  }
  await store.applyGroups(1, [group])
  return { store, keys }
}

t.test('a split read answers exactly what the unsplit read answers', async (t) => {
  const { store, keys } = await randomStore(7)
  t.teardown(() => store.close())
  const rnd = mulberry32(11)
  for (let round = 0; round < 50; round++) {
    const reads: MergeRead[] = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
      const nSlots = 1 + Math.floor(rnd() * 5)
      const slotCounters = Array.from({ length: nSlots }, () => rnd() < 0.5)
      const n = Math.floor(rnd() * 90)
      const read: MergeRead = { keys: [], slots: [], nSlots, counters: [] }
      for (let i = 0; i < n; i++) {
        const slot = Math.floor(rnd() * nSlots)
        read.keys.push(keys[Math.floor(rnd() * keys.length)]!)
        read.slots.push(slot)
        // Now and then a slot mixing both kinds: never cut.
        read.counters!.push(rnd() < 0.05 ? !slotCounters[slot]! : slotCounters[slot]!)
      }
      return read
    })
    const maxKeysPerCall = 1 + Math.floor(rnd() * 20)
    const maxKeysPerTrip = maxKeysPerCall + Math.floor(rnd() * 40)
    const recorder = new SlowStore(0, store)
    const budget = new ReadBudget({ concurrency: 1, queue: 0, msPerSecond: 0, maxWaitMs: 1000 })
    const split = await budgetedReader(recorder, budget, { maxKeysPerCall, maxKeysPerTrip }).read(reads)
    t.same(split, await store.read(reads), `round ${round}: the same slots (${maxKeysPerCall} keys per call)`)
    for (const trip of recorder.calls) {
      const tripKeys = trip.reduce((n, r) => n + r.keys.length, 0)
      t.ok(trip.length === 1 || tripKeys <= maxKeysPerTrip, `round ${round}: a round trip of ${tripKeys} keys`)
      for (const call of trip) {
        const mixed = Array.from({ length: call.nSlots }, (_, s) => new Set(call.counters!.filter((_, i) => call.slots[i] === s))).some((kinds) => kinds.size > 1)
        t.ok(mixed || call.keys.length <= maxKeysPerCall, `round ${round}: a call of ${call.keys.length} keys`)
      }
    }
  }
})

t.test('splitReads keeps a small read whole and cuts a large one by slot', async (t) => {
  const small: MergeRead = { keys: ['a', 'b'], slots: [0, 1], nSlots: 2 }
  t.same(splitReads([small], 2).map((p) => p.read), [small])
  const large: MergeRead = { keys: ['a', 'b', 'c', 'd', 'e'], slots: [0, 0, 0, 1, 1], nSlots: 2, counters: [true, true, true, false, false] }
  t.same(splitReads([large], 2).map((p) => [p.read.keys, p.feeds]), [[['a', 'b'], [0]], [['c'], [0]], [['d', 'e'], [1]]])
})

t.test('the time round trips are at the store is charged once, however many overlap', async (t) => {
  let now = 0
  const budget = new ReadBudget({ concurrency: 2, queue: 0, msPerSecond: 1000, maxWaitMs: 1000, now: () => now })
  const a = budget.trip()
  now = 10
  const b = budget.trip()
  now = 30
  a()
  now = 35
  b()
  t.equal(budget.chargedMs, 35, 'two trips over 0–30 and 10–35: 35 ms')
  now = 100
  const c = budget.trip()
  now = 104
  c()
  c()
  t.equal(budget.chargedMs, 39, 'the idle time between is not charged; ending twice charges once')
})

t.test('a round trip is charged until the store answered, not while the service merges what it sent', async (t) => {
  let now = 0
  const budget = new ReadBudget({ concurrency: 2, queue: 0, msPerSecond: 1000, maxWaitMs: 1000, now: () => now })
  const store = {
    async read (reads: MergeRead[], answered?: () => void): Promise<Fields[][]> {
      now += 4 // the store's time
      answered?.()
      now += 40 // merging on the service's side
      return reads.map(() => [{}])
    }
  }
  t.same(await budgetedReader(store, budget).read([oneKey]), [[{}]])
  t.equal(budget.chargedMs, 4, '4 ms at the store charged, the 40 ms merge not')
  const memory = new MemoryStore()
  t.teardown(() => memory.close())
  const plain = { async read (reads: MergeRead[]): Promise<Fields[][]> { now += 7; return await memory.read(reads) } }
  await budgetedReader(plain, budget).read([oneKey])
  t.equal(budget.chargedMs, 11, 'a store that does not say when it answered (the embedded one merges as it reads): the whole call')
})

t.test('read budget settings: defaults, variables, bad values named', async (t) => {
  t.same(loadConfig({}).readBudget, { concurrency: 2, queue: 64, msPerSecond: 500 })
  t.same(loadConfig({ METRICS_READ_CONCURRENCY: '4', METRICS_READ_QUEUE: '0', METRICS_READ_BUDGET_MS: '0' }).readBudget, { concurrency: 4, queue: 0, msPerSecond: 0 })
  for (const [name, value, why] of [
    ['METRICS_READ_CONCURRENCY', '0', /greater or equal to 1/],
    ['METRICS_READ_QUEUE', 'many', /expected integer/],
    ['METRICS_READ_BUDGET_MS', '1001', /less or equal to 1000/]
  ] as Array<[string, string, RegExp]>) {
    const err = t.throws(() => loadConfig({ [name]: value }), ConfigError) as Error
    t.match(err.message, new RegExp(`^invalid ${name}=`), `names ${name}`)
    t.match(err.message, why)
  }
})

t.test('a round trip that failed is not charged: an unreachable store does not hold reads back once it is back', async (t) => {
  let now = 0
  const budget = new ReadBudget({ concurrency: 2, queue: 0, msPerSecond: 500, maxWaitMs: 1000, now: () => now })
  const hung = budget.trip()
  now = 2000
  hung(true)
  t.equal(budget.chargedMs, 0)
  const release = await budget.acquire()
  t.pass('the next read starts at once')
  release()
})

t.test('ending a read twice frees one place', async (t) => {
  const budget = new ReadBudget({ concurrency: 1, queue: 1, msPerSecond: 0, maxWaitMs: 1000 })
  const release = await budget.acquire()
  release()
  release()
  t.equal(budget.active, 0)
  const again = await budget.acquire()
  t.equal(budget.active, 1, 'not below zero, not two places')
  again()
})
