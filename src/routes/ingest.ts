import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import type { Config } from '../config.js'
import { BufferFullError, CardinalityError, InvalidHeaderError } from '../errors.js'
import { refusalMessage } from '../ingest/cardinality.js'
import { chatValidator, fetchValidator } from '../ingest/normalize.js'
import { HOUR_MS } from '../metrics/buckets.js'
import type { ChatEvent, FetchEvent } from '../metrics/events.js'
import { AcceptedSchema, ChatBodySchema, FetchBodySchema } from '../schemas/ingest.js'
import { IngestErrors, response } from '../schemas/common.js'
import { idempotencyKey } from '../store/keys.js'

/** What an Idempotency-Key may hold: visible ASCII (a UUID, a ULID, a producer id and sequence). */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7E]{1,255}$/

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: '^[\\x21-\\x7E]+$',
    description: 'Optional. Requests with the same key (and route) are applied at most once within METRICS_IDEMPOTENCY_WINDOW_MS, across retries, instances and restarts; a repeat is answered 202 like the first. Send a new key for a new batch and the same key when retrying one'
  }))
})

/** The request's Idempotency-Key, undefined without one; a malformed one is refused, naming the header. */
function keyOf (request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key']
  if (raw === undefined) return undefined
  if (typeof raw !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(raw)) throw new InvalidHeaderError('headers.idempotency-key must be 1 to 255 visible ASCII characters (no spaces), sent once')
  return raw
}

/** Seconds until the hour turns, when every per-hour cardinality limit starts afresh. */
function secondsToNextHour (now: number): number {
  return Math.max(1, Math.ceil((HOUR_MS - (now % HOUR_MS)) / 1000))
}

/**
 * Recording routes. The body validator checks and normalizes the whole body (all-or-nothing); the
 * handler only adds to the in-process buffer and answers 202: it never waits for the store. The
 * handlers are synchronous (nothing to await; a throw is answered like a rejection), which spares
 * the hottest route a promise and a tick per request.
 */
/** Headers are declared for the OpenAPI document and checked by `keyOf`, where the message names the header. */
const passHeaders = (data: unknown): { value: unknown } => ({ value: data })

const ingestRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { flusher, cardinalityGuard } = fastify
  const limits = () => ({ now: Date.now(), retentionHours: opts.config.retentionHours })
  /** Refuses the whole request (nothing recorded) when the buffer is full or an id is one too many. */
  const admit = (chat: ChatEvent[], fetch: FetchEvent[], reply: FastifyReply, keyed: boolean): void => {
    if (!flusher.hasRoomFor(chat, fetch, keyed)) {
      void reply.header('retry-after', String(flusher.retryAfterSec))
      throw new BufferFullError()
    }
    const refused = cardinalityGuard.admit(chat, fetch)
    if (refused !== null) {
      void reply.header('retry-after', String(secondsToNextHour(Date.now())))
      // Serialized by the 429 response schema: clients (the SDK) drop the events naming this id only.
      throw Object.assign(new CardinalityError(refusalMessage(refused)), { refused: { type: refused.type, id: refused.id, limit: refused.limit } })
    }
  }
  /** The header is checked by the route's own code: the body validator is the route's only compiled one. */
  const schemaOf = (schema: FastifySchema): FastifySchema => ({ ...schema, headers: IdempotencyHeaders })
  const chat = chatValidator(limits)
  const fetch = fetchValidator(limits)

  fastify.post('/api/metrics/chat', {
    schema: schemaOf({
      summary: 'Record one finished chat completion, or a batch of up to 1000',
      description: 'One invalid event rejects the whole request and records nothing. Accepted events reach the store within METRICS_FLUSH_INTERVAL_MS while it is up, exactly once.',
      tags: ['recording'],
      security: [{ ingestToken: [] }],
      body: ChatBodySchema,
      response: { 202: response(AcceptedSchema, 'Accepted: buffered and promised to the store'), ...IngestErrors }
    }),
    validatorCompiler: ({ httpPart }) => httpPart === 'body' ? chat : passHeaders,
    config: { auth: 'ingest' }
  }, (request, reply) => {
    const events = request.body as unknown as ChatEvent[]
    const key = keyOf(request)
    admit(events, [], reply, key !== undefined)
    if (key !== undefined) flusher.addKeyed(idempotencyKey('chat', key), events, [])
    else for (const e of events) flusher.addChat(e)
    void reply.code(202).send({ accepted: events.length })
  })

  fastify.post('/api/metrics/gateway/fetch', {
    schema: schemaOf({
      summary: 'Record one model-list fetch by a gateway, or a batch of up to 1000',
      description: 'Shown under gateway_fetches of realtime?type=gateway.',
      tags: ['recording'],
      security: [{ ingestToken: [] }],
      body: FetchBodySchema,
      response: { 202: response(AcceptedSchema, 'Accepted: buffered and promised to the store'), ...IngestErrors }
    }),
    validatorCompiler: ({ httpPart }) => httpPart === 'body' ? fetch : passHeaders,
    config: { auth: 'ingest' }
  }, (request, reply) => {
    const events = request.body as unknown as FetchEvent[]
    const key = keyOf(request)
    admit([], events, reply, key !== undefined)
    if (key !== undefined) flusher.addKeyed(idempotencyKey('fetch', key), [], events)
    else for (const e of events) flusher.addFetch(e)
    void reply.code(202).send({ accepted: events.length })
  })
}

export default ingestRoutes
