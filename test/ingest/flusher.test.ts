import t from 'tap'
import { Flusher } from '../../src/ingest/flusher.js'
import { MemoryStore } from '../../src/store/memory-store.js'

const log = { info: () => {}, warn: () => {}, error: () => {} } as never

t.test('Flusher.start is idempotent and stop ends the timer', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const f = new Flusher({ store, intervalMs: 10, maxBufferedKeys: 100, retentionHours: 168, log })
  f.start()
  f.start()
  f.addChat({ model: 'a/b', provider: 'a', gateway: 'g', success: true, errorType: null, ttftMs: 1, totalMs: 2, inputTokens: undefined, outputTokens: undefined, ts: Date.now() })
  for (let i = 0; i < 100 && f.pendingEvents > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(f.pendingEvents, 0, 'the timer flushed')
  t.equal(f.flushedEvents, 1, 'once')
  f.stop()
  f.stop()
})
