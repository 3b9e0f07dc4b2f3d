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

void main()
