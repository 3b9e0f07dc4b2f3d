import t from 'tap'
import { gracefulClose } from '../src/shutdown.js'

t.test('gracefulClose logs why and closes the app', async (t) => {
  const logged: Array<[string, unknown, string]> = []
  let closed = 0
  const app = {
    log: {
      info: (o: unknown, m: string) => { logged.push(['info', o, m]) },
      error: (o: unknown, m: string) => { logged.push(['error', o, m]) }
    },
    close: async () => { closed++ }
  }
  const close = gracefulClose(app as never)
  await close({ signal: 'SIGTERM' })
  const err = new Error('boom')
  await close({ err })
  t.same(logged, [['info', { signal: 'SIGTERM' }, 'closing'], ['error', { err }, 'closing after an error']])
  t.equal(closed, 2)
})
