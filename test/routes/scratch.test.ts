import t from 'tap'
import { build } from '../helpers/app.js'

t.test('scratch', async (t) => {
  const { app } = await build(t)
  const show = async (payload: string, url = '/api/metrics/chat') => {
    const r = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload })
    console.log(payload.slice(0, 120), '=>', r.statusCode, r.body)
  }
  await show('{"model":"a","success":true,"__proto__":{"x":1}}')
  await show('{"model":"a","success":true,"constructor":{"prototype":{"x":1}}}')
  await show('null')
  await show('"str"')
  await show('5')
  await show('[]')
  await show('{"success":true}')
  await show('{"model":"a b","success":true}')
  await show('{"model":"a\\u00a0b","success":true}')
  await show('{"model":"a","success":"true"}')
  await show('{"model":"a","success":false,"error_type":"x"}')
  await show('{"model":"a","success":false,"error_type":5}')
  await show('{"model":"a","success":true,"timestamp":"2024-01-01T00:00:00"}')
  await show('{"model":"a","success":true,"timestamp":"hello"}')
  await show(`{"model":"a","success":true,"timestamp":"${new Date(Date.now()-3600000).toISOString().replace('Z','+0000')}"}`)
  await show(`{"model":"a","success":true,"timestamp":"${new Date(Date.now()-3600000).toISOString().replace('Z','+00')}"}`)
  await show(`{"model":"a","success":true,"timestamp":"${new Date(Date.now()-3600000).toISOString().replace('T',' ')}"}`)
  await show('{"gateway":"g","status":"ok"}', '/api/metrics/gateway/fetch')
  await show('{"gateway":"g","status":"success","error_type":"timeout"}', '/api/metrics/gateway/fetch')
  await show('', '/api/metrics/chat')
  for (const q of ['', '?id=x&type=foo', '?id=x&window=2h', '?id=', '?id=x&id=y']) {
    const r = await app.inject({ method: 'GET', url: '/api/metrics/realtime' + q })
    console.log(q, r.statusCode, r.headers['cache-control'], r.body.slice(0, 300))
  }
})
