import t from 'tap'
import { build } from '../helpers/app.js'

t.test('a cardinality refusal names the id and its cap, and says when to retry', async (t) => {
  const { app, store } = await build(t, { config: { maxIds: { model: 2, provider: 100, gateway: 100 } } })
  for (const model of ['cap/a', 'cap/b']) t.equal((await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model, success: true } })).statusCode, 202)
  const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: [{ model: 'cap/a', success: true }, { model: 'cap/new', success: true }] })
  t.equal(res.statusCode, 429)
  t.match(res.json(), { code: 'METRICS_TOO_MANY_IDS', message: /cap\/new/, refused: { type: 'model', id: 'cap/new', limit: 2 } })
  const retryAfter = Number(res.headers['retry-after'])
  const toNextHour = Math.ceil((3_600_000 - (Date.now() % 3_600_000)) / 1000)
  t.ok(retryAfter >= 1 && retryAfter <= toNextHour + 1, `Retry-After ${retryAfter} s: when the hour turns and the cap starts afresh`)
  await app.flusher.flush()
  const rt = (await app.inject({ url: '/api/metrics/realtime?id=cap/a&window=5m' })).json() as { requests: number }
  t.equal(rt.requests, 1, 'the refused request recorded nothing, not even its known model')
  t.notOk((await store.keys()).some((k) => k.includes('cap/new')))
})

t.test('other refusals carry no refused member', async (t) => {
  const { app } = await build(t)
  const res = await app.inject({ method: 'POST', url: '/api/metrics/chat', payload: { model: 'x/y', success: 'no' } })
  t.equal(res.statusCode, 400)
  t.equal(res.json().refused, undefined)
})
