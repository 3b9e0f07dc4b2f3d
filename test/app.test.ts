import t from 'tap'
import { clientErrorHandler, REQUEST_TIMEOUT_MS, serverOptions } from '../src/app.js'
import { defaultConfig } from '../src/config.js'

t.test('serverOptions: the logger follows LOG_LEVEL and never logs the Authorization header', async (t) => {
  t.match(serverOptions(defaultConfig({ logLevel: 'warn' })).logger, { level: 'warn', redact: ['req.headers.authorization'] })
  t.equal(serverOptions(defaultConfig({ logLevel: 'silent' })).logger, false, 'silent: no logger at all, not one writing nothing per request')
  t.equal(serverOptions(defaultConfig(), false).logger, false)
  t.match(serverOptions(defaultConfig()), { bodyLimit: 1_048_576, return503OnClosing: true })
})

t.test('serverOptions: the request timeout is given to Node when the server is created (enforced only then)', async (t) => {
  const opts = serverOptions(defaultConfig())
  t.match(opts.http, { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS })
  t.ok((opts.http?.connectionsCheckingInterval ?? Infinity) <= 1_000, 'checked every second at most, not every 30 s')
  t.equal(opts.clientErrorHandler, clientErrorHandler, 'Node\'s own refusals go through the handler that logs no raw packet')
})
