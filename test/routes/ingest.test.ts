import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from '../helpers/app.js'

const MINUTE = 60_000
const HOUR = 3_600_000
const CHAT = '/api/metrics/chat'
const FETCH = '/api/metrics/gateway/fetch'

type Json = Record<string, unknown>

interface ErrorBody { statusCode: number, error: string, message: string, code?: string }

interface StatsBody { count: number, avg: number | null, min: number | null, max: number | null, p50: number | null, p90: number | null, p95: number | null, p99: number | null }

interface RealtimeBody {
  type: string
  id: string
  requests: number
  successes: number
  failures: number
  errors: { timeout: number, rate_limit: number, network: number, other: number }
  ttft_ms: StatsBody
  total_time_ms: StatsBody
  gateway_fetches?: { fetches: number, errors: number, timeouts: number, response_time_ms: StatsBody, last_model_count: number | null }
}

async function post (app: FastifyInstance, url: string, body: unknown): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
}

async function postRaw (app: FastifyInstance, url: string, payload: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload })
}

/** Flushes until nothing is pending (a timer-started flush may be running when we ask). */
async function flushAll (app: FastifyInstance): Promise<void> {
  for (let i = 0; i < 20; i++) if (await app.flusher.flush()) return
  throw new Error('buffer did not flush')
}

async function realtime (app: FastifyInstance, type: string, id: string, window = '1h'): Promise<RealtimeBody> {
  const res = await app.inject({ method: 'GET', url: `/api/metrics/realtime?type=${type}&id=${encodeURIComponent(id)}&window=${window}` })
  if (res.statusCode !== 200) throw new Error(`realtime answered ${res.statusCode}: ${res.body}`)
  return res.json<RealtimeBody>()
}

/** A 400 in Fastify's error shape whose message names `field` (exact path, not a longer one). */
function assertBadRequest (t: Test, res: LightMyRequestResponse, field: string, label: string): void {
  t.equal(res.statusCode, 400, `${label}: status 400`)
  let body: ErrorBody
  try {
    body = res.json<ErrorBody>()
  } catch {
    t.fail(`${label}: body is JSON`, { body: res.body })
    return
  }
  t.same(Object.keys(body).filter((k) => !['statusCode', 'error', 'message', 'code'].includes(k)), [], `${label}: only the error-shape keys`)
  t.equal(body.statusCode, 400, `${label}: statusCode`)
  t.equal(body.error, 'Bad Request', `${label}: error`)
  t.type(body.message, 'string', `${label}: message is a string`)
  if (body.code !== undefined) t.type(body.code, 'string', `${label}: code is a string`)
  // the field is named as a path segment: `body.model` must not be satisfied by `body.model_count`
  const escaped = field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  t.match(body.message, new RegExp(`(^|\\s)${escaped}(\\s|$)`), `${label}: message names ${field}`)
}

const iso = (ms: number): string => new Date(ms).toISOString()

/** `ms` written in local time at UTC+02:00, e.g. 2024-05-01T14:00:00.000+02:00 for 12:00Z. */
function isoPlus2 (ms: number): string {
  return new Date(ms + 2 * HOUR).toISOString().replace('Z', '+02:00')
}

const chatOk = (extra: Json = {}): Json => ({ model: 'acme/model-1', success: true, ...extra })
const without = (o: Json, key: string): Json => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key))

interface Case { name: string, event: Json, field: string }

/** Every rule of docs/api.md's chat table that must answer 400, one row each. */
function chatInvalidCases (now: number): Case[] {
  return [
    { name: 'missing model', event: { success: true }, field: 'model' },
    { name: 'empty model', event: chatOk({ model: '' }), field: 'model' },
    { name: '257-char model', event: chatOk({ model: 'm'.repeat(257) }), field: 'model' },
    { name: 'model not a string', event: chatOk({ model: 42 }), field: 'model' },
    { name: 'model with a space', event: chatOk({ model: 'acme/model 1' }), field: 'model' },
    { name: 'model with a tab', event: chatOk({ model: 'acme/model\t1' }), field: 'model' },
    { name: 'model with a newline', event: chatOk({ model: 'acme/model\n1' }), field: 'model' },
    { name: 'model with a control char (U+0001)', event: chatOk({ model: 'acme/model\u00011' }), field: 'model' },
    { name: 'model with DEL (U+007F)', event: chatOk({ model: 'acme/model\u007f1' }), field: 'model' },
    { name: 'model with NBSP', event: chatOk({ model: 'acme/model\u00a01' }), field: 'model' },
    { name: 'provider empty (0 chars)', event: chatOk({ provider: '' }), field: 'provider' },
    { name: 'provider 65 chars', event: chatOk({ provider: 'p'.repeat(65) }), field: 'provider' },
    { name: 'gateway empty (0 chars)', event: chatOk({ gateway: '' }), field: 'gateway' },
    { name: 'gateway 65 chars', event: chatOk({ gateway: 'g'.repeat(65) }), field: 'gateway' },
    { name: 'success missing', event: { model: 'acme/model-1' }, field: 'success' },
    { name: 'success is the string "true"', event: chatOk({ success: 'true' }), field: 'success' },
    { name: 'success is 1', event: chatOk({ success: 1 }), field: 'success' },
    { name: 'ttft_ms negative', event: chatOk({ ttft_ms: -1 }), field: 'ttft_ms' },
    { name: 'ttft_ms 3 600 001', event: chatOk({ ttft_ms: 3_600_001 }), field: 'ttft_ms' },
    { name: 'ttft_ms a string', event: chatOk({ ttft_ms: '100' }), field: 'ttft_ms' },
    { name: 'total_time_ms negative', event: chatOk({ total_time_ms: -0.5 }), field: 'total_time_ms' },
    { name: 'total_time_ms 3 600 001', event: chatOk({ total_time_ms: 3_600_001 }), field: 'total_time_ms' },
    { name: 'total_time_ms a string', event: chatOk({ total_time_ms: '100' }), field: 'total_time_ms' },
    { name: 'error_type not in the enum', event: chatOk({ success: false, error_type: 'fatal' }), field: 'error_type' },
    { name: 'error_type with success:true', event: chatOk({ success: true, error_type: 'timeout' }), field: 'error_type' },
    { name: 'error_type other with success:true', event: chatOk({ success: true, error_type: 'other' }), field: 'error_type' },
    { name: 'input_tokens non-integer', event: chatOk({ input_tokens: 1.5 }), field: 'input_tokens' },
    { name: 'input_tokens negative', event: chatOk({ input_tokens: -1 }), field: 'input_tokens' },
    { name: 'input_tokens 10 000 001', event: chatOk({ input_tokens: 10_000_001 }), field: 'input_tokens' },
    { name: 'input_tokens a string', event: chatOk({ input_tokens: '5' }), field: 'input_tokens' },
    { name: 'output_tokens non-integer', event: chatOk({ output_tokens: 2.25 }), field: 'output_tokens' },
    { name: 'output_tokens negative', event: chatOk({ output_tokens: -3 }), field: 'output_tokens' },
    { name: 'output_tokens 10 000 001', event: chatOk({ output_tokens: 10_000_001 }), field: 'output_tokens' },
    { name: 'timestamp older than the retention (168 h), epoch ms', event: chatOk({ timestamp: now - 168 * HOUR - MINUTE }), field: 'timestamp' },
    { name: 'timestamp older than the retention (168 h), ISO', event: chatOk({ timestamp: iso(now - 168 * HOUR - MINUTE) }), field: 'timestamp' },
    { name: 'timestamp more than 5 minutes ahead, epoch ms', event: chatOk({ timestamp: now + 6 * MINUTE }), field: 'timestamp' },
    { name: 'timestamp more than 5 minutes ahead, ISO', event: chatOk({ timestamp: iso(now + 6 * MINUTE) }), field: 'timestamp' },
    { name: 'timestamp ISO without zone', event: chatOk({ timestamp: iso(now - MINUTE).slice(0, -1) }), field: 'timestamp' },
    { name: 'timestamp a date without time', event: chatOk({ timestamp: iso(now).slice(0, 10) }), field: 'timestamp' },
    { name: 'timestamp a non-date string', event: chatOk({ timestamp: 'yesterday at noon' }), field: 'timestamp' },
    { name: 'timestamp a boolean', event: chatOk({ timestamp: true }), field: 'timestamp' }
  ]
}

t.test('POST /api/metrics/chat', async (t) => {
  t.test('each field rule answers 400 naming the field (single event and third event of a batch)', async (t) => {
    const { app, store } = await build(t)
    const now = Date.now()
    for (const c of chatInvalidCases(now)) {
      assertBadRequest(t, await post(app, CHAT, c.event), `body.${c.field}`, c.name)
      const batch = [chatOk({ model: 'acme/batch-0' }), chatOk({ model: 'acme/batch-1' }), c.event, chatOk({ model: 'acme/batch-3' })]
      assertBadRequest(t, await post(app, CHAT, batch), `body[2].${c.field}`, `${c.name} (batch)`)
    }
    await flushAll(app)
    t.same(await store.keys(), [], 'no rejected request recorded anything')
  })

  t.test('bodies that are not an event or a batch of 1..1000 answer 400 naming the body', async (t) => {
    const { app, store } = await build(t)
    const cases: Array<[string, string]> = [
      ['null', 'null'],
      ['a string', '"acme/model-1"'],
      ['a number', '42'],
      ['true', 'true'],
      ['an empty array', '[]']
    ]
    for (const [name, payload] of cases) assertBadRequest(t, await postRaw(app, CHAT, payload), 'body', name)
    const many = Array.from({ length: 1001 }, (_, i) => chatOk({ model: `acme/m-${i}` }))
    assertBadRequest(t, await post(app, CHAT, many), 'body', '1001 events')
    assertBadRequest(t, await post(app, CHAT, [chatOk(), null]), 'body[1]', 'null inside a batch')
    assertBadRequest(t, await post(app, CHAT, [chatOk(), 'x']), 'body[1]', 'a string inside a batch')
    assertBadRequest(t, await post(app, CHAT, [[chatOk()]]), 'body[0]', 'an array inside a batch')
    await flushAll(app)
    t.same(await store.keys(), [], 'nothing recorded')
  })

  t.test('boundary values are accepted', async (t) => {
    const { app } = await build(t)
    const now = Date.now()
    const cases: Array<[string, Json]> = [
      ['ttft_ms 0', chatOk({ ttft_ms: 0 })],
      ['ttft_ms 3 600 000', chatOk({ ttft_ms: 3_600_000 })],
      ['total_time_ms 0', chatOk({ total_time_ms: 0 })],
      ['total_time_ms 3 600 000', chatOk({ total_time_ms: 3_600_000 })],
      ['fractional ms', chatOk({ ttft_ms: 0.5, total_time_ms: 1234.5678 })],
      ['256-char model', chatOk({ model: 'm'.repeat(256) })],
      ['1-char model', chatOk({ model: 'm' })],
      ['model with / and :', chatOk({ model: 'openai/gpt-4o:online' })],
      ['64-char provider', chatOk({ provider: 'p'.repeat(64) })],
      ['1-char provider', chatOk({ provider: 'p' })],
      ['64-char gateway', chatOk({ gateway: 'g'.repeat(64) })],
      ['input/output tokens 0', chatOk({ input_tokens: 0, output_tokens: 0 })],
      ['input/output tokens 10 000 000', chatOk({ input_tokens: 10_000_000, output_tokens: 10_000_000 })],
      ['every error_type with success:false', chatOk({ success: false, error_type: 'timeout' })],
      ['error_type rate_limit', chatOk({ success: false, error_type: 'rate_limit' })],
      ['error_type network', chatOk({ success: false, error_type: 'network' })],
      ['error_type other', chatOk({ success: false, error_type: 'other' })],
      ['success:false without error_type', chatOk({ success: false })],
      ['timestamp ISO with Z', chatOk({ timestamp: iso(now - MINUTE) })],
      ['timestamp ISO with +02:00', chatOk({ timestamp: isoPlus2(now - MINUTE) })],
      ['timestamp epoch ms', chatOk({ timestamp: now - MINUTE })],
      ['timestamp 167 hours ago', chatOk({ timestamp: now - 167 * HOUR })],
      ['timestamp 4 minutes ahead', chatOk({ timestamp: now + 4 * MINUTE })]
    ]
    for (const [name, event] of cases) {
      const res = await post(app, CHAT, event)
      t.equal(res.statusCode, 202, name)
      t.same(res.json(), { accepted: 1 }, `${name}: body`)
    }
  })

  t.test('exactly 1000 events are accepted and recorded', async (t) => {
    const { app } = await build(t)
    const batch = Array.from({ length: 1000 }, (_, i) => chatOk({ model: 'acme/thousand', success: i % 4 !== 0 }))
    const res = await post(app, CHAT, batch)
    t.equal(res.statusCode, 202)
    t.same(res.json(), { accepted: 1000 })
    await flushAll(app)
    const rt = await realtime(app, 'model', 'acme/thousand', '5m')
    t.equal(rt.requests, 1000, 'requests')
    t.equal(rt.successes, 750, 'successes')
    t.equal(rt.failures, 250, 'failures')
    t.equal(rt.errors.other, 250, 'failures without error_type count as other')
  })

  t.test('batch rejection is all-or-nothing', async (t) => {
    const { app, store } = await build(t)
    const batch = Array.from({ length: 10 }, (_, i) => chatOk({ model: 'acme/all-or-nothing', ttft_ms: 100 + i }))
    batch.push(chatOk({ model: 'acme/all-or-nothing', ttft_ms: -1 }))
    assertBadRequest(t, await post(app, CHAT, batch), 'body[10].ttft_ms', 'last event bad')
    const late = [...batch.slice(0, 10), chatOk({ model: 'acme/all-or-nothing', timestamp: Date.now() + HOUR })]
    assertBadRequest(t, await post(app, CHAT, late), 'body[10].timestamp', 'last event in the future')
    const mixed = [...batch.slice(0, 10), chatOk({ model: 'acme/all-or-nothing', error_type: 'network' })]
    assertBadRequest(t, await post(app, CHAT, mixed), 'body[10].error_type', 'last event error_type with success')
    await flushAll(app)
    t.same(await store.keys(), [], 'store holds no key')
    t.equal(app.flusher.pendingEvents, 0, 'nothing buffered')
    const rt = await realtime(app, 'model', 'acme/all-or-nothing', '5m')
    t.equal(rt.requests, 0, 'realtime shows 0 requests')
    t.equal(rt.ttft_ms.count, 0, 'realtime shows no ttft sample')
  })

  t.test('unknown fields are ignored', async (t) => {
    const { app } = await build(t)
    const res = await post(app, CHAT, chatOk({ model: 'acme/unknown-fields', colour: 'blue', nested: { a: [1, 2] }, latency: 'slow', Model: 'x y' }))
    t.equal(res.statusCode, 202)
    t.same(res.json(), { accepted: 1 })
    await flushAll(app)
    t.equal((await realtime(app, 'model', 'acme/unknown-fields', '5m')).requests, 1, 'recorded')
  })

  t.test('__proto__ and constructor.prototype in the body neither pollute nor crash', async (t) => {
    const { app } = await build(t)
    const payloads = [
      '{"model":"acme/proto","success":true,"__proto__":{"polluted":"yes","success":false}}',
      '{"__proto__":{"model":"acme/proto","success":true}}',
      '[{"model":"acme/proto","success":true},{"model":"acme/proto","success":true,"__proto__":{"polluted":"yes"}}]',
      '{"model":"acme/proto","success":true,"constructor":{"prototype":{"polluted":"yes"}}}'
    ]
    for (const payload of payloads) {
      const res = await postRaw(app, CHAT, payload)
      t.ok(res.statusCode < 500, `no 5xx for ${payload}`)
      t.equal(res.statusCode, 400, `400 for ${payload}`)
      const body = res.json<ErrorBody>()
      t.equal(body.statusCode, 400, 'error shape: statusCode')
      t.equal(body.error, 'Bad Request', 'error shape: error')
      t.type(body.message, 'string', 'error shape: message')
    }
    t.equal(({} as Json).polluted, undefined, 'Object.prototype not polluted')
    t.equal(Object.hasOwn(Object.prototype, 'polluted'), false, 'no polluted key on Object.prototype')
    const ok = await post(app, CHAT, chatOk({ model: 'acme/after-proto' }))
    t.equal(ok.statusCode, 202, 'service still records afterwards')
    await flushAll(app)
    t.equal((await realtime(app, 'model', 'acme/proto', '5m')).requests, 0, 'nothing recorded from the rejected bodies')
  })

  t.test('defaults: provider from the model, gateway default, error_type other', async (t) => {
    const { app } = await build(t)
    // [model, provider that docs/api.md's extractProvider rule gives]
    const derived: Array<[string, string]> = [
      ['anthropic/claude-3.5-sonnet', 'anthropic'],
      ['openai/gpt-4o:online', 'openai'],
      ['mistral:tiny', 'mistral'],
      ['plainmodel', 'unknown'],
      ['/leading-slash', 'unknown'],
      [':leading-colon', 'unknown'],
      ['x:y/z', 'x:y']
    ]
    for (const [model] of derived) t.equal((await post(app, CHAT, { model, success: true })).statusCode, 202, `${model} accepted`)
    t.equal((await post(app, CHAT, { model: 'vendor/explicit', provider: 'someone-else', gateway: 'gw-explicit', success: true })).statusCode, 202)
    t.equal((await post(app, CHAT, { model: 'vendor/failing', success: false })).statusCode, 202)
    t.equal((await post(app, CHAT, { model: 'vendor/failing', success: false, error_type: 'timeout' })).statusCode, 202)
    await flushAll(app)

    const expected = new Map<string, number>()
    for (const [, p] of derived) expected.set(p, (expected.get(p) ?? 0) + 1)
    for (const [provider, n] of expected) {
      t.equal((await realtime(app, 'provider', provider, '5m')).requests, n, `provider ${provider} has ${n} request(s)`)
    }
    t.equal((await realtime(app, 'provider', 'someone-else', '5m')).requests, 1, 'explicit provider used')
    t.equal((await realtime(app, 'provider', 'vendor', '5m')).requests, 2, 'vendor only has the events without an explicit provider')
    t.equal((await realtime(app, 'gateway', 'default', '5m')).requests, derived.length + 2, 'gateway defaults to "default"')
    t.equal((await realtime(app, 'gateway', 'gw-explicit', '5m')).requests, 1, 'explicit gateway used')
    const failing = await realtime(app, 'model', 'vendor/failing', '5m')
    t.same(failing.errors, { timeout: 1, rate_limit: 0, network: 0, other: 1 }, 'error_type defaults to other')
    t.equal(failing.failures, 2)
  })

  t.test('accepted timestamps land at their time', async (t) => {
    const { app } = await build(t)
    const now = Date.now()
    t.equal((await post(app, CHAT, chatOk({ model: 'acme/ts-offset', timestamp: isoPlus2(now - MINUTE) }))).statusCode, 202)
    t.equal((await post(app, CHAT, chatOk({ model: 'acme/ts-z', timestamp: iso(now - MINUTE) }))).statusCode, 202)
    t.equal((await post(app, CHAT, chatOk({ model: 'acme/ts-epoch', timestamp: now - MINUTE }))).statusCode, 202)
    t.equal((await post(app, CHAT, chatOk({ model: 'acme/ts-old', timestamp: iso(now - 3 * HOUR) }))).statusCode, 202)
    await flushAll(app)
    for (const model of ['acme/ts-offset', 'acme/ts-z', 'acme/ts-epoch']) {
      t.equal((await realtime(app, 'model', model, '5m')).requests, 1, `${model} counted a minute ago`)
    }
    t.equal((await realtime(app, 'model', 'acme/ts-old', '1h')).requests, 0, '3 h ago not in 1h')
    t.equal((await realtime(app, 'model', 'acme/ts-old', '6h')).requests, 1, '3 h ago in 6h')
  })

  t.test('METRICS_RETENTION_HOURS bounds the timestamp', async (t) => {
    const { app } = await build(t, { config: { retentionHours: 2 } })
    const now = Date.now()
    assertBadRequest(t, await post(app, CHAT, chatOk({ timestamp: now - 3 * HOUR })), 'body.timestamp', '3 h old with 2 h retention')
    assertBadRequest(t, await post(app, CHAT, [chatOk(), chatOk({ timestamp: iso(now - 2 * HOUR - MINUTE) })]), 'body[1].timestamp', 'ISO 2 h 1 min old with 2 h retention')
    const ok = await post(app, CHAT, chatOk({ timestamp: now - HOUR }))
    t.equal(ok.statusCode, 202, '1 h old accepted')
  })

  t.test('malformed JSON answers 400 and records nothing', async (t) => {
    const { app, store } = await build(t)
    const res = await app.inject({ method: 'POST', url: CHAT, headers: { 'content-type': 'application/json' }, payload: '{"model":' })
    t.equal(res.statusCode, 400, 'malformed JSON is a 400')
    await flushAll(app)
    t.same(await store.keys(), [])
  })
})

const fetchOk = (extra: Json = {}): Json => ({ gateway: 'gw-one', status: 'success', ...extra })

function fetchInvalidCases (now: number): Case[] {
  return [
    { name: 'missing gateway', event: without(fetchOk(), 'gateway'), field: 'gateway' },
    { name: 'empty gateway', event: fetchOk({ gateway: '' }), field: 'gateway' },
    { name: 'gateway 65 chars', event: fetchOk({ gateway: 'g'.repeat(65) }), field: 'gateway' },
    { name: 'gateway with a control char', event: fetchOk({ gateway: 'gw\u0000one' }), field: 'gateway' },
    { name: 'gateway not a string', event: fetchOk({ gateway: 7 }), field: 'gateway' },
    { name: 'missing status', event: without(fetchOk(), 'status'), field: 'status' },
    { name: 'status not in the enum', event: fetchOk({ status: 'ok' }), field: 'status' },
    { name: 'status wrong case', event: fetchOk({ status: 'SUCCESS' }), field: 'status' },
    { name: 'status a boolean', event: fetchOk({ status: true }), field: 'status' },
    { name: 'error_type not in the enum', event: fetchOk({ status: 'error', error_type: 'rate_limit' }), field: 'error_type' },
    { name: 'error_type with status success', event: fetchOk({ status: 'success', error_type: 'timeout' }), field: 'error_type' },
    { name: 'error_type error with status success', event: fetchOk({ status: 'success', error_type: 'error' }), field: 'error_type' },
    { name: 'model_count negative', event: fetchOk({ model_count: -1 }), field: 'model_count' },
    { name: 'model_count non-integer', event: fetchOk({ model_count: 10.5 }), field: 'model_count' },
    { name: 'model_count a string', event: fetchOk({ model_count: '10' }), field: 'model_count' },
    { name: 'response_time_ms negative', event: fetchOk({ response_time_ms: -1 }), field: 'response_time_ms' },
    { name: 'response_time_ms 3 600 001', event: fetchOk({ response_time_ms: 3_600_001 }), field: 'response_time_ms' },
    { name: 'response_time_ms a string', event: fetchOk({ response_time_ms: '12' }), field: 'response_time_ms' },
    { name: 'timestamp older than the retention', event: fetchOk({ timestamp: now - 168 * HOUR - MINUTE }), field: 'timestamp' },
    { name: 'timestamp more than 5 minutes ahead', event: fetchOk({ timestamp: iso(now + 6 * MINUTE) }), field: 'timestamp' },
    { name: 'timestamp ISO without zone', event: fetchOk({ timestamp: iso(now).slice(0, -1) }), field: 'timestamp' },
    { name: 'timestamp a non-date string', event: fetchOk({ timestamp: 'now' }), field: 'timestamp' }
  ]
}

t.test('POST /api/metrics/gateway/fetch', async (t) => {
  t.test('each field rule answers 400 naming the field (single event and third event of a batch)', async (t) => {
    const { app, store } = await build(t)
    const now = Date.now()
    for (const c of fetchInvalidCases(now)) {
      assertBadRequest(t, await post(app, FETCH, c.event), `body.${c.field}`, c.name)
      const batch = [fetchOk(), fetchOk({ status: 'error' }), c.event]
      assertBadRequest(t, await post(app, FETCH, batch), `body[2].${c.field}`, `${c.name} (batch)`)
    }
    for (const [name, payload] of [['null', 'null'], ['a string', '"gw"'], ['a number', '1'], ['an empty array', '[]']] as const) {
      assertBadRequest(t, await postRaw(app, FETCH, payload), 'body', name)
    }
    assertBadRequest(t, await post(app, FETCH, Array.from({ length: 1001 }, () => fetchOk())), 'body', '1001 events')
    await flushAll(app)
    t.same(await store.keys(), [], 'nothing recorded')
  })

  t.test('boundary values are accepted', async (t) => {
    const { app } = await build(t)
    const now = Date.now()
    const cases: Array<[string, Json]> = [
      ['response_time_ms 0', fetchOk({ response_time_ms: 0 })],
      ['response_time_ms 3 600 000', fetchOk({ response_time_ms: 3_600_000 })],
      ['model_count 0', fetchOk({ model_count: 0 })],
      ['64-char gateway', fetchOk({ gateway: 'g'.repeat(64) })],
      ['status error', fetchOk({ status: 'error' })],
      ['status error, error_type timeout', fetchOk({ status: 'error', error_type: 'timeout' })],
      ['status error, error_type error', fetchOk({ status: 'error', error_type: 'error' })],
      ['timestamp ISO with +02:00', fetchOk({ timestamp: isoPlus2(now - MINUTE) })],
      ['timestamp epoch ms', fetchOk({ timestamp: now - MINUTE })],
      ['unknown fields', fetchOk({ colour: 'red' })]
    ]
    for (const [name, event] of cases) {
      const res = await post(app, FETCH, event)
      t.equal(res.statusCode, 202, name)
      t.same(res.json(), { accepted: 1 }, `${name}: body`)
    }
    const thousand = await post(app, FETCH, Array.from({ length: 1000 }, () => fetchOk({ gateway: 'gw-thousand' })))
    t.equal(thousand.statusCode, 202, '1000 fetches')
    t.same(thousand.json(), { accepted: 1000 })
  })

  t.test('recorded under gateway_fetches; error_type defaults to error; all-or-nothing', async (t) => {
    const { app } = await build(t)
    const now = Date.now()
    const events = [
      fetchOk({ gateway: 'gw-f', status: 'success', model_count: 10, response_time_ms: 100, timestamp: now - 2 * MINUTE }),
      fetchOk({ gateway: 'gw-f', status: 'error', response_time_ms: 300, timestamp: now - MINUTE }),
      fetchOk({ gateway: 'gw-f', status: 'error', error_type: 'timeout', response_time_ms: 200, timestamp: now - MINUTE }),
      fetchOk({ gateway: 'gw-f', status: 'error', error_type: 'error', timestamp: now - MINUTE })
    ]
    const res = await post(app, FETCH, events)
    t.equal(res.statusCode, 202)
    t.same(res.json(), { accepted: 4 })
    assertBadRequest(t, await post(app, FETCH, [fetchOk({ gateway: 'gw-f', model_count: 99 }), fetchOk({ gateway: 'gw-f', status: 'nope' })]), 'body[1].status', 'bad last fetch')
    await flushAll(app)
    const rt = await realtime(app, 'gateway', 'gw-f', '5m')
    t.same(rt.gateway_fetches && {
      fetches: rt.gateway_fetches.fetches,
      errors: rt.gateway_fetches.errors,
      timeouts: rt.gateway_fetches.timeouts,
      count: rt.gateway_fetches.response_time_ms.count,
      min: rt.gateway_fetches.response_time_ms.min,
      max: rt.gateway_fetches.response_time_ms.max,
      avg: rt.gateway_fetches.response_time_ms.avg,
      last_model_count: rt.gateway_fetches.last_model_count
    }, { fetches: 4, errors: 3, timeouts: 1, count: 3, min: 100, max: 300, avg: 200, last_model_count: 10 }, 'gateway_fetches (the rejected batch recorded nothing)')
    t.equal(rt.requests, 0, 'fetches are not chat requests')
  })
})
