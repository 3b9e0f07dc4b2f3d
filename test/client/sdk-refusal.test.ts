/**
 * Events the service refuses for themselves are set aside without holding up the others: ids over a
 * cardinality limit (429 METRICS_TOO_MANY_IDS, by the id it names or by halves), invalid events
 * (400, at the index it names or by halves), a body too large (413, by halves). Each resend of a
 * changed batch has a new key. Also: the callbacks cannot break delivery.
 */
import t, { type Test } from 'tap'
import { createMetricsClient, extractProvider, type DeliveryError, type MetricsClient, type MetricsClientOptions } from '../../packages/client/src/index.js'

const NEVER = 1_000_000_000
type Ev = Record<string, unknown>

interface Call { route: string, key: string, events: Ev[], status: number }

/**
 * A fake ingest service: `judge` answers a request's events (null: 202). Records every call and
 * the events it accepted, once per key.
 */
function service (judge: (events: Ev[], route: string) => Response | null): { fetch: typeof fetch, calls: Call[], accepted: Ev[] } {
  const calls: Call[] = []
  const accepted: Ev[] = []
  const keys = new Set<string>()
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const route = new URL(String(input)).pathname
    const key = new Headers(init?.headers).get('idempotency-key') ?? ''
    const events = JSON.parse(String(init?.body)) as Ev[]
    const res = judge(events, route) ?? new Response(JSON.stringify({ accepted: events.length }), { status: 202 })
    calls.push({ route, key, events, status: res.status })
    if (res.status === 202 && !keys.has(key)) {
      keys.add(key)
      accepted.push(...events)
    }
    return res
  }
  return { fetch: f as typeof fetch, calls, accepted }
}

const tooMany = (refused?: { type: string, id: string, limit: number }): Response => new Response(JSON.stringify({
  statusCode: 429,
  code: 'METRICS_TOO_MANY_IDS',
  error: 'Too Many Requests',
  message: refused !== undefined ? `${refused.type} ${JSON.stringify(refused.id)} would exceed the limit of ${refused.limit}` : 'an id would exceed its limit',
  ...(refused !== undefined ? { refused } : {})
}), { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '3600' } })

function client (t: Test, fetch: typeof globalThis.fetch, opts: Partial<MetricsClientOptions> = {}): { c: MetricsClient, errors: DeliveryError[], sent: Ev[] } {
  const errors: DeliveryError[] = []
  const sent: Ev[] = []
  const c = createMetricsClient({
    baseUrl: 'http://127.0.0.1:9',
    fetch,
    flushIntervalMs: NEVER,
    closeTimeoutMs: 0,
    onError: (e) => { errors.push(e) },
    onSent: (events) => { sent.push(...events as Ev[]) },
    ...opts
  })
  t.teardown(async () => { await c.close() })
  return { c, errors, sent }
}

const sum = (errors: DeliveryError[], kind: DeliveryError['kind']): number => errors.reduce((n, e) => n + (e.kind === kind ? e.count : 0), 0)

t.test('one model over the limit: its events are refused, the rest resent at once with a new key, later events flow', async (t) => {
  const known = new Set(['ok/a', 'ok/b'])
  const svc = service((events) => {
    const over = events.find((e) => !known.has(e.model as string))
    return over === undefined ? null : tooMany({ type: 'model', id: over.model as string, limit: 2 })
  })
  const { c, errors, sent } = client(t, svc.fetch)
  const models = ['ok/a', 'over/x', 'ok/b', 'over/y', 'ok/a']
  for (let i = 0; i < 30; i++) c.recordChat({ model: models[i % 5]!, success: true, output_tokens: i })
  await c.flush()
  t.same(svc.calls.map((x) => [x.status, x.events.length]), [[429, 30], [429, 24], [202, 18]], 'one request per refused id, then the rest')
  t.equal(new Set(svc.calls.map((x) => x.key)).size, 3, 'a new key for each changed batch')
  t.same(c.stats(), { queued: 0, sent: 18, dropped: 0, failed: 0, invalid: 0, refused: 12, expired: 0, retries: 0 })
  t.same(errors.map((e) => [e.kind, e.count, e.status]), [['refused', 6, 429], ['refused', 6, 429]])
  t.match(errors[0]?.message, /over\/x/)
  t.same(sent.map((e) => e.output_tokens), svc.accepted.map((e) => e.output_tokens))
  t.ok(svc.accepted.every((e) => known.has(e.model as string)))

  for (let i = 30; i < 40; i++) c.recordChat({ model: 'ok/b', success: true, output_tokens: i })
  c.recordChat({ model: 'over/x', success: true, output_tokens: 40 })
  await c.flush()
  t.equal(c.stats().sent, 28, 'later events are not blocked by the refused model')
  t.equal(c.stats().refused, 13, 'a later event of the refused model is refused again, once')
  t.equal(c.stats().queued, 0)
  await c.close()
  t.same(c.stats(), { queued: 0, sent: 28, dropped: 0, failed: 0, invalid: 0, refused: 13, expired: 0, retries: 0 }, 'close() had nothing left to drop')
})

interface Case { name: string, refused: { type: string, id: string }, events: Ev[], hit: number[] }
const cases: Case[] = [
  {
    name: 'model_gateway pair (no gateway: "default")',
    refused: { type: 'model_gateway', id: 'm/a gw-2' },
    events: [{ model: 'm/a', gateway: 'gw-1' }, { model: 'm/a', gateway: 'gw-2' }, { model: 'm/b', gateway: 'gw-2' }, { model: 'm/a' }, { model: 'm/a', gateway: 'gw-2', provider: 'z' }],
    hit: [1, 4]
  },
  {
    name: 'model_gateway pair naming the default gateway',
    refused: { type: 'model_gateway', id: 'm/a default' },
    events: [{ model: 'm/a', gateway: 'gw-1' }, { model: 'm/a' }],
    hit: [1]
  },
  {
    name: 'provider, from the model id when the event names none',
    refused: { type: 'provider', id: 'acme' },
    events: [{ model: 'acme/x' }, { model: 'other/y', provider: 'acme' }, { model: 'acme/z', provider: 'other' }, { model: 'acme:tiny' }, { model: 'plain' }],
    hit: [0, 1, 3]
  },
  {
    name: 'model_provider pair',
    refused: { type: 'model_provider', id: 'acme/x acme' },
    events: [{ model: 'acme/x' }, { model: 'acme/x', provider: 'relay' }, { model: 'acme/y' }],
    hit: [0]
  },
  {
    name: 'gateway on chat events',
    refused: { type: 'gateway', id: 'gw-9' },
    events: [{ model: 'm/a', gateway: 'gw-9' }, { model: 'm/a', gateway: 'gw-1' }, { model: 'm/b', gateway: 'gw-9' }],
    hit: [0, 2]
  }
]

for (const k of cases) {
  t.test(`refused ${k.name}: only the events naming it are dropped`, async (t) => {
    const refusedIds = new Set([k.refused.id])
    const svc = service((events) => {
      const hit = events.some((e) => {
        const model = e.model as string
        const provider = (e.provider as string | undefined) ?? extractProvider(model)
        const gateway = (e.gateway as string | undefined) ?? 'default'
        const id = { model, provider, gateway, model_gateway: `${model} ${gateway}`, model_provider: `${model} ${provider}` }[k.refused.type]
        return id !== undefined && refusedIds.has(id)
      })
      return hit ? tooMany({ ...k.refused, limit: 10 }) : null
    })
    const { c } = client(t, svc.fetch)
    k.events.forEach((e, i) => { c.recordChat({ ...e, success: true, output_tokens: i } as never) })
    await c.flush()
    t.same(svc.accepted.map((e) => e.output_tokens).sort(), k.events.map((_, i) => i).filter((i) => !k.hit.includes(i)))
    t.equal(c.stats().refused, k.hit.length)
    t.equal(svc.calls.length, 2, 'one refusal, one resend')
  })
}

t.test('a gateway refused on /gateway/fetch: its fetches dropped, the others sent', async (t) => {
  const svc = service((events) => events.some((e) => e.gateway === 'gw-new') ? tooMany({ type: 'gateway', id: 'gw-new', limit: 1 }) : null)
  const { c } = client(t, svc.fetch)
  for (const [i, g] of ['gw-old', 'gw-new', 'gw-old', 'gw-new'].entries()) c.recordGatewayFetch({ gateway: g, status: 'success', model_count: i })
  await c.flush()
  t.same(svc.accepted.map((e) => e.model_count), [0, 2])
  t.equal(c.stats().refused, 2)
})

const byHalves: Array<[string, (id: string) => Response]> = [
  ['no `refused` in the body', () => tooMany()],
  ['an id type the SDK does not know', (id) => tooMany({ type: 'region', id, limit: 3 })],
  ['an id none of the events names as the SDK reads them', () => tooMany({ type: 'model', id: 'NOT/THERE', limit: 3 })]
]
for (const [name, answer] of byHalves) {
  t.test(`429 METRICS_TOO_MANY_IDS with ${name}: found by halves, only the refused events dropped`, async (t) => {
    const svc = service((events) => {
      const over = events.find((e) => (e.model as string).startsWith('over/'))
      return over === undefined ? null : answer(over.model as string)
    })
    const { c, errors } = client(t, svc.fetch, { maxBatch: 64 })
    const over = new Set([5, 6, 40])
    for (let i = 0; i < 64; i++) c.recordChat({ model: over.has(i) ? `over/${i}` : 'ok/m', success: true, output_tokens: i })
    await c.flush()
    t.same(c.stats(), { queued: 0, sent: 61, dropped: 0, failed: 0, invalid: 0, refused: 3, expired: 0, retries: 0 })
    t.equal(sum(errors, 'refused'), 3)
    t.ok(svc.calls.length <= 2 * 3 * 6 + 1, `a bounded number of requests (${svc.calls.length})`)
    t.equal(svc.accepted.length, 61)
  })
}

t.test('400 naming body[i]: the events before it go together, the one named is confirmed alone', async (t) => {
  const bad = new Set([3, 4, 70])
  const svc = service((events) => {
    const i = events.findIndex((e) => bad.has(e.output_tokens as number))
    return i < 0 ? null : new Response(JSON.stringify({ statusCode: 400, code: 'METRICS_INVALID_EVENT', message: `body[${i}].ttft_ms must be >= 0` }), { status: 400 })
  })
  const { c, errors } = client(t, svc.fetch, { maxBatch: 100 })
  for (let i = 0; i < 100; i++) c.recordChat({ model: 'v/m', success: true, output_tokens: i, ttft_ms: bad.has(i) ? -1 : 5 })
  await c.flush()
  t.same(c.stats(), { queued: 0, sent: 97, dropped: 0, failed: 0, invalid: 3, refused: 0, expired: 0, retries: 0 })
  t.same(errors.map((e) => [e.kind, e.count, e.status]), [['invalid', 1, 400], ['invalid', 1, 400], ['invalid', 1, 400]])
  t.match(errors[0]?.message, /METRICS_INVALID_EVENT: body\[0\]\.ttft_ms/)
  t.ok(svc.calls.length <= 3 * 3 + 1, `${svc.calls.length} requests`)
  t.equal(new Set(svc.calls.map((x) => x.key)).size, svc.calls.length, 'every request a new key: each is a different batch')
  t.same(svc.accepted.map((e) => e.output_tokens).sort((a, b) => (a as number) - (b as number)), Array.from({ length: 100 }, (_, i) => i).filter((i) => !bad.has(i)))
})

t.test('400 naming the wrong event costs requests, never a valid event', async (t) => {
  const svc = service((events) => events.some((e) => e.ttft_ms === -1)
    ? new Response(JSON.stringify({ statusCode: 400, code: 'METRICS_INVALID_EVENT', message: 'body[0].model is wrong' }), { status: 400 })
    : null)
  const { c } = client(t, svc.fetch)
  for (let i = 0; i < 10; i++) c.recordChat({ model: 'v/m', success: true, output_tokens: i, ttft_ms: i === 7 ? -1 : 5 })
  await c.flush()
  t.same(c.stats(), { queued: 0, sent: 9, dropped: 0, failed: 0, invalid: 1, refused: 0, expired: 0, retries: 0 })
})

t.test('413: split until the parts fit; an event too large alone is failed', async (t) => {
  const svc = service((events) => events.length > 3 || events.some((e) => e.model_count === 99) ? new Response(null, { status: 413 }) : null)
  const { c, errors } = client(t, svc.fetch, { maxBatch: 16 })
  for (let i = 0; i < 16; i++) c.recordGatewayFetch({ gateway: 'gw', status: 'success', model_count: i === 9 ? 99 : i })
  await c.flush()
  t.same(c.stats(), { queued: 0, sent: 15, dropped: 0, failed: 1, invalid: 0, refused: 0, expired: 0, retries: 0 })
  t.same(errors.map((e) => [e.kind, e.count, e.status]), [['failed', 1, 413]])
})

t.test('onError and onSent that throw, reject, or record from inside do not break delivery', async (t) => {
  const svc = service((events) => events.some((e) => e.ttft_ms === -1) ? new Response('{}', { status: 400 }) : null)
  let reports = 0
  const c: MetricsClient = createMetricsClient({
    baseUrl: 'http://127.0.0.1:9',
    fetch: svc.fetch,
    flushIntervalMs: NEVER,
    onError: (e) => {
      reports++
      if (e.kind === 'invalid' && e.status === 400) c.recordChat({ model: 'from/onerror', success: true })
      throw new Error('onError throws')
    },
    onSent: async () => { throw new Error('onSent rejects') }
  })
  t.teardown(async () => { await c.close() })
  c.recordChat({ model: 'v/m', success: true })
  c.recordChat({ model: 'v/m', success: true, ttft_ms: -1 })
  c.recordChat(null as never) // invalid at once, reported asynchronously
  await c.flush()
  await c.flush()
  t.same(c.stats(), { queued: 0, sent: 2, dropped: 0, failed: 0, invalid: 2, refused: 0, expired: 0, retries: 0 })
  t.equal(reports, 2)
  t.same(svc.accepted.map((e) => e.model), ['v/m', 'from/onerror'])
})

t.test('a refusal after an attempt whose answer was lost: the rest keeps its key, so the service applies it once', async (t) => {
  // As the service does it: the cardinality check comes before the key is looked at; the key is
  // honoured when the events are applied. The first attempt is applied, its answer lost; by the
  // retry the hour has turned and the model is one too many.
  const applied: number[] = []
  const keys = new Set<string>()
  const calls: Array<{ key: string, n: number }> = []
  const f = async (_input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const key = new Headers(init?.headers).get('idempotency-key') ?? ''
    const events = JSON.parse(String(init?.body)) as Ev[]
    calls.push({ key, n: events.length })
    if (calls.length > 1 && events.some((e) => e.model === 'new/m')) return tooMany({ type: 'model', id: 'new/m', limit: 1 })
    if (!keys.has(key)) {
      keys.add(key)
      applied.push(...events.map((e) => e.output_tokens as number))
    }
    if (calls.length === 1) throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } })
    return new Response(null, { status: 202 })
  }
  const { c } = client(t, f as typeof fetch, { retryBaseMs: 1, retryMaxMs: 1, closeTimeoutMs: 10_000 })
  for (let i = 0; i < 6; i++) c.recordChat({ model: i % 2 === 0 ? 'old/m' : 'new/m', success: true, output_tokens: i })
  await c.close()
  t.same(calls.map((x) => x.n), [6, 6, 3])
  t.equal(calls[2]?.key, calls[0]?.key, 'the rest under the same key')
  t.same(applied, [0, 1, 2, 3, 4, 5], 'each event applied once')
  t.same(c.stats(), { queued: 0, sent: 3, dropped: 0, failed: 0, invalid: 0, refused: 3, expired: 0, retries: 1 })
})
