import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Cached } from '../read/cache.js'
import { isReadBusy, READ_RETRY_S } from '../read/budget.js'
import { storeLoad } from '../read/store-load.js'

/** Each cached answer's JSON, made once: a hot answer is served many times within its TTL. */
const serialized = new WeakMap<object, ReturnType<FastifyReply['serialize']>>()

/**
 * Sends a read-cache answer with Cache-Control set to its remaining life. The body is serialized by
 * the route's response schema the first time the cached object is sent and reused after that; it
 * goes away with the object when the cache drops it.
 */
export function sendCached (reply: FastifyReply, { value, maxAgeSec }: Cached<object>): FastifyReply {
  let body = serialized.get(value)
  if (body === undefined) {
    body = reply.serialize(value)
    serialized.set(value, body)
  }
  return reply.header('cache-control', `max-age=${maxAgeSec}`).type('application/json; charset=utf-8').send(body)
}

/**
 * The read cache's answer for `key`, loaded from the store on a miss (a store failure is a 503). A
 * load the read budget refused is a 503 with Retry-After.
 */
export async function cachedRead<T extends object> (request: FastifyRequest, reply: FastifyReply, key: string, load: () => Promise<T>): Promise<Cached<T>> {
  try {
    return await request.server.readCache.get(key, storeLoad(request.log, load))
  } catch (err) {
    if (isReadBusy(err)) void reply.header('retry-after', String(READ_RETRY_S))
    throw err
  }
}
