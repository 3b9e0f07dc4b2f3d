import autocannon from 'autocannon'
import { CHAT_ERROR_TYPES } from '../metrics/events.js'
import { bearer } from './common.js'

export interface LoadtestOptions {
  url: string
  token?: string | undefined
  readToken?: string | undefined
  durationS: number
  connections: number
  batch: number
  /** How long to wait for the service's counts to catch up after the run (flush and read cache). */
  settleMs?: number
}

const GATEWAYS = ['eu-1', 'us-1', 'ap-1']
const MODELS = ['openai/gpt-4o', 'anthropic/claude-3.5-sonnet', 'mistral/large', 'meta/llama-3-70b']
const ERRORS = CHAT_ERROR_TYPES

/** A deterministic mix: 1 event in 20 fails (all error types), 1 in 5 is not streamed. */
function chatEvent (i: number, prefix: string): { model: string, body: Record<string, unknown> } {
  const model = `${prefix}/${MODELS[i % MODELS.length]!.replace('/', '-')}`
  const gateway = GATEWAYS[(i >> 2) % GATEWAYS.length]!
  const ttft = 80 + ((i * 7919) % 1200)
  if ((i >> 2) % 20 === 7) return { model, body: { model, gateway, success: false, error_type: ERRORS[(i / 80 | 0) % ERRORS.length], total_time_ms: ttft * 3 } }
  const streamed = i % 5 !== 3
  const tokens = { input_tokens: 200 + (i % 800), output_tokens: 50 + (i % 600) }
  return { model, body: { model, gateway, success: true, ttft_ms: ttft, total_time_ms: ttft + 300 + ((i * 104_729) % 4000), ...tokens, streamed } }
}

interface Ctx { sent?: Map<string, number> }

/** A count by model; 0 for a model not in the map. */
const countOf = (counts: Map<string, number>, model: string): number => counts.get(model) ?? 0

/** The window the read-back uses: the run must fit in it. */
export function windowFor (durationS: number): string {
  return durationS <= 180 ? '5m' : durationS <= 720 ? '15m' : '1h'
}

/**
 * `loadtest`: recording requests of `batch` events over `connections` connections for `durationS`,
 * then the service's counts of this run's models (a unique prefix) against the events it accepted.
 */
export async function loadtest (o: LoadtestOptions, out: (line: string) => void, progress: (line: string) => void): Promise<boolean> {
  const prefix = `loadtest-${Date.now().toString(36)}`
  const accepted = new Map<string, number>()
  // Requests sent whose answer the run did not wait for (in flight when the duration ended): the
  // service may have counted them.
  const inFlight = new Set<Ctx>()
  let next = 0
  let acceptedEvents = 0
  let refused = 0
  let answered = 0
  const byStatus = new Map<number, number>()
  const base = o.url.replace(/\/+$/, '')
  // Without a callback, autocannon returns its instance made thenable (the types know only the promise).
  const instance = autocannon({
    url: base,
    connections: o.connections,
    duration: o.durationS,
    requests: [{
      method: 'POST',
      path: '/api/metrics/chat',
      headers: { 'content-type': 'application/json', ...bearer(o.token) },
      setupRequest: (req, context: Ctx) => {
        const sent = new Map<string, number>()
        const events = []
        for (let k = 0; k < o.batch; k++) {
          const { model, body } = chatEvent(next++, prefix)
          sent.set(model, countOf(sent, model) + 1)
          events.push(body)
        }
        context.sent = sent
        inFlight.add(context)
        return { ...req, body: JSON.stringify(events) }
      },
      onResponse: (status, _body, context: Ctx) => {
        answered++
        inFlight.delete(context)
        if (status === 202) {
          for (const [m, n] of context.sent!) { accepted.set(m, countOf(accepted, m) + n); acceptedEvents += n }
        } else {
          refused++
          byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
        }
        context.sent = undefined
      }
    }]
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>
  let seconds = 0
  let lastAnswered = 0
  instance.on('tick', () => {
    if (seconds >= o.durationS) return
    seconds++
    progress(`  ${String(seconds).padStart(3)} s  ${String(answered - lastAnswered).padStart(7)} req/s  ${acceptedEvents} events accepted  ${refused} refused`)
    lastAnswered = answered
  })
  const result = await instance
  const lat = result.latency
  out(`requests: ${result.requests.total} in ${o.durationS} s, ${Math.round(result.requests.average)} req/s (batches of ${o.batch}, ${o.connections} connections)`)
  out(`events: ${acceptedEvents} accepted, ${Math.round(acceptedEvents / o.durationS)} events/s`)
  out(`latency ms: p50 ${lat.p50}, p90 ${lat.p90}, p99 ${lat.p99}, max ${lat.max}`)
  out(`errors: ${result.errors} connection errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers${byStatus.size > 0 ? ` (${[...byStatus].map(([s, n]) => `${n} × ${s}`).join(', ')})` : ''}`)
  const unanswered = new Map<string, number>()
  for (const c of inFlight) for (const [m, n] of c.sent!) unanswered.set(m, countOf(unanswered, m) + n)
  const counts = (model: string, got: number | string | undefined): boolean => {
    const n = countOf(accepted, model)
    return typeof got === 'number' && got >= n && got <= n + countOf(unanswered, model)
  }
  const window = windowFor(o.durationS)
  const deadline = Date.now() + (o.settleMs ?? 15_000)
  let counted = new Map<string, number | string>()
  for (;;) {
    counted = new Map()
    for (const model of accepted.keys()) {
      const res = await fetch(`${base}/api/metrics/realtime?type=model&id=${encodeURIComponent(model)}&window=${window}`, { headers: bearer(o.readToken ?? o.token), signal: AbortSignal.timeout(5_000) })
      counted.set(model, res.status === 200 ? (await res.json() as { requests: number }).requests : `${res.status}`)
    }
    const settled = (m: string): boolean => counts(m, counted.get(m)) && counted.get(m) === countOf(accepted, m) + countOf(unanswered, m)
    if ([...accepted.keys()].every(settled) || Date.now() > deadline) break
    // The service flushes every METRICS_FLUSH_INTERVAL_MS and caches reads for METRICS_CACHE_TTL_MS.
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  let ok = accepted.size > 0
  if (!ok) out('FAIL  counts: no event was accepted')
  for (const [model, n] of [...accepted].sort()) {
    const got = counted.get(model)
    const same = counts(model, got)
    ok &&= same
    const open = countOf(unanswered, model)
    out(`${same ? 'PASS' : 'FAIL'}  counts: ${model}: ${n} accepted${open > 0 ? ` (+${open} in requests unanswered when the run ended)` : ''}, ${String(got)} counted (realtime ${window})`)
  }
  return ok
}
