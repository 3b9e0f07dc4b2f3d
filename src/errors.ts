import createError from '@fastify/error'

/** Every error code the service answers with, in one place. */
export const StoreUnavailableError = createError('METRICS_STORE_UNAVAILABLE', 'the metrics store is unreachable; try again shortly', 503)
export const InvalidQueryError = createError('METRICS_INVALID_QUERY', '%s', 400)
export const UnauthorizedError = createError('METRICS_UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <one of %s>)', 401)
export const BufferFullError = createError('METRICS_BUFFER_FULL', 'the buffer is full while the store catches up; retry after the Retry-After delay', 503)
export const CardinalityError = createError('METRICS_TOO_MANY_IDS', '%s', 429)
export const StreamFullError = createError('METRICS_STREAM_FULL', 'the metrics stream has %d subscribers, its limit; retry after the Retry-After delay', 503)
export const InvalidHeaderError = createError('METRICS_INVALID_HEADER', '%s', 400)
