import type { FastifyBaseLogger } from 'fastify'
import { StoreUnavailableError } from '../errors.js'

/** A store failure becomes a 503 with a clear message; the cause goes to the log. */
export function storeLoad<T> (log: FastifyBaseLogger, load: () => Promise<T>): () => Promise<T> {
  return async () => {
    try {
      return await load()
    } catch (err) {
      log.warn({ err }, 'store read failed')
      throw new StoreUnavailableError()
    }
  }
}
