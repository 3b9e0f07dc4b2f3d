import type { FastifyReply, FastifyRequest } from 'fastify'
import { isReadBusy, READ_RETRY_S } from '../read/budget.js'
import { viewOf } from '../read/params.js'
import { storeLoad } from '../read/store-load.js'

/** Each cached answer's JSON, made once: a hot answer is served many times within its TTL. */
const serialized = new WeakMap<object, ReturnType<FastifyReply['serialize']>>()

/**
 * What of a cached answer a request is sent, when not all of it: `key` names the view among the
 * views of that answer and `project` makes it (once per answer, read/params.ts viewOf).
 */
export interface CachedView<T extends object> {
  key: string
  project: (value: T) => object
}

/**
 * Answers a GET from the read cache: the answer for `key`, loaded from the store on a miss (a store
 * failure is a 503; a load the read budget refused is a 503 with Retry-After), sent whole or as
 * `view` of it, with Cache-Control max-age set to the cached answer's remaining life. The body is
 * serialized by the route's response schema the first time an answer (or view) is sent and reused
 * after that; it goes away with the answer when the cache drops it.
 */
export async function replyCached<T extends object> (
  request: FastifyRequest,
  reply: FastifyReply,
  key: string,
  load: () => Promise<T>,
  view?: CachedView<T>
): Promise<FastifyReply> {
  let cached
  try {
    cached = await request.server.readCache.get(key, storeLoad(request.log, load))
  } catch (err) {
    if (isReadBusy(err)) void reply.header('retry-after', String(READ_RETRY_S))
    throw err
  }
  const value = view === undefined ? cached.value : viewOf(cached.value, view.key, view.project)
  let body = serialized.get(value)
  if (body === undefined) {
    body = reply.serialize(value)
    serialized.set(value, body)
  }
  return await reply.header('cache-control', `max-age=${cached.maxAgeSec}`).type('application/json; charset=utf-8').send(body)
}
