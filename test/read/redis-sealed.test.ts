/**
 * The whole read suite (read-suite.ts) on a real Redis whose data has been sealed: each app's events
 * are posted and flushed as the suite does, then, before the first read, a sealer pass moves every
 * closed period into blocks. Every answer must be the one the suite computes from the raw events,
 * as on live data (redis.test.ts). A second run seals the open buckets too (a pass an hour ahead),
 * so that every bucket read is a block, and whatever a test posts afterwards lands beside one.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { Sealer } from '../../src/jobs/sealer.js'
import { MINUTE_MS } from '../../src/metrics/buckets.js'
import { RedisStore } from '../../src/store/redis-store.js'
import { build } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { readSuite } from './read-suite.js'

const RUNS: Array<[string, number[]]> = [
  ['every closed period sealed', [0]],
  ['every bucket sealed, the open ones included', [0, 62 * MINUTE_MS]]
]

t.test('read side on Redis, on sealed data', async (t) => {
  const redis = await startRedis(t)
  if (redis === null) return
  // each app gets its own logical database, so a fresh app starts on an empty store
  let db = 0
  for (const [name, ahead] of RUNS) {
    await t.test(name, async (t) => {
      await readSuite(t, async (t) => {
        const url = `${redis.url}/${db++}`
        const store = new RedisStore({ url })
        t.teardown(() => store.close())
        t.equal(await store.connect(2000), true, 'connected to redis')
        const { app } = await build(t, { store })
        const fixtureNow = Date.now()
        const sealer = new Sealer({ store, retentionHours: 168, log: app.log, member: 'test' })
        let sealed: Promise<void> | null = null
        const seal = async (): Promise<void> => {
          const look = new Redis(url)
          try {
            const live = (await look.keys('metrics:*')).filter((k) => /:\d{4}-\d{2}-\d{2}-\d{2}(-\d{2})?$/.test(k))
            let units = 0
            for (const ms of ahead) units += (await sealer.pass(fixtureNow + ms)).units
            const blocks = await look.keys('*:sealed:*')
            if (live.length === 0) t.equal(units, 0, 'an empty store: nothing to seal')
            else t.ok(units > 0 && blocks.length > 0, `sealed before the first read: ${units} units, ${blocks.length} blocks`)
          } finally {
            look.disconnect()
          }
        }
        // The suite posts and flushes, then reads: the first read waits for the seal.
        const inject = app.inject.bind(app) as (opts: InjectOptions) => Promise<LightMyRequestResponse>
        Object.assign(app, {
          inject: async (opts: InjectOptions): Promise<LightMyRequestResponse> => {
            if ((opts.method ?? 'GET') === 'GET') await (sealed ??= seal())
            return await inject(opts)
          }
        })
        return app as FastifyInstance
      })
    })
  }
})
