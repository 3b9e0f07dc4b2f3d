import t, { type Test } from 'tap'
import { SnapshotHub, type Topic } from '../../src/stream/hub.js'
import { until } from '../helpers/sse.js'

const INTERVAL = 25
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

function hub (t: Test): SnapshotHub {
  const h = new SnapshotHub({ intervalMs: INTERVAL, describeError: (err) => ({ message: (err as Error).message }) })
  t.teardown(() => { h.close() })
  return h
}

/** A topic whose every load answers the next number, counting its loads. */
function counter (key: string): Topic & { loads: number } {
  const topic = {
    event: key,
    key,
    loads: 0,
    load: async () => ({ n: ++topic.loads })
  }
  return topic
}

t.test('many listeners of one snapshot share one computation per interval', async (t) => {
  const h = hub(t)
  const a = counter('a')
  const b = counter('b')
  const seen: number[][] = Array.from({ length: 50 }, () => [])
  const leave = seen.map((list, i) => h.subscribe(i % 2 === 0 ? [a, b] : [a], (event, data) => {
    if (event === 'a') list.push((JSON.parse(data) as { n: number }).n)
  }))
  t.equal(h.topics, 2, 'two distinct snapshots')
  await until(() => seen[0]!.length >= 4, 'four frames')
  for (const l of leave) l()
  const frames = seen[0]!
  for (const list of seen) t.same(list, frames, 'every listener got the same frames')
  t.same(frames, frames.map((_, i) => i + 1), 'each frame is a new computation')
  t.ok(a.loads <= frames.length + 1, `${a.loads} loads for ${frames.length} frames to each of 50 listeners (not ${50 * frames.length})`)
  t.equal(h.topics, 0, 'no snapshot left once everyone left')
  const loads = a.loads + b.loads
  await sleep(INTERVAL * 4)
  t.equal(a.loads + b.loads, loads, 'no computation after the last listener left (its timer is gone)')
})

t.test('a listener joining an existing snapshot gets the last frame at once', async (t) => {
  const h = hub(t)
  const a = counter('a')
  const first: string[] = []
  const leaveFirst = h.subscribe([a], (_e, d) => { first.push(d) })
  await until(() => first.length >= 1, 'a first frame')
  const late: string[] = []
  const leaveLate = h.subscribe([a], (_e, d) => { late.push(d) })
  t.same(late, [first.at(-1)], 'replayed synchronously')
  leaveFirst()
  leaveLate()
})

t.test('an unchanged snapshot is not sent again; a failed one is sent as an error event, once', async (t) => {
  const h = hub(t)
  let answer: { ok: boolean } | Error = { ok: true }
  let loads = 0
  const topic: Topic = {
    event: 'x',
    key: 'x',
    load: async () => {
      loads++
      if (answer instanceof Error) throw answer
      return answer
    }
  }
  const got: Array<[string, unknown]> = []
  const leave = h.subscribe([topic], (e, d) => { got.push([e, JSON.parse(d)]) })
  await until(() => loads >= 4, 'four loads')
  t.same(got, [['x', { ok: true }]], 'one frame for four identical loads')
  answer = new Error('store down')
  await until(() => loads >= 8, 'four more loads')
  t.same(got.slice(1), [['error', { topic: 'x', message: 'store down' }]], 'the failure once, naming the topic')
  answer = { ok: true }
  await until(() => got.length >= 3, 'the recovery')
  t.same(got[2], ['x', { ok: true }], 'the snapshot again after the failure')
  leave()
})

t.test('a slow load is not piled up', async (t) => {
  const h = hub(t)
  let running = 0
  let most = 0
  let loads = 0
  const topic: Topic = {
    event: 'slow',
    key: 'slow',
    load: async () => {
      loads++
      most = Math.max(most, ++running)
      await sleep(INTERVAL * 3)
      running--
      return { loads }
    }
  }
  const leave = h.subscribe([topic], () => {})
  await until(() => loads >= 3, 'three loads')
  leave()
  t.equal(most, 1, 'one load at a time')
})

t.test('close stops every snapshot; leaving afterwards is harmless', async (t) => {
  const h = new SnapshotHub({ intervalMs: INTERVAL, describeError: () => ({}) })
  const a = counter('a')
  const leave = h.subscribe([a], () => {})
  await until(() => a.loads >= 1, 'a load')
  h.close()
  t.equal(h.topics, 0)
  const loads = a.loads
  await sleep(INTERVAL * 4)
  t.equal(a.loads, loads, 'no load after close')
  leave()
  t.equal(h.topics, 0)
})
