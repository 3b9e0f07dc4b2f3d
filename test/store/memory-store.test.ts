import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t, { type Test } from 'tap'
import { MemoryStore } from '../../src/store/memory-store.js'
import { MARKER_TTL_MS, type GroupWrite } from '../../src/store/types.js'
import { PeekStore } from '../helpers/memory-store-peek.js'
import { storeContract } from '../helpers/store-contract.js'

const HOUR = 3_600_000

t.test('MemoryStore contract', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  storeContract(t, { store }, 'mem')
})

t.test('MemoryStore expiries, through time', async (t) => {
  let now = 1_000_000
  const store = new PeekStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  const held = async (key: string): Promise<boolean> => (await store.fieldNames([key]))[0]!.length > 0
  const n = async (key: string): Promise<string | undefined> => (await store.read([{ keys: [key], slots: [0], nSlots: 1 }]))[0]![0]!.n

  t.test('a key lives until its expiry, and not at it; one past it is never written', async (t) => {
    const start = now
    const at = start + 2 * HOUR
    await store.applyGroups(1, [{
      marker: 'k:m',
      keys: [
        { key: 'k:a', expireAt: at, ops: [['i', 'n', '1']] },
        { key: 'k:b', expireAt: start - 1000, ops: [['i', 'n', '1']] },
        { key: 'k:c', expireAt: start, ops: [['i', 'n', '1']] }
      ]
    }])
    t.same(await store.keys(), ['k:a'], 'a key whose expiry has come is not written')
    now = at - 1
    t.equal(await held('k:a'), true, 'held until its expiry')
    now = at
    t.equal(await held('k:a'), false, 'gone at it: the expiry is absolute')
    now = start
  })

  t.test('each write sets the key\'s expiry, earlier or later', async (t) => {
    const start = now
    await store.applyGroups(1, [{ marker: 'w:m', keys: [{ key: 'w:a', expireAt: start + 2 * HOUR, ops: [['i', 'n', '1']] }] }])
    await store.applyGroups(2, [{ marker: 'w:m', keys: [{ key: 'w:a', expireAt: start + HOUR, ops: [['i', 'n', '1']] }] }])
    now = start + HOUR - 1
    t.equal(await n('w:a'), '2', 'both writes held until the later write\'s expiry')
    now = start + HOUR
    t.equal(await held('w:a'), false, 'and gone at it')
    await store.applyGroups(3, [{ marker: 'w:m', keys: [{ key: 'w:b', expireAt: now + HOUR, ops: [['i', 'n', '1']] }] }])
    await store.applyGroups(4, [{ marker: 'w:m', keys: [{ key: 'w:b', expireAt: now + 3 * HOUR, ops: [['i', 'n', '1']] }] }])
    now += 3 * HOUR - 1
    t.equal(await n('w:b'), '2', 'a later expiry keeps the key longer')
    now = start
  })

  t.test('a group\'s marker skips its sequence for MARKER_TTL_MS after the write, not longer', async (t) => {
    const start = now
    const g: GroupWrite = { marker: 'g:m', keys: [{ key: 'g:a', expireAt: start + 2 * MARKER_TTL_MS, ops: [['i', 'n', '1']] }] }
    await store.applyGroups(5, [g])
    now = start + MARKER_TTL_MS - 1
    t.same(await store.applyGroups(5, [g]), [null])
    t.equal(await n('g:a'), '1', 'the same sequence is skipped until the marker expires')
    now = start + MARKER_TTL_MS
    await store.applyGroups(5, [g])
    t.equal(await n('g:a'), '2', 'and applied once it has')
    now = start
  })

  t.test('claims are held until their expiry and free at it', async (t) => {
    const start = now
    t.equal(await store.claim('c:j', 'a', start + 400), true)
    now = start + 399
    t.equal(await store.claim('c:j', 'b', now + 400), false, 'held until its expiry')
    now = start + 400
    t.equal(await store.claim('c:j', 'b', now + 400), true, 'taken by another at it')
    now = start
    t.same(await store.claimOnce([{ key: 'c:k', token: 'x', expireAt: start + 400 }]), [true])
    now = start + 399
    t.same(await store.claimOnce([{ key: 'c:k', token: 'y', expireAt: now + 400 }, { key: 'c:k', token: 'x', expireAt: now + 400 }]), [false, true],
      'held by its token until its expiry')
    now = start + 400
    t.same(await store.claimOnce([{ key: 'c:k', token: 'y', expireAt: now + 400 }]), [true], 'taken by another token at it')
    now = start
  })

  t.test('every key written expires', async (t) => {
    t.ok((await store.keys()).length > 0, 'keys are held')
    now += 3 * MARKER_TTL_MS
    t.same(await store.keys(), [], 'none is left once the latest expiry written has passed')
  })
})

// The sweeps free memory, which only the heap shows: each test holds some 20 MB in the store and
// measures the heap after a full collection.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const N = 10_000
const MB = 1_048_576
/** A distinct 2 000-character string (flat, so that it takes its full size). */
const big = (): string => randomBytes(1_000).toString('hex')

function heap (): number {
  gc()
  return process.memoryUsage().heapUsed
}

/** Asserts that the heap has grown since `base` by what N big strings take (20 MB), or by far less. */
function holds (t: Test, base: number, expected: boolean, message: string): void {
  const grown = heap() - base
  t.ok(expected ? grown > 12 * MB : grown < 4 * MB, `${message} (${(grown / MB).toFixed(1)} MB held)`)
}

t.test('MemoryStore sweeps expired keys: their memory is freed', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  const keys = Array.from({ length: N }, (_, i) => `k${i}`)
  const write = async (seq: number, expireAt: number): Promise<void> => {
    await store.applyGroups(seq, [{ marker: 'm', keys: keys.map((key) => ({ key, expireAt, ops: [['i', big(), '1']] })) }])
  }
  const names = async (): Promise<number> => (await store.fieldNames(keys)).filter((f) => f.length > 0).length
  const base = heap()
  await write(1, now + 1000)
  holds(t, base, true, 'the keys take memory')
  store.sweep()
  t.equal(await names(), N, 'a live key survives a sweep')
  holds(t, base, true, 'and its memory is kept')
  now += 1000
  store.sweep()
  holds(t, base, false, 'an expired key is swept')
  await write(2, now + 1000)
  now += 1000
  holds(t, base, true, 'held until swept or read')
  t.equal(await names(), 0, 'an expired key is never read, even before a sweep')
  holds(t, base, false, 'and reading it drops it')
})

t.test('MemoryStore sweeps expired markers: their memory is freed; an expired marker no longer blocks its sequence', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  const base = heap()
  // Each group's key has expired: only its marker is kept.
  await store.applyGroups(1, Array.from({ length: N }, () => ({ marker: big(), keys: [{ key: 'gone', expireAt: now, ops: [['i', 'n', '1']] }] })))
  holds(t, base, true, 'markers take memory')
  now += MARKER_TTL_MS - 1
  store.sweep()
  holds(t, base, true, 'a live marker survives a sweep')
  now += 1
  store.sweep()
  holds(t, base, false, 'an expired marker is swept')
  const g: GroupWrite = { marker: 'm', keys: [{ key: 'a', expireAt: now + 1000, ops: [['i', 'n', '1']] }] }
  await store.applyGroups(1, [g])
  now += MARKER_TTL_MS
  store.sweep()
  await store.applyGroups(1, [{ ...g, keys: [{ ...g.keys[0]!, expireAt: now + 1000 }] }])
  t.same(await store.fieldNames(['a']), [['n']], 'an expired marker no longer blocks its sequence')
})

t.test('MemoryStore sweeps expired shared counters', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  t.same(await store.shareCounts([{ key: 'c', member: 'a', count: 2, expireAt: now + 1000 }, { key: 'c', member: 'b', count: 3, expireAt: now + 1000 }]), [2, 5])
  const base = heap()
  await store.shareCounts(Array.from({ length: N }, () => ({ key: big(), member: 'a', count: 1, expireAt: now + 1000 })))
  holds(t, base, true, 'counters take memory')
  store.sweep()
  holds(t, base, true, 'a live counter survives a sweep')
  now += 1000
  store.sweep()
  holds(t, base, false, 'an expired counter is swept')
  t.same(await store.shareCounts([{ key: 'c', member: 'a', count: 1, expireAt: now + 1000 }]), [1], 'an expired counter starts again')
})

t.test('MemoryStore sweeps expired claims', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 1_000_000 })
  t.teardown(() => store.close())
  t.equal(await store.claim('j', 'a', now + 1000), true)
  const base = heap()
  await Promise.all(Array.from({ length: N }, async () => await store.claim(big(), 'a', now + 1000)))
  holds(t, base, true, 'claims take memory')
  store.sweep()
  t.equal(await store.claim('j', 'b', now + 1000), false, 'a live claim survives a sweep')
  holds(t, base, true, 'and its memory is kept')
  now += 1000
  store.sweep()
  holds(t, base, false, 'an expired claim is swept')
  t.equal(await store.claim('j', 'b', now + 1000), true, 'and can be taken again')
})
