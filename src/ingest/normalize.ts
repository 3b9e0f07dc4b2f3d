import type { FastifySchemaValidationError } from 'fastify'
import { HOUR_MS, MINUTE_MS } from '../metrics/buckets.js'
import { distinctSorted } from '../metrics/catalog.js'
import type { ChatEvent, FetchEvent } from '../metrics/events.js'
import { extractProvider } from '@llm-gateway-metrics/client/provider'
import { ChatEventSchema, FetchEventSchema, MAX_BATCH, type ChatEventBody, type FetchEventBody } from '../schemas/ingest.js'
import { compileBody, describeErrors } from '../validation.js'

export const MAX_FUTURE_MS = 5 * MINUTE_MS
/** Date and time joined by T (or a space, as RFC 3339 allows): not by any other whitespace. */
const ISO_START = /^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d/

export class EventValidationError extends Error {
  statusCode = 400
  code = 'METRICS_INVALID_EVENT'
  validationContext = 'body'
  validation: FastifySchemaValidationError[] = []
}

interface Limits { now: number, retentionHours: number }

/** The event time in epoch ms, or the reason it is refused. */
function eventTime (raw: number | string | undefined, at: string, l: Limits): number {
  if (raw === undefined) return l.now
  if (typeof raw === 'string' && !ISO_START.test(raw)) throw new EventValidationError(`${at}.timestamp must be epoch milliseconds or an ISO 8601 string with Z or an offset`)
  // ISO 8601 allows an hours-only offset (+02), which Date.parse does not read.
  const ts = typeof raw === 'number' ? raw : Date.parse(raw.replace(/([+-]\d\d)$/, '$1:00'))
  if (!Number.isFinite(ts)) throw new EventValidationError(`${at}.timestamp is not a valid time`)
  if (ts < l.now - l.retentionHours * HOUR_MS) throw new EventValidationError(`${at}.timestamp is older than the retention (${l.retentionHours} hours)`)
  if (ts > l.now + MAX_FUTURE_MS) throw new EventValidationError(`${at}.timestamp is more than 5 minutes in the future`)
  return ts
}

/**
 * An unpaired UTF-16 surrogate: `u` mode reads a pair as one code point (not in `Cs`), so only an
 * unpaired half matches. It has no UTF-8 form: Redis would receive U+FFFD in its place, and two ids
 * differing only there would share every key (and one flush marker, which would skip the second).
 */
const LONE_SURROGATE = /\p{Cs}/u

/** Refuses an id that is not well-formed Unicode, naming the field. */
function wellFormed (id: string | undefined, field: string): void {
  if (id !== undefined && LONE_SURROGATE.test(id)) throw new EventValidationError(`${field} must be well-formed Unicode: it holds an unpaired surrogate (\\u${id.codePointAt(id.search(LONE_SURROGATE))!.toString(16)}), which has no UTF-8 form`)
}

function chatEvent (b: ChatEventBody, at: string, l: Limits): ChatEvent {
  wellFormed(b.model, `${at}.model`)
  wellFormed(b.provider, `${at}.provider`)
  wellFormed(b.gateway, `${at}.gateway`)
  if (b.success && b.error_type !== undefined) throw new EventValidationError(`${at}.error_type is only allowed when success is false`)
  return {
    model: b.model,
    provider: b.provider ?? extractProvider(b.model),
    gateway: b.gateway ?? 'default',
    success: b.success,
    errorType: b.success ? null : (b.error_type ?? 'other'),
    ttftMs: b.ttft_ms,
    totalMs: b.total_time_ms,
    inputTokens: b.input_tokens,
    outputTokens: b.output_tokens,
    ...(b.streamed === false ? { streamed: false } : {}),
    ts: eventTime(b.timestamp, at, l)
  }
}

function fetchEvent (b: FetchEventBody, at: string, l: Limits): FetchEvent {
  const success = b.status === 'success'
  if (success && b.error_type !== undefined) throw new EventValidationError(`${at}.error_type is only allowed when status is error`)
  if (!success && b.models !== undefined) throw new EventValidationError(`${at}.models is only allowed when status is success`)
  wellFormed(b.gateway, `${at}.gateway`)
  if (b.models !== undefined) for (let i = 0; i < b.models.length; i++) wellFormed(b.models[i], `${at}.models[${i}]`)
  const models = b.models === undefined ? undefined : distinctSorted(b.models)
  return {
    gateway: b.gateway,
    success,
    errorType: success ? null : (b.error_type ?? 'error'),
    modelCount: b.model_count ?? models?.length,
    responseTimeMs: b.response_time_ms,
    ts: eventTime(b.timestamp, at, l),
    ...(models !== undefined ? { models } : {})
  }
}

export type ValidatorResult<T> = { value: T[] } | { error: Error }

/**
 * A Fastify body validator for one event or a batch of 1..1000: checks every event against the
 * schema and the rules a schema cannot say (error_type only on failures, the time window), and turns
 * the body into normalized events. The first problem rejects the whole body, naming the field (and
 * the index in a batch).
 */
function eventsValidator<B, E> (schema: typeof ChatEventSchema | typeof FetchEventSchema, convert: (b: B, at: string, l: Limits) => E, limits: () => Limits) {
  const check = compileBody<B>(schema)
  return (data: unknown): ValidatorResult<E> => {
    const batch = Array.isArray(data)
    const items: unknown[] = batch ? data : [data]
    if (!batch && (data === null || typeof data !== 'object')) return { error: new EventValidationError('body must be an event object or an array of 1 to 1000 events') }
    if (items.length === 0) return { error: new EventValidationError('body must hold at least 1 event') }
    if (items.length > MAX_BATCH) return { error: new EventValidationError(`body must hold at most ${MAX_BATCH} events`) }
    const l = limits()
    const out: E[] = []
    try {
      for (let i = 0; i < items.length; i++) {
        const at = batch ? `body[${i}]` : 'body'
        const item = items[i]
        if (!check(item)) return { error: new EventValidationError(describeErrors(check.errors!, at)) }
        out.push(convert(item as B, at, l))
      }
    } catch (err) {
      return { error: err as Error }
    }
    return { value: out }
  }
}

export function chatValidator (limits: () => Limits) {
  return eventsValidator<ChatEventBody, ChatEvent>(ChatEventSchema, chatEvent, limits)
}

export function fetchValidator (limits: () => Limits) {
  return eventsValidator<FetchEventBody, FetchEvent>(FetchEventSchema, fetchEvent, limits)
}
