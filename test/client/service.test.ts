/**
 * createMetricsService (packages/client/src/service.ts) on a fake fetch and a fake clock: what each
 * old call sends, how a TTFT sample (recordLatency) joins the completion that follows it, the bounds
 * on waiting samples, and promises that resolve whatever the arguments or the service do.
 */
import t, { type Test } from 'tap'
import { createMetricsService, type MetricsService, type MetricsServiceOptions, type MetricsServiceStats } from '../../packages/client/src/index.js'
import { freePort } from '../helpers/redis.js'

const NEVER = 1_000_000_000

interface Sent { route: string, events: Array<Record<string, unknown>> }

/** Accepts everything and keeps what was sent, without the time stamp the client adds. */
function accepting (): { fetch: typeof fetch, sent: Sent[] } {
  const sent: Sent[] = []
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const events = (JSON.parse(String(init?.body)) as Array<Record<string, unknown>>).map(({ timestamp, ...rest }) => rest)
    sent.push({ route: new URL(String(input)).pathname, events })
    return new Response('{}', { status: 202 })
  }
  return { fetch: f as typeof fetch, sent }
}

interface Fixture { s: MetricsService, sent: Sent[], clock: { now: number }, chat: () => Promise<Array<Record<string, unknown>>>, fetches: () => Promise<Array<Record<string, unknown>>> }

function service (t: Test, opts: Partial<MetricsServiceOptions> = {}): Fixture {
  const { fetch, sent } = accepting()
  const clock = { now: 0 }
  const s = createMetricsService({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: NEVER, closeTimeoutMs: 0, fetch, now: () => clock.now, ...opts })
  t.teardown(s.close)
  const of = (route: string) => async () => {
    await s.flush()
    return sent.filter((x) => x.route === route).flatMap((x) => x.events)
  }
  return { s, sent, clock, chat: of('/api/metrics/chat'), fetches: of('/api/metrics/gateway/fetch') }
}

const latencyStats = (st: MetricsServiceStats): Pick<MetricsServiceStats, 'latencyPending' | 'latencyJoined' | 'latencyExpired' | 'latencyInvalid'> =>
  ({ latencyPending: st.latencyPending, latencyJoined: st.latencyJoined, latencyExpired: st.latencyExpired, latencyInvalid: st.latencyInvalid })

t.test('a stream: the first token\'s sample and the end make one completion, its TTFT once', async (t) => {
  t.test('the end carries its own ttft_ms: that one is recorded; gateway and provider come from the sample', async (t) => {
    const { s, chat } = service(t)
    await s.recordLatency({ model: 'm/a', gateway: 'eu-1', provider: 'prov', ttft_ms: 400 })
    t.same(latencyStats(s.stats()), { latencyPending: 1, latencyJoined: 0, latencyExpired: 0, latencyInvalid: 0 }, 'nothing recorded yet')
    await s.recordRequestComplete({ model: 'm/a', ttft_ms: 410, total_time_ms: 2000, success: true })
    t.same(await chat(), [{ model: 'm/a', gateway: 'eu-1', provider: 'prov', success: true, ttft_ms: 410, total_time_ms: 2000 }])
    t.same(latencyStats(s.stats()), { latencyPending: 0, latencyJoined: 1, latencyExpired: 0, latencyInvalid: 0 })
  })

  t.test('the end has no ttft_ms: the sample\'s is recorded', async (t) => {
    const { s, chat } = service(t)
    await s.recordLatency({ model: 'm/a', gateway: 'eu-1', ttft_ms: 400 })
    await s.recordRequestComplete({ model: 'm/a', gateway: 'eu-1', total_time_ms: 2000 })
    t.same(await chat(), [{ model: 'm/a', gateway: 'eu-1', success: true, ttft_ms: 400, total_time_ms: 2000 }], 'success defaults to true')
  })

  t.test('a stream that fails after its first token: recordStatus takes the sample', async (t) => {
    const { s, chat } = service(t)
    await s.recordLatency({ model: 'm/a', gateway: 'eu-1', provider: 'p', ttft_ms: 300 })
    await s.recordStatus({ model: 'm/a', gateway: 'eu-1', provider: 'p', success: false, error_type: 'network' })
    t.same(await chat(), [{ model: 'm/a', gateway: 'eu-1', provider: 'p', success: false, ttft_ms: 300, error_type: 'network' }])
    t.equal(s.stats().latencyJoined, 1)
  })

  t.test('concurrent streams of one model and gateway: samples are taken oldest first', async (t) => {
    const { s, chat } = service(t)
    await s.recordLatency({ model: 'm/a', gateway: 'g', ttft_ms: 100 })
    await s.recordLatency({ model: 'm/a', gateway: 'g', ttft_ms: 200 })
    await s.recordRequestComplete({ model: 'm/a', gateway: 'g' })
    await s.recordRequestComplete({ model: 'm/a', gateway: 'g' })
    await s.recordRequestComplete({ model: 'm/a', gateway: 'g' })
    t.same((await chat()).map((e) => e.ttft_ms), [100, 200, undefined], 'two samples for three completions')
  })

  t.test('a sample joins only a completion of its model, gateway and provider (a missing one agrees with any)', async (t) => {
    const { s, chat } = service(t)
    await s.recordLatency({ model: 'm/a', gateway: 'g1', provider: 'p1', ttft_ms: 100 })
    await s.recordRequestComplete({ model: 'm/b', gateway: 'g1' })
    await s.recordRequestComplete({ model: 'm/a', gateway: 'g2' })
    await s.recordRequestComplete({ model: 'm/a', gateway: 'g1', provider: 'p2' })
    await s.recordLatency({ model: 'm/c', ttft_ms: 50 })
    await s.recordRequestComplete({ model: 'm/c', gateway: 'g3', provider: 'p3' })
    t.same(await chat(), [
      { model: 'm/b', gateway: 'g1', success: true },
      { model: 'm/a', gateway: 'g2', success: true },
      { model: 'm/a', gateway: 'g1', provider: 'p2', success: true },
      { model: 'm/c', gateway: 'g3', provider: 'p3', success: true, ttft_ms: 50 }
    ], 'only the last completion agreed with a sample; it keeps its own gateway and provider')
    t.same(latencyStats(s.stats()), { latencyPending: 1, latencyJoined: 1, latencyExpired: 0, latencyInvalid: 0 })
  })

  t.test('options.gateway: for a completion that names none and takes none from a sample', async (t) => {
    const { s, chat } = service(t, { gateway: 'main' })
    await s.recordRequestComplete({ model: 'm/a', success: true })
    await s.recordLatency({ model: 'm/a', gateway: 'eu-1', ttft_ms: 1 })
    await s.recordRequestComplete({ model: 'm/a', success: true })
    await s.recordRequestComplete({ model: 'm/a', gateway: 'other', success: true })
    t.same((await chat()).map((e) => e.gateway), ['main', 'eu-1', 'other'])
  })
})

t.test('waiting samples are bounded in time and number; those let go are counted, not recorded', async (t) => {
  t.test('latencyJoinMs: a sample waits that long, no longer', async (t) => {
    const { s, chat, clock } = service(t, { latencyJoinMs: 1000 })
    await s.recordLatency({ model: 'm/a', ttft_ms: 10 })
    clock.now = 999
    await s.recordRequestComplete({ model: 'm/a' })
    await s.recordLatency({ model: 'm/a', ttft_ms: 20 })
    clock.now = 999 + 1000
    await s.recordRequestComplete({ model: 'm/a' })
    t.same((await chat()).map((e) => e.ttft_ms), [10, undefined])
    t.same(latencyStats(s.stats()), { latencyPending: 0, latencyJoined: 1, latencyExpired: 1, latencyInvalid: 0 })
  })

  t.test('the default wait is 5 minutes; stats() lets expired samples go too', async (t) => {
    const { s, clock } = service(t, { latencyJoinMs: Number.NaN })
    await s.recordLatency({ model: 'm/a', ttft_ms: 10 })
    await s.recordLatency({ model: 'm/b', ttft_ms: 10 })
    clock.now = 299_999
    t.equal(s.stats().latencyPending, 2)
    clock.now = 300_000
    t.same(latencyStats(s.stats()), { latencyPending: 0, latencyJoined: 0, latencyExpired: 2, latencyInvalid: 0 })
  })

  t.test('maxPendingLatencies: the oldest sample goes first', async (t) => {
    const { s, chat } = service(t, { maxPendingLatencies: 2 })
    await s.recordLatency({ model: 'm/a', ttft_ms: 1 })
    await s.recordLatency({ model: 'm/a', ttft_ms: 2 })
    await s.recordLatency({ model: 'm/b', ttft_ms: 3 })
    await s.recordRequestComplete({ model: 'm/a' })
    await s.recordRequestComplete({ model: 'm/b' })
    t.same((await chat()).map((e) => e.ttft_ms), [2, 3])
    t.same(latencyStats(s.stats()), { latencyPending: 0, latencyJoined: 2, latencyExpired: 1, latencyInvalid: 0 })
  })

  t.test('maxPendingLatencies 0: no sample is kept', async (t) => {
    const { s, chat } = service(t, { maxPendingLatencies: 0 })
    await s.recordLatency({ model: 'm/a', ttft_ms: 1 })
    await s.recordRequestComplete({ model: 'm/a' })
    t.same(await chat(), [{ model: 'm/a', success: true }])
    t.same(latencyStats(s.stats()), { latencyPending: 0, latencyJoined: 0, latencyExpired: 1, latencyInvalid: 0 })
  })

  t.test('close(): waiting samples go; later ones too, and later completions are dropped by the client', async (t) => {
    const { s } = service(t)
    await s.recordLatency({ model: 'm/a', ttft_ms: 1 })
    await s.close()
    await s.recordLatency({ model: 'm/a', ttft_ms: 1 })
    await s.recordRequestComplete({ model: 'm/a' })
    const st = s.stats()
    t.same(latencyStats(st), { latencyPending: 0, latencyJoined: 0, latencyExpired: 2, latencyInvalid: 0 })
    t.equal(st.dropped, 1)
  })

  t.test('samples that cannot be joined are refused at once', async (t) => {
    const { s } = service(t)
    const throwing = new Proxy({}, { get () { throw new Error('unreadable') } })
    for (const bad of [null, undefined, 'm/a', 42, { ttft_ms: 1 }, { model: 5, ttft_ms: 1 }, { model: 'm/a' }, { model: 'm/a', ttft_ms: '400' }, { model: 'm/a', ttft_ms: -1 }, { model: 'm/a', ttft_ms: Number.NaN }, { model: 'm/a', ttft_ms: 3_600_001 }, throwing]) {
      await s.recordLatency(bad as never)
    }
    await s.recordLatency({ model: 'm/a', ttft_ms: 0 })
    await s.recordLatency({ model: 'm/a', ttft_ms: 3_600_000 })
    t.same(latencyStats(s.stats()), { latencyPending: 2, latencyJoined: 0, latencyExpired: 0, latencyInvalid: 12 }, 'every call counted once')
  })
})

t.test('fields: old names and values mapped to what the service reads', async (t) => {
  t.test('completions', async (t) => {
    const { s, chat } = service(t)
    await s.recordStatus({ model: 'm/a', success: false, error_type: 'rate_limit' })
    await s.recordStatus({ model: 'm/a', success: false, error_type: 'unknown' })
    await s.recordRequestComplete({ model: 'm/a', success: false, error_type: 'server_error', total_time_ms: 5 })
    await s.recordRequestComplete({ model: 'm/a', success: true, error_type: 'timeout' })
    await s.recordStatus({ model: 'm/a', success: true })
    await s.recordRequestComplete({ model: 'm/a', prompt_tokens: 10, completion_tokens: 20, streamed: false, timestamp: 1234 })
    await s.recordRequestComplete({ model: 'm/a', input_tokens: 1, output_tokens: 2, prompt_tokens: 10, completion_tokens: 20 })
    await s.recordRequestComplete({ model: 'm/a', gateway: null, provider: null, ttft_ms: null, total_time_ms: null, success: null, error_type: null } as never)
    const events = await chat()
    t.same(events, [
      { model: 'm/a', success: false, error_type: 'rate_limit' },
      { model: 'm/a', success: false, error_type: 'other' },
      { model: 'm/a', success: false, total_time_ms: 5, error_type: 'other' },
      { model: 'm/a', success: true },
      { model: 'm/a', success: true },
      { model: 'm/a', success: true, input_tokens: 10, output_tokens: 20, streamed: false },
      { model: 'm/a', success: true, input_tokens: 1, output_tokens: 2 },
      { model: 'm/a', success: true }
    ], 'unknown error types count as other; none with a success; OpenAI usage names; nulls left out')
    t.equal(s.stats().sent, 8)
  })

  t.test('the timestamp given is sent as given', async (t) => {
    const { fetch, sent } = accepting()
    let body = ''
    const s = createMetricsService({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: NEVER, fetch: async (url, init) => { body = String(init?.body); return await fetch(url, init) } })
    t.teardown(s.close)
    await s.recordRequestComplete({ model: 'm/a', timestamp: '2026-01-01T00:00:00.000Z' })
    await s.flush()
    t.equal(sent.length, 1)
    t.match(body, /"timestamp":"2026-01-01T00:00:00.000Z"/)
  })

  t.test('model-list fetches', async (t) => {
    const { s, fetches } = service(t)
    await s.recordGatewayFetch('success', { gateway: 'g', model_count: 3, response_time_ms: 80, models: ['a/b'], error_type: 'timeout' })
    await s.recordGatewayFetch('error', { gateway: 'g', error_type: 'timeout', model_count: 3 })
    await s.recordGatewayFetch('error', { gateway: 'g', error_type: 'error', response_time_ms: 10_000 })
    await s.recordGatewayFetch('error', { gateway: 'g', error_type: 'ECONNRESET', timestamp: 5 })
    await s.recordGatewayFetch('error', { gateway: 'g' })
    await s.recordGatewayFetch({ gateway: 'g', status: 'success', model_count: 1 } as never, undefined as never)
    t.same(await fetches(), [
      { gateway: 'g', status: 'success', model_count: 3, models: ['a/b'], response_time_ms: 80 },
      { gateway: 'g', status: 'error', error_type: 'timeout' },
      { gateway: 'g', status: 'error', error_type: 'error', response_time_ms: 10_000 },
      { gateway: 'g', status: 'error', error_type: 'error' },
      { gateway: 'g', status: 'error' },
      { gateway: 'g', status: 'success', model_count: 1 }
    ], 'fields kept only where the status allows them; any other error name is error; the SDK\'s one-argument form taken as is')
  })
})

t.test('never rejects: garbage arguments, an unreadable argument, a service that is down', async (t) => {
  const port = await freePort()
  const s = createMetricsService({ baseUrl: `http://127.0.0.1:${port}`, flushIntervalMs: NEVER, maxRetryMs: 0, closeTimeoutMs: 1000 })
  const throwing = new Proxy({}, { get () { throw new Error('unreadable') } })
  const circular: Record<string, unknown> = { model: 'm/a', success: true }
  circular.self = circular
  const rejected: unknown[] = []
  const calls: Array<Promise<void>> = []
  const note = (p: Promise<void>): void => { calls.push(p.catch((err: unknown) => { rejected.push(err) })) }
  for (const bad of [undefined, null, 42, 'm/a', [], throwing]) {
    note(s.recordRequestComplete(bad as never))
    note(s.recordStatus(bad as never))
    note(s.recordLatency(bad as never))
    note(s.recordGatewayFetch('error', bad as never))
  }
  note(s.recordRequestComplete(circular as never))
  note(s.recordGatewayFetch(undefined as never, undefined as never))
  note(s.recordGatewayFetch('bogus' as never, { gateway: 'g' }))
  note(s.recordRequestComplete({ model: 'm/ok', success: true }))
  note(s.recordGatewayFetch('success', { gateway: 'g', model_count: 1 }))
  await Promise.all(calls)
  t.same(rejected, [], 'every call resolved')
  await s.flush()
  await s.close()
  const st = s.stats()
  // Of the 23 completion and fetch calls, 16 cannot be sent at all: the non-objects and the
  // unreadable one of each method (5 × 3) and the fetch without any argument. The 7 others (an
  // array, the circular object, whose known fields are all that is sent, a bogus status, two valid
  // ones) went to a service that is down.
  t.same({ invalid: st.invalid, expired: st.expired, sent: st.sent, queued: st.queued }, { invalid: 16, expired: 7, sent: 0, queued: 0 }, 'every call counted once')
  t.equal(st.latencyInvalid, 6)
})

t.test('a call resolves at once, before its event is sent', async (t) => {
  let asked = 0
  const s = createMetricsService({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: NEVER, closeTimeoutMs: 0, fetch: async () => { asked++; return await new Promise<Response>(() => {}) } })
  t.teardown(s.close)
  await s.recordRequestComplete({ model: 'm/a', success: true })
  await s.recordGatewayFetch('success', { gateway: 'g' })
  t.equal(asked, 0, 'nothing sent yet')
  t.equal(s.stats().queued, 2)
  t.equal(s.client.stats().queued, 2, 'the client underneath is exposed')
})
