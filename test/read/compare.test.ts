import t from 'tap'
import { Aggregator } from '../../src/ingest/aggregator.js'
import type { ChatEvent } from '../../src/metrics/events.js'
import { DEFAULT_THRESHOLDS } from '../../src/metrics/status.js'
import { readCompare, readRoute } from '../../src/read/compare.js'
import { MemoryStore } from '../../src/store/memory-store.js'

const NOW = Date.UTC(2026, 2, 10, 12, 30, 15)
const at = (h: number, m: number, s = 0): number => Date.UTC(2026, 2, 10, h, m, s)

function chat (gateway: string, ts: number, over: Partial<ChatEvent> = {}): ChatEvent {
  return { model: 'cmp/m', provider: 'cmp', gateway, success: true, errorType: null, ttftMs: 300, totalMs: 1000, inputTokens: undefined, outputTokens: 100, ts, ...over }
}

t.test('pairs with traffic in the window, by requests then name', async (t) => {
  const store = new MemoryStore({ now: () => NOW })
  t.teardown(() => store.close())
  const agg = new Aggregator()
  for (const g of ['g-c', 'g-a', 'g-b']) for (let i = 0; i < 3; i++) agg.addChat(chat(g, at(12, 28, i)))
  agg.addChat(chat('g-old', at(12, 10)))
  await store.applyGroups(1, agg.seal({ now: NOW, retentionHours: 168, instanceId: 'i' }))
  const c = await readCompare(store, 'cmp/m', '5m', NOW, DEFAULT_THRESHOLDS)
  t.same(c.gateways.map((g) => g.gateway), ['g-a', 'g-b', 'g-c'], 'equal requests: by name; g-old served the model this hour, but not in the window')
  t.same(c.providers.map((p) => [p.provider, p.requests]), [['cmp', 9]])
  const all = await readCompare(store, 'cmp/m', '1h', NOW, DEFAULT_THRESHOLDS)
  t.same(all.gateways.map((g) => [g.gateway, g.requests]), [['g-a', 3], ['g-b', 3], ['g-c', 3], ['g-old', 1]])
  const route = await readRoute(store, 'cmp/m', 'gateway', '5m', NOW, DEFAULT_THRESHOLDS)
  t.same(route.candidates.map((x) => [x.id, x.status]), [['g-a', 'unknown'], ['g-b', 'unknown'], ['g-c', 'unknown']], 'too few requests to judge any of them')
  t.equal(route.recommended, 'g-a', 'unknown is not down: the first is recommended')
  t.equal(route.candidates[1]?.reason, 'same figures as rank 1; by id')
})
