import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import type { Config } from '../config.js'
import { BufferFullError, CardinalityError } from '../errors.js'
import { refusalMessage } from '../ingest/cardinality.js'
import { chatValidator, fetchValidator } from '../ingest/normalize.js'
import type { ChatEvent, FetchEvent } from '../metrics/events.js'
import { AcceptedSchema, ChatBodySchema, FetchBodySchema } from '../schemas/ingest.js'
import { IngestErrors, response } from '../schemas/common.js'

/**
 * Recording routes. The body validator checks and normalizes the whole body (all-or-nothing); the
 * handler only adds to the in-process buffer and answers 202: it never waits for the store. The
 * handlers are synchronous (nothing to await; a throw is answered like a rejection), which spares
 * the hottest route a promise and a tick per request.
 */
const ingestRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { ingestBuffer, cardinalityGuard } = fastify
  const limits = () => ({ now: Date.now(), retentionHours: opts.config.retentionHours })
  /** Refuses the whole request (nothing recorded) when the buffer is full or an id is one too many. */
  const admit = (chat: ChatEvent[], fetch: FetchEvent[], reply: FastifyReply): void => {
    if (!ingestBuffer.hasRoomFor(chat, fetch)) {
      void reply.header('retry-after', String(ingestBuffer.retryAfterSec))
      throw new BufferFullError()
    }
    const refused = cardinalityGuard.admit(chat, fetch)
    if (refused !== null) {
      throw new CardinalityError(refusalMessage(refused))
    }
  }
  const chat = chatValidator(limits)
  const fetch = fetchValidator(limits)

  fastify.post('/api/metrics/chat', {
    schema: {
      summary: 'Record one finished chat completion, or a batch of up to 1000',
      description: 'One invalid event rejects the whole request and records nothing. Accepted events reach the store within METRICS_FLUSH_INTERVAL_MS while it is up, exactly once.',
      tags: ['recording'],
      security: [{ ingestToken: [] }],
      body: ChatBodySchema,
      response: { 202: response(AcceptedSchema, 'Accepted: buffered and promised to the store'), ...IngestErrors }
    },
    validatorCompiler: () => chat,
    config: { auth: 'ingest' }
  }, (request, reply) => {
    const events = request.body as unknown as ChatEvent[]
    admit(events, [], reply)
    for (const e of events) ingestBuffer.addChat(e)
    void reply.code(202).send({ accepted: events.length })
  })

  fastify.post('/api/metrics/gateway/fetch', {
    schema: {
      summary: 'Record one model-list fetch by a gateway, or a batch of up to 1000',
      description: 'Shown under gateway_fetches of realtime?type=gateway.',
      tags: ['recording'],
      security: [{ ingestToken: [] }],
      body: FetchBodySchema,
      response: { 202: response(AcceptedSchema, 'Accepted: buffered and promised to the store'), ...IngestErrors }
    },
    validatorCompiler: () => fetch,
    config: { auth: 'ingest' }
  }, (request, reply) => {
    const events = request.body as unknown as FetchEvent[]
    admit([], events, reply)
    for (const e of events) ingestBuffer.addFetch(e)
    void reply.code(202).send({ accepted: events.length })
  })
}

export default ingestRoutes
