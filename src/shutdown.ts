import type { FastifyInstance } from 'fastify'

/**
 * What close-with-grace runs on SIGTERM/SIGINT (or an uncaught error): log why, then close the app,
 * which stops accepting, writes the buffer and closes Redis.
 */
export function gracefulClose (app: Pick<FastifyInstance, 'log' | 'close'>) {
  return async ({ signal, err }: { signal?: string, err?: Error }): Promise<void> => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'closing')
    await app.close()
  }
}
