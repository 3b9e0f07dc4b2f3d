import type { FastifyReply } from 'fastify'
import type { Cached } from '../plugins/read-cache.js'

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
