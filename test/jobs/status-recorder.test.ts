import t from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { Aggregator } from '../../src/ingest/aggregator.js'
import { DEFAULT_THRESHOLDS } from '../../src/metrics/status.js'
import { StatusRecorder } from '../../src/jobs/status-recorder.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { ChatEvent } from '../../src/metrics/events.js'
import { PeekStore } from '../helpers/memory-store-peek.js'

const MINUTE = 60_000

function logger (): { log: FastifyBaseLogger, warnings: Array<[unknown, string]> } {
  const warnings: Array<[unknown, string]> = []
  return { log: { warn: (obj: unknown, msg: string) => { warnings.push([obj, msg]) } } as unknown as FastifyBaseLogger, warnings }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** 10 requests a minute for 20 minutes, the last 6 failing: a change to down in the recent minutes. */
async function seedOutage (store: MemoryStore, now: number): Promise<void> {
  const agg = new Aggregator()
  const last = Math.floor(now / MINUTE) * MINUTE - MINUTE
  for (let k = 20; k >= 0; k--) {
    for (let i = 0; i < 10; i++) {
      const e: ChatEvent = { model: 'rec/m', provider: 'rec', gateway: 'g', success: k > 5, errorType: k > 5 ? null : 'timeout', ttftMs: undefined, totalMs: undefined, inputTokens: undefined, outputTokens: undefined, ts: last - k * MINUTE + i }
      agg.addChat(e)
    }
  }
  await store.applyGroups(1, agg.seal({ now, retentionHours: 168, instanceId: 'seed' }))
}

t.test('a sweep stores each change once, under a marker shared by every instance', async (t) => {
  const now = Date.now()
  let clock = now
  const store = new PeekStore({ now: () => clock })
  t.teardown(() => store.close())
  await seedOutage(store, now)
  const { log } = logger()
  const recorder = new StatusRecorder({ store, th: DEFAULT_THRESHOLDS, retentionHours: 168, log })
  const first = await recorder.sweep(now)
  t.same(first, { entities: 3, transitions: 3, failedGroups: 0 }, 'model, provider and gateway each went down')
  const statusKeys = (await store.keys()).filter((k) => k.includes(':status:'))
  clock = now + 167 * 3_600_000
  const later = await store.fieldNames(statusKeys)
  clock = now
  t.ok(statusKeys.length >= 3 && later.every((f) => f.length > 0), 'status keys are kept for the retention: all held 167 hours later')
  const again = new StatusRecorder({ store, th: DEFAULT_THRESHOLDS, retentionHours: 168, log })
  await again.sweep(now)
  t.same((await store.keys()).filter((k) => k.includes(':status:')), statusKeys, 'another instance in the same minute adds nothing')
  clock = now + 169 * 3_600_000
  t.ok((await store.fieldNames(statusKeys)).every((f) => f.length === 0), 'and expire with it: none is left 169 hours later (the retention after its hour)')
})

t.test('the timer sweeps every interval until stopped', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  let reads = 0
  const read = store.read.bind(store)
  store.read = async (r) => { reads++; return await read(r) }
  const { log, warnings } = logger()
  const recorder = new StatusRecorder({ store, th: DEFAULT_THRESHOLDS, retentionHours: 168, log, intervalMs: 20, offsetMs: 0 })
  await recorder.stop()
  recorder.start()
  recorder.start()
  for (let i = 0; i < 100 && reads < 9; i++) await sleep(20)
  t.ok(reads >= 9, `three sweeps (three index reads each): ${reads} reads`)
  await recorder.stop()
  const after = reads
  await sleep(80)
  t.equal(reads, after, 'no sweep after stop')
  t.same(warnings, [])
})

t.test('instances sharing a store sweep each period once in all: the first to start it', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const { log, warnings } = logger()
  const swept: Array<[string, number]> = []
  const recorders = ['a', 'b', 'c'].map((member) => {
    const r = new StatusRecorder({ store, th: DEFAULT_THRESHOLDS, retentionHours: 168, log, intervalMs: 20, offsetMs: 0, member })
    const sweep = r.sweep.bind(r)
    r.sweep = async (now?: number) => {
      swept.push([member, Math.floor(now! / 20)])
      return await sweep(now)
    }
    return r
  })
  for (const r of recorders) r.start()
  for (let i = 0; i < 100 && swept.length < 6; i++) await sleep(20)
  for (const r of recorders) await r.stop()
  const periods = swept.map(([, p]) => p)
  t.ok(swept.length >= 6, `${swept.length} sweeps`)
  t.equal(new Set(periods).size, periods.length, 'no period swept twice')
  t.same(warnings, [])
})

t.test('failures are logged and left to the next sweep', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await seedOutage(store, Date.now())
  const { log, warnings } = logger()
  store.applyGroups = async (_seq, groups) => groups.map(() => new Error('store down'))
  const recorder = new StatusRecorder({ store, th: DEFAULT_THRESHOLDS, retentionHours: 168, log, intervalMs: 20, offsetMs: 0 })
  recorder.start()
  for (let i = 0; i < 100 && warnings.length === 0; i++) await sleep(20)
  await recorder.stop()
  t.match(warnings[0], [{ failedGroups: 3 }, 'status history: some changes were not stored; the next sweep retries'])
  store.read = async () => { throw new Error('store down') }
  warnings.length = 0
  recorder.start()
  for (let i = 0; i < 100 && warnings.length === 0; i++) await sleep(20)
  await recorder.stop()
  t.match(warnings[0], [{ err: { message: 'store down' } }, 'status history sweep failed; the next one catches up'])
})

t.test('the app runs the recorder and stops it on close', async (t) => {
  const { build } = await import('../helpers/app.js')
  const { app } = await build(t)
  t.type(app.statusRecorder, StatusRecorder)
  t.same(await app.statusRecorder.sweep(), { entities: 0, transitions: 0, failedGroups: 0 }, 'no traffic, nothing to keep')
})
