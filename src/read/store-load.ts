import type { FastifyBaseLogger } from 'fastify'
import { StoreUnavailableError } from '../errors.js'
import { isReadBusy } from './budget.js'

/**
 * A store failure becomes a 503 with a clear message; the cause goes to the log. A read the read
 * budget refused stays what it is (a 503 of its own, with Retry-After): the store is fine.
 */
export function storeLoad<T> (log: FastifyBaseLogger, load: () => Promise<T>): () => Promise<T> {
  return async () => {
    try {
      return await load()
    } catch (err) {
      if (isReadBusy(err)) throw err
      log.warn({ err }, 'store read failed')
      throw new StoreUnavailableError()
    }
  }
}
