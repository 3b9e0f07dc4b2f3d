import createError from '@fastify/error'

/** Every error code the service answers with, in one place. */
export const StoreUnavailableError = createError('METRICS_STORE_UNAVAILABLE', 'the metrics store is unreachable; try again shortly', 503)
export const InvalidQueryError = createError('METRICS_INVALID_QUERY', '%s', 400)
export const UnauthorizedError = createError('METRICS_UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <one of %s>)', 401)
export const BufferFullError = createError('METRICS_BUFFER_FULL', 'the buffer is full while the store catches up; retry after the Retry-After delay', 503)
export const CardinalityError = createError('METRICS_TOO_MANY_IDS', '%s', 429)
export const StreamFullError = createError('METRICS_STREAM_FULL', 'the metrics stream has %d subscribers, its limit; retry after the Retry-After delay', 503)
export const InvalidHeaderError = createError('METRICS_INVALID_HEADER', '%s', 400)
export const MediaTypeError = createError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 'the body must be JSON: send Content-Type: application/json (got %s)', 415)
export const RateLimitedError = createError('METRICS_RATE_LIMITED', '%s', 429)
/** Recording, while the ids an hour already holds are read from the store (a new id can be counted only then). */
export const HourLoadingError = createError('METRICS_STORE_UNAVAILABLE', 'the ids recorded in hour %s are being read from the store; retry after the Retry-After delay', 503)
export const ReadBusyError = createError('METRICS_READ_BUSY', 'the store reads of this instance are at their budget (METRICS_READ_CONCURRENCY, METRICS_READ_QUEUE, METRICS_READ_BUDGET_MS); retry after the Retry-After delay', 503)
export const StreamConnectionBusyError = createError('METRICS_STREAM_CONNECTION_BUSY', 'this connection carries a stream already: open another connection for another stream', 429)
