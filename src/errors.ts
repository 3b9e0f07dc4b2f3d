import createError from '@fastify/error'

/** Every error code the service answers with, in one place. */
export const StoreUnavailableError = createError('METRICS_STORE_UNAVAILABLE', 'the metrics store is unreachable; try again shortly', 503)
export const InvalidQueryError = createError('METRICS_INVALID_QUERY', '%s', 400)
