import t from 'tap'
import { graceMs, gracefulClose } from '../src/shutdown.js'
import { SHUTDOWN_DRAIN_MS } from '../src/plugins/ingest.js'

function fakeApp () {
  const logged: Array<[string, unknown, string]> = []
  const events: string[] = []
  const app = {
    lifecycle: { draining: false },
    log: {
      info: (o: unknown, m: string) => { logged.push(['info', o, m]) },
      error: (o: unknown, m: string) => { logged.push(['error', o, m]) }
    },
    close: async () => { events.push(`close (draining: ${String(app.lifecycle.draining)})`) }
  }
  return { app, logged, events }
}

t.test('gracefulClose turns readiness to draining, waits the delay still serving, then closes', async (t) => {
  const { app, logged, events } = fakeApp()
  const closing = gracefulClose(app as never, 50)({ signal: 'SIGTERM' })
  // Draining at once: readiness answers 503 while the app still serves.
  t.equal(app.lifecycle.draining, true)
  t.same(events, [], 'not closed before the delay')
  await closing
  t.same(events, ['close (draining: true)'])
  t.same(logged, [['info', { signal: 'SIGTERM', delayMs: 50 }, 'closing: readiness is 503; still accepting until the delay ends']])
})

t.test('after an uncaught error gracefulClose closes without the delay', async (t) => {
  const { app, logged, events } = fakeApp()
  const err = new Error('boom')
  const closing = gracefulClose(app as never, 60_000)({ err })
  await closing
  t.same(events, ['close (draining: true)'])
  t.same(logged, [['error', { err }, 'closing after an error']])
})

t.test('close-with-grace allows the delay, the drain and some room', async (t) => {
  t.ok(graceMs(5000) > 5000 + SHUTDOWN_DRAIN_MS)
})
