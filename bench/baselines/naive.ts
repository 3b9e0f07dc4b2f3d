/**
 * The naive design this service replaces, on the same key layout: every recorded event goes to Redis
 * as its own fire-and-forget pipeline of the same key updates (HINCRBY / HSET and PEXPIREAT per key,
 * no in-process aggregation, no idempotency), and every read fetches each bucket's hashes and merges
 * them in JS, with no cache.
 */
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { Aggregator } from '../../src/ingest/aggregator.js'
import { chatValidator } from '../../src/ingest/normalize.js'
import type { ChatEvent, EntityType } from '../../src/metrics/events.js'
import type { WindowName } from '../../src/metrics/buckets.js'
import { readRealtime } from '../../src/read/realtime.js'
import { addFields, mergeFields } from '../../src/store/merge.js'
import type { Fields, MergeRead, MetricsStore } from '../../src/store/types.js'
import { ChatBodySchema, ChatEventSchema, FetchEventSchema } from '../../src/schemas/ingest.js'

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')

/** Reads with one HGETALL per key and the merge in JS. */
const naiveStore: Pick<MetricsStore, 'read'> = {
  async read (reads: MergeRead[]): Promise<Fields[][]> {
    const p = redis.pipeline()
    for (const r of reads) for (const k of r.keys) p.hgetall(k)
    const replies = (await p.exec()) ?? []
    let i = 0
    return reads.map((r) => {
      const out: Fields[] = Array.from({ length: r.nSlots }, () => ({}))
      r.keys.forEach((_, k) => {
        const fields = (replies[i++]?.[1] ?? {}) as Fields
        const slot = out[r.slots[k] ?? 0] as Fields
        if (r.counters?.[k] === true) addFields(slot, new Map(Object.entries(fields)))
        else mergeFields(slot, fields)
      })
      return out
    })
  }
}

const app = Fastify({ logger: false })
app.addSchema(ChatEventSchema)
app.addSchema(FetchEventSchema)
const validate = chatValidator(() => ({ now: Date.now(), retentionHours: 168 }))
app.get('/healthz', async () => ({ status: 'ok' }))
app.post('/api/metrics/chat', { schema: { body: ChatBodySchema }, validatorCompiler: () => validate }, async (request, reply) => {
  const events = request.body as unknown as ChatEvent[]
  for (const e of events) {
    const one = new Aggregator()
    one.addChat(e)
    const p = redis.pipeline()
    for (const g of one.seal({ now: Date.now(), retentionHours: 168, instanceId: 'naive' })) {
      for (const k of g.keys) {
        for (const [op, field, value] of k.ops) {
          if (op === 'i') p.hincrby(k.key, field, value)
          else p.hset(k.key, field, value)
        }
        p.pexpireat(k.key, k.expireAt)
      }
    }
    p.exec().catch(() => {})
  }
  return await reply.code(202).send({ accepted: events.length })
})
app.get<{ Querystring: { type?: EntityType, id: string, window?: WindowName } }>('/api/metrics/realtime', async (request) => {
  const q = request.query
  return await readRealtime(naiveStore as MetricsStore, q.type ?? 'model', q.id, q.window ?? '1h', Date.now())
})
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT) })
process.once('SIGTERM', () => { void app.close().then(() => { redis.disconnect(); process.exit(0) }) })
