import t from 'tap'
import { readLeaderboard } from '../../src/read/leaderboard.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { indexKey } from '../../src/store/keys.js'
import { DEFAULT_THRESHOLDS } from '../../src/metrics/status.js'
import { MemoryStore } from '../../src/store/memory-store.js'

t.test('a model in the index whose figures have not landed yet has no provider or percentiles', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const now = Date.now()
  const hour = bucketName('hour', now)
  // The index group landed, the entity's own group not yet (they are separate groups of one flush).
  await store.applyGroups(1, [{ marker: 'm', keys: [{ key: indexKey('model', 'requests', hour), expireAt: now + 3_600_000, ops: [['i', 'a/b', '2']] }] }])
  const board = await readLeaderboard(store, { window: '24h', order: 'desc', limit: 10, minRequests: 1 }, now, DEFAULT_THRESHOLDS)
  t.match(board.entries, [{ rank: 1, model: 'a/b', provider: null, requests: 2, success_rate: 0, ttft_p50_ms: null, total_time_p50_ms: null, uptime: null, status: 'unknown' }])
})
