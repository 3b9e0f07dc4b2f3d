/**
 * The ceiling: a bare Fastify app with the same body schema and the same response sizes as the
 * service, doing no work. No route of ours can be faster on this machine.
 */
import Fastify from 'fastify'
import { ChatBodySchema, ChatEventSchema, FetchEventSchema } from '../../src/schemas/ingest.js'

const app = Fastify({ logger: false })
app.addSchema(ChatEventSchema)
app.addSchema(FetchEventSchema)
const answer = JSON.parse(process.env.CEILING_GET_BODY ?? '{}') as object
app.get('/healthz', async () => ({ status: 'ok' }))
app.post('/api/metrics/chat', { schema: { body: ChatBodySchema } }, async (request, reply) => {
  const n = Array.isArray(request.body) ? request.body.length : 1
  return await reply.code(202).send({ accepted: n })
})
app.get('/api/metrics/realtime', async () => answer)
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT) })
process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
