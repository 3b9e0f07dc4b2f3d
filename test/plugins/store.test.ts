import t from 'tap'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { freePort } from '../helpers/redis.js'

t.test('Redis not answering at start-up: the service serves anyway and says so', async (t) => {
  const port = await freePort()
  const lines: string[] = []
  const app = await buildApp({
    config: defaultConfig({ redis: { url: `redis://127.0.0.1:${port}` } }),
    logger: { level: 'info', stream: { write: (l: string) => { lines.push(l) } } }
  })
  t.teardown(() => app.close())
  await app.ready()
  t.ok(lines.some((l) => l.includes('redis is not answering')), 'one error line says so')
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 503, 'not ready')
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'alive')
})
