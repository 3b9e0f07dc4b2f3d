import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

t.test('stream settings: defaults, variables, bad values named', async (t) => {
  t.same(loadConfig({}).stream, { intervalMs: 2000, heartbeatMs: 15_000, maxSubscribers: 1000 })
  t.same(loadConfig({ METRICS_STREAM_INTERVAL_MS: '500', METRICS_STREAM_HEARTBEAT_MS: '30000', METRICS_STREAM_MAX_SUBSCRIBERS: '20' }).stream, { intervalMs: 500, heartbeatMs: 30_000, maxSubscribers: 20 })
  for (const [name, value, why] of [
    ['METRICS_STREAM_INTERVAL_MS', '50', /greater or equal to 100/],
    ['METRICS_STREAM_HEARTBEAT_MS', 'often', /expected integer/],
    ['METRICS_STREAM_MAX_SUBSCRIBERS', '0', /greater or equal to 1/]
  ] as Array<[string, string, RegExp]>) {
    const err = t.throws(() => loadConfig({ [name]: value }), ConfigError) as Error
    t.match(err.message, new RegExp(`^invalid ${name}=`), `names ${name}`)
    t.match(err.message, why)
  }
})
