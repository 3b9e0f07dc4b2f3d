import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.js'
import { chatValidator, fetchValidator } from '../ingest/normalize.js'
import type { ChatEvent, FetchEvent } from '../metrics/events.js'
import { AcceptedSchema, ChatBodySchema, FetchBodySchema } from '../schemas/ingest.js'
import { ErrorSchema } from '../schemas/common.js'

/**
 * Recording routes. The body validator checks and normalizes the whole body (all-or-nothing); the
 * handler only adds to the in-process buffer and answers 202: it never waits for the store.
 */
const ingestRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (fastify, opts) => {
  const { ingestBuffer } = fastify
  const limits = () => ({ now: Date.now(), retentionHours: opts.config.retentionHours })
  const chat = chatValidator(limits)
  const fetch = fetchValidator(limits)

  fastify.post('/api/metrics/chat', {
    schema: {
      summary: 'Record one finished chat completion, or a batch of up to 1000',
      body: ChatBodySchema,
      response: { 202: AcceptedSchema, 400: ErrorSchema }
    },
    validatorCompiler: () => chat
  }, async (request, reply) => {
    const events = request.body as unknown as ChatEvent[]
    for (const e of events) ingestBuffer.addChat(e)
    return await reply.code(202).send({ accepted: events.length })
  })

  fastify.post('/api/metrics/gateway/fetch', {
    schema: {
      summary: 'Record one model-list fetch by a gateway, or a batch of up to 1000',
      body: FetchBodySchema,
      response: { 202: AcceptedSchema, 400: ErrorSchema }
    },
    validatorCompiler: () => fetch
  }, async (request, reply) => {
    const events = request.body as unknown as FetchEvent[]
    for (const e of events) ingestBuffer.addFetch(e)
    return await reply.code(202).send({ accepted: events.length })
  })
}

export default ingestRoutes
