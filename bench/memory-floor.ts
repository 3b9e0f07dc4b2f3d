/**
 * How small the bench's 24 h of traffic could be in Redis: seeds it as `npm run bench` does, then
 * re-encodes every stored hash in a packed layout and measures that too.
 *
 *   npm run bench:memory -- [--flat]    (--flat: 1 req/s for each of 300 models instead of Zipf 100 req/s)
 *
 * Packed layout: one key per entity (or pair) and hour, holding the hour bucket as one field and each
 * minute (and 10-minute) bucket as a field of its own; each field's value is the bucket's hashes in varints (a code
 * per named field, histogram bins delta-coded). Reported: used_memory as stored today, used_memory
 * of the packed layout, and the packed bytes alone (what any layout must hold at this histogram
 * resolution, before Redis's per-key and per-field overhead).
 */
import { rmSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { RedisStore } from '../src/store/redis-store.js'
import { spawnRedis, stopProcess } from '../test/helpers/redis.js'
import { seedTraffic, zipf } from './lib/seed.js'

const { values } = parseArgs({ options: { flat: { type: 'boolean', default: false } } })

async function usedMemory (r: Redis): Promise<number> {
  await r.call('MEMORY', 'PURGE')
  const info = await r.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1]) - Number(/used_memory_startup:(\d+)/.exec(info)?.[1])
}

function varint (n: number, out: number[]): void {
  let v = Math.max(0, Math.round(n))
  while (v >= 128) {
    out.push((v % 128) | 128)
    v = Math.floor(v / 128)
  }
  out.push(v)
}

/** One stored hash in varints: named fields as (code, value), numeric fields (bins) delta-coded. */
function pack (family: string, h: Record<string, string>, codes: Map<string, number>, out: number[]): void {
  const bins = Object.keys(h).filter((f) => /^\d+$/.test(f)).map(Number).sort((a, b) => a - b)
  const named = Object.keys(h).filter((f) => !/^\d+$/.test(f))
  varint(named.length, out)
  for (const f of named) {
    let code = codes.get(`${family}:${f}`)
    if (code === undefined) codes.set(`${family}:${f}`, code = codes.size)
    varint(code, out)
    const v = h[f]!
    if (/^\d+$/.test(v)) varint(Number(v), out)
    else {
      const bytes = Buffer.from(v)
      varint(bytes.length, out)
      out.push(...bytes)
    }
  }
  varint(bins.length, out)
  let prev = 0
  for (const b of bins) {
    varint(b - prev, out)
    prev = b
    varint(Number(h[String(b)]), out)
  }
}

const stored = await spawnRedis()
const packed = await spawnRedis()
const a = new Redis(`redis://127.0.0.1:${stored.port}`)
const b = new Redis(`redis://127.0.0.1:${packed.port}`)
try {
  const store = new RedisStore({ url: `redis://127.0.0.1:${stored.port}` }, { commandTimeout: 120_000 })
  await store.connect(2000)
  const weights = zipf(300)
  const events = await seedTraffic(store, { models: 300, hours: 24, ratePerSec: values.flat === true ? () => 1 : (m) => 100 * (weights[m] ?? 0) })
  await store.close()
  const asStored = await usedMemory(a)
  const keysStored = await a.dbsize()

  // entity-or-pair + resolution + hour → field (minute, or 'h') → packed bytes
  const groups = new Map<string, Map<string, number[]>>()
  const codes = new Map<string, number>()
  let cursor = '0'
  do {
    const [next, batch] = await a.scan(cursor, 'COUNT', 1000)
    cursor = next
    const p = a.pipeline()
    for (const k of batch) p.hgetall(k)
    const res = (await p.exec()) ?? []
    batch.forEach((key, i) => {
      const m = /^(.*):([a-z_]+):(\d{4}-\d\d-\d\d-\d\d)(?:-(\d\d(?:\+10m)?))?$/.exec(key)
      if (m === null) return // markers and model lists: left out of both sides' difference
      // `minute` is a minute bucket's minute, or a 10-minute bucket's first minute with `+10m`.
      const [, entity, family, hour, minute] = m as unknown as [string, string, string, string, string | undefined]
      const group = `${entity}:${minute === undefined ? 'h' : 'm'}:${hour}`
      let fields = groups.get(group)
      if (fields === undefined) groups.set(group, fields = new Map())
      let out = fields.get(minute ?? 'h')
      if (out === undefined) fields.set(minute ?? 'h', out = [])
      pack(family, (res[i]?.[1] ?? {}) as Record<string, string>, codes, out)
    })
  } while (cursor !== '0')

  let bytes = 0
  let written = 0
  let p = b.pipeline()
  for (const [group, fields] of groups) {
    for (const [field, out] of fields) {
      bytes += out.length
      p.hset(group, field, Buffer.from(out))
    }
    p.pexpire(group, 86_400_000)
    if (++written % 500 === 0) {
      await p.exec()
      p = b.pipeline()
    }
  }
  await p.exec()
  const asPacked = await usedMemory(b)
  const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
  process.stdout.write([
    `traffic: ${values.flat === true ? '1 req/s for each of 300 models' : 'Zipf 100 req/s over 300 models'}, 24 h, ${events} events`,
    `as stored:     ${mb(asStored)} in ${keysStored} keys`,
    `packed layout: ${mb(asPacked)} in ${groups.size} keys`,
    `packed bytes alone: ${mb(bytes)}`
  ].join('\n') + '\n')
} finally {
  a.disconnect()
  b.disconnect()
  await stopProcess(stored.proc)
  await stopProcess(packed.proc)
  rmSync(stored.dir, { recursive: true, force: true })
  rmSync(packed.dir, { recursive: true, force: true })
}
