import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfig } from './config.js'
import { graceMs, gracefulClose } from './shutdown.js'

/** Entry point: configuration from the environment, listen, and a graceful close on SIGTERM/SIGINT. */
async function main (): Promise<void> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    process.stderr.write(`configuration error: ${(err as Error).message}\n`)
    process.exit(1)
  }
  const app = await buildApp({ config })
  closeWithGrace({ delay: graceMs(config.shutdownDelayMs) }, gracefulClose(app, config.shutdownDelayMs))
  await app.listen({ host: config.host, port: config.port })
}

/**
 * A start-up failure the operator must fix (Redis refusing the password or the database) is one line;
 * anything else its stack, never the error object whole (a Redis client error carries the command
 * that failed, password included).
 */
function startupFailed (err: Error): never {
  process.stderr.write(`start-up error: ${err.name === 'StartupError' ? err.message : String(err.stack)}\n`)
  process.exit(1)
}

main().catch(startupFailed)
