import t from 'tap'
import { serverOptions } from '../src/app.js'
import { defaultConfig } from '../src/config.js'

t.test('serverOptions: the logger follows LOG_LEVEL and never logs the Authorization header', async (t) => {
  t.match(serverOptions(defaultConfig({ logLevel: 'warn' })).logger, { level: 'warn', redact: ['req.headers.authorization'] })
  t.equal(serverOptions(defaultConfig({ logLevel: 'silent' })).logger, false, 'silent: no logger at all, not one writing nothing per request')
  t.equal(serverOptions(defaultConfig(), false).logger, false)
  t.match(serverOptions(defaultConfig()), { bodyLimit: 1_048_576, return503OnClosing: true })
})
