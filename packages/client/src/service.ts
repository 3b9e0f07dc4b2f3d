/**
 * The calls of an existing `metricsService`, kept as they are: recordRequestComplete, recordStatus,
 * recordLatency and recordGatewayFetch(status, event), each returning a promise that resolves at
 * once (the event is queued) and never rejects, so `.catch(console.error)` after them stays harmless.
 * Underneath, one MetricsClient queues, batches and retries (./client.ts).
 *
 * One completion is one event: recordRequestComplete and recordStatus each record exactly one.
 * recordLatency (a TTFT sample taken at a stream's first token, before the end is known) records
 * nothing by itself: the sample waits, at most `latencyJoinMs`, for the next completion of the same
 * model (and gateway and provider, where both name one), which takes it:
 *   - the completion's own ttft_ms, when it has one, is the one recorded; otherwise the sample's;
 *   - a completion naming no gateway (or provider) takes the sample's;
 *   - samples of one model, gateway and provider are taken oldest first.
 * So each completion is counted once and its TTFT once. A sample that no completion takes in time
 * (or before close(), or pushed out by `maxPendingLatencies` newer ones) is not recorded: the service
 * counts completions, and a request whose end was never reported is neither a success nor a failure.
 * It is counted in stats().latencyExpired.
 */
import { createMetricsClient, type ChatEvent, type GatewayFetchEvent, type MetricsClient, type MetricsClientOptions, type MetricsClientStats } from './client.js'

/** recordRequestComplete's argument: one finished completion. */
export interface RequestComplete {
  model: string
  gateway?: string | undefined
  /** Default: the TTFT sample's, else the service derives it from the model (extractProvider). */
  provider?: string | undefined
  /** Default true. */
  success?: boolean | undefined
  ttft_ms?: number | undefined
  total_time_ms?: number | undefined
  /** With success: false; a value other than timeout, rate_limit, network or other is sent as other. */
  error_type?: string | undefined
  input_tokens?: number | undefined
  output_tokens?: number | undefined
  /** OpenAI's usage name for input_tokens, used when input_tokens is absent. */
  prompt_tokens?: number | undefined
  /** OpenAI's usage name for output_tokens, used when output_tokens is absent. */
  completion_tokens?: number | undefined
  streamed?: boolean | undefined
  /** Epoch ms or an ISO date; default: the time of the call. */
  timestamp?: number | string | undefined
}

/** recordStatus's argument: a completion known by its outcome (success: false with an error_type). */
export interface RequestStatus extends Omit<RequestComplete, 'success'> {
  success: boolean
}

/** recordLatency's argument: the time to first token of a stream still running. */
export interface LatencySample {
  model: string
  gateway?: string | undefined
  provider?: string | undefined
  ttft_ms: number
}

/** recordGatewayFetch's second argument: one model-list fetch. */
export interface GatewayFetch {
  gateway: string
  /** With 'success'. */
  model_count?: number | undefined
  /** With 'success': the ids listed (the service tracks what changes between fetches). */
  models?: string[] | undefined
  response_time_ms?: number | undefined
  /** With 'error': 'timeout' or 'error' (any other value is sent as 'error'). */
  error_type?: string | undefined
  timestamp?: number | string | undefined
}

export interface MetricsServiceOptions extends MetricsClientOptions {
  /** The gateway of a completion that names none and takes none from a TTFT sample; default none (the service files it under "default"). */
  gateway?: string | undefined
  /** How long a TTFT sample waits for its completion (ms); default 300 000, at most 3 600 000. */
  latencyJoinMs?: number | undefined
  /** TTFT samples waiting at most; beyond it the oldest is let go (counted as expired). Default 10 000. */
  maxPendingLatencies?: number | undefined
}

/**
 * The client's counters (each completion and fetch is one of its events), and what became of the
 * TTFT samples: every recordLatency call is counted in exactly one of latencyPending,
 * latencyJoined, latencyExpired and latencyInvalid.
 */
export interface MetricsServiceStats extends MetricsClientStats {
  /** Samples waiting for their completion. */
  latencyPending: number
  /** Samples a completion took. */
  latencyJoined: number
  /** Samples no completion took within latencyJoinMs, before close(), or before maxPendingLatencies newer ones: not recorded. */
  latencyExpired: number
  /** Samples without a string model or with a ttft_ms that is not a number of 0..3 600 000 ms: not kept. */
  latencyInvalid: number
}

export interface MetricsService {
  /** Records one completion (success defaults to true). Resolves at once; never rejects. */
  recordRequestComplete: (event: RequestComplete) => Promise<void>
  /** Records one completion, typically a failure: `{ success: false, error_type }`. Resolves at once; never rejects. */
  recordStatus: (event: RequestStatus) => Promise<void>
  /** Keeps a TTFT sample for the next completion of the same model (see above). Resolves at once; never rejects. */
  recordLatency: (sample: LatencySample) => Promise<void>
  /** Records one model-list fetch, `'success'` or `'error'`. Resolves at once; never rejects. */
  recordGatewayFetch: (status: 'success' | 'error', event: GatewayFetch) => Promise<void>
  stats: () => MetricsServiceStats
  /** Sends what is queued (MetricsClient.flush). Never rejects. */
  flush: () => Promise<void>
  /** Lets the waiting TTFT samples go (counted as expired), then closes the client. Never rejects. */
  close: () => Promise<void>
  /** The client underneath, for trackCompletion, route() and the like. */
  client: MetricsClient
}

const MAX_MS = 3_600_000
const ERROR_TYPES = new Set(['timeout', 'rate_limit', 'network', 'other'])

interface Sample { model: string, gateway: string | undefined, provider: string | undefined, ttft: number, at: number }

type Fields = Record<string, unknown>

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null
/** A string field, or undefined when absent or of another type (which then joins nothing). */
const text = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined
/** Fields given as null or undefined are left out: the service would refuse a null. */
const given = (v: unknown): boolean => v !== undefined && v !== null
const bounded = (v: number | undefined, fallback: number, min: number, max: number): number =>
  typeof v === 'number' && !Number.isNaN(v) ? Math.min(max, Math.max(min, Math.floor(v))) : fallback

export function createMetricsService (options: MetricsServiceOptions): MetricsService {
  const client = createMetricsClient(options)
  const now = options.now ?? (() => performance.now())
  const joinMs = bounded(options.latencyJoinMs, 300_000, 0, MAX_MS)
  const maxPending = bounded(options.maxPendingLatencies, 10_000, 0, Number.MAX_SAFE_INTEGER)
  const defaultGateway = options.gateway

  /** Every waiting sample, oldest first (they arrive in time order), and the same samples by model. */
  const pending = new Set<Sample>()
  const byModel = new Map<string, Sample[]>()
  const counts = { latencyJoined: 0, latencyExpired: 0, latencyInvalid: 0 }
  let closed = false

  const remove = (s: Sample): void => {
    pending.delete(s)
    const list = byModel.get(s.model)!
    list.splice(list.indexOf(s), 1)
    if (list.length === 0) byModel.delete(s.model)
  }

  /** Lets go of the samples older than latencyJoinMs. */
  const sweep = (): void => {
    const t = now()
    for (const s of pending) {
      if (t - s.at < joinMs) return
      remove(s)
      counts.latencyExpired++
    }
  }

  /** Two ids agree when equal or when either is missing. */
  const agree = (a: string | undefined, b: string | undefined): boolean => a === undefined || b === undefined || a === b

  /** Takes the oldest waiting sample that fits a completion, if any. */
  const take = (model: string, gateway: string | undefined, provider: string | undefined): Sample | undefined => {
    const s = byModel.get(model)?.find((s) => agree(s.gateway, gateway) && agree(s.provider, provider))
    if (s !== undefined) {
      remove(s)
      counts.latencyJoined++
    }
    return s
  }

  const latency = (sample: unknown): void => {
    const ttft = isObject(sample) ? sample.ttft_ms : undefined
    if (!isObject(sample) || typeof sample.model !== 'string' || typeof ttft !== 'number' || !(ttft >= 0 && ttft <= MAX_MS)) {
      counts.latencyInvalid++
      return
    }
    if (closed || maxPending === 0) {
      counts.latencyExpired++
      return
    }
    const s: Sample = { model: sample.model, gateway: text(sample.gateway), provider: text(sample.provider), ttft, at: now() }
    if (pending.size >= maxPending) {
      remove(pending.values().next().value!)
      counts.latencyExpired++
    }
    pending.add(s)
    const list = byModel.get(s.model)
    if (list === undefined) byModel.set(s.model, [s])
    else list.push(s)
  }

  const completion = (e: unknown, success: unknown): void => {
    // Not an object: the client counts it as invalid, like any event the service could not read.
    if (!isObject(e)) {
      client.recordChat(e as ChatEvent)
      return
    }
    const sample = typeof e.model === 'string' ? take(e.model, text(e.gateway), text(e.provider)) : undefined
    const event: Fields = { model: e.model }
    const gateway = given(e.gateway) ? e.gateway : sample?.gateway ?? defaultGateway
    if (gateway !== undefined) event.gateway = gateway
    const provider = given(e.provider) ? e.provider : sample?.provider
    if (provider !== undefined) event.provider = provider
    event.success = success
    const ttft = given(e.ttft_ms) ? e.ttft_ms : sample?.ttft
    if (ttft !== undefined) event.ttft_ms = ttft
    if (given(e.total_time_ms)) event.total_time_ms = e.total_time_ms
    // The service knows four error types and takes one only with a failure: any other name still
    // counts the failure (as other) instead of getting the whole event refused.
    if (success === false && given(e.error_type)) event.error_type = ERROR_TYPES.has(e.error_type as string) ? e.error_type : 'other'
    const input = given(e.input_tokens) ? e.input_tokens : e.prompt_tokens
    if (given(input)) event.input_tokens = input
    const output = given(e.output_tokens) ? e.output_tokens : e.completion_tokens
    if (given(output)) event.output_tokens = output
    if (given(e.streamed)) event.streamed = e.streamed
    if (given(e.timestamp)) event.timestamp = e.timestamp
    client.recordChat(event as ChatEvent)
  }

  const fetched = (status: unknown, e: unknown): void => {
    // The SDK's own shape, one argument with a status, is taken as it is.
    if (isObject(status)) {
      client.recordGatewayFetch(status as GatewayFetchEvent)
      return
    }
    if (!isObject(e)) {
      client.recordGatewayFetch(e as GatewayFetchEvent)
      return
    }
    const event: Fields = { gateway: e.gateway, status }
    if (status === 'success') {
      if (given(e.model_count)) event.model_count = e.model_count
      if (given(e.models)) event.models = e.models
    }
    if (status === 'error' && given(e.error_type)) event.error_type = e.error_type === 'timeout' ? 'timeout' : 'error'
    if (given(e.response_time_ms)) event.response_time_ms = e.response_time_ms
    if (given(e.timestamp)) event.timestamp = e.timestamp
    client.recordGatewayFetch(event as GatewayFetchEvent)
  }

  /**
   * Runs a record call so that nothing reaches the caller: an argument that cannot even be read (a
   * getter or proxy that throws) is counted by the client as invalid, as one it could not serialize.
   */
  const settle = async (fn: () => void, unreadable: () => void): Promise<void> => {
    try {
      sweep()
      fn()
    } catch {
      unreadable()
    }
  }
  const invalidChat = (): void => { client.recordChat(null as unknown as ChatEvent) }

  return {
    client,
    recordRequestComplete: async (event) => { await settle(() => { completion(event, isObject(event) && given(event.success) ? event.success : true) }, invalidChat) },
    recordStatus: async (event) => { await settle(() => { completion(event, isObject(event) ? event.success : undefined) }, invalidChat) },
    recordLatency: async (sample) => { await settle(() => { latency(sample) }, () => { counts.latencyInvalid++ }) },
    recordGatewayFetch: async (status, event) => { await settle(() => { fetched(status, event) }, () => { client.recordGatewayFetch(null as unknown as GatewayFetchEvent) }) },
    stats: () => {
      sweep()
      return { ...client.stats(), latencyPending: pending.size, ...counts }
    },
    flush: async () => {
      sweep()
      await client.flush()
    },
    close: async () => {
      closed = true
      counts.latencyExpired += pending.size
      pending.clear()
      byModel.clear()
      await client.close()
    }
  }
}
