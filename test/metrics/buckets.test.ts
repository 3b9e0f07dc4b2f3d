import t, { type Test } from 'tap'
import {
  bucketExpiry,
  bucketName,
  bucketRange,
  bucketStart,
  coverMinutes,
  HOUR_MS,
  MINUTE_MS,
  MINUTE_RETENTION_MS,
  resolutionMs,
  WINDOW_NAMES,
  WINDOWS,
  type Resolution
} from '../../src/metrics/buckets.js'
import { mulberry32 } from '../helpers/random.js'

const MIN = 60_000
const HOUR = 3_600_000

/** Expected names from the ISO string (always UTC), independent of the implementation's formatting. */
function isoHour (ms: number): string {
  const iso = new Date(ms).toISOString() // 2024-02-29T23:59:59.999Z
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}`
}
function isoMinute (ms: number): string {
  const iso = new Date(ms).toISOString()
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}-${iso.slice(14, 16)}`
}

/** A deterministic PRNG for the property checks. */

/** Runs `fn` with the process time zone set to `tz`, restoring it afterwards. */
function withTz (t: Test, tz: string): void {
  const before = process.env.TZ
  process.env.TZ = tz
  t.teardown(() => {
    if (before === undefined) delete process.env.TZ
    else process.env.TZ = before
  })
}

t.test('constants and resolutionMs', async (t) => {
  t.equal(MINUTE_MS, MIN)
  t.equal(HOUR_MS, HOUR)
  t.equal(MINUTE_RETENTION_MS, 2 * HOUR, 'minute buckets are kept 2 hours')
  t.equal(resolutionMs('minute'), MIN)
  t.equal(resolutionMs('hour'), HOUR)
  t.equal(resolutionMs('tenmin'), 10 * MIN)
})

t.test('bucketName', async (t) => {
  t.test('formats hour and minute buckets as YYYY-MM-DD-HH and YYYY-MM-DD-HH-mm', async (t) => {
    const ms = Date.UTC(2024, 4, 7, 9, 5, 42, 123) // 2024-05-07T09:05:42.123Z
    t.equal(bucketName('hour', ms), '2024-05-07-09')
    t.equal(bucketName('minute', ms), '2024-05-07-09-05')
    const late = Date.UTC(2024, 10, 23, 17, 48, 0, 0)
    t.equal(bucketName('hour', late), '2024-11-23-17')
    t.equal(bucketName('minute', late), '2024-11-23-17-48')
  })

  t.test('a time exactly on a boundary starts the new bucket; one ms before is the previous one', async (t) => {
    // hour boundary
    const h = Date.UTC(2024, 4, 7, 10, 0, 0, 0)
    t.equal(bucketName('hour', h), '2024-05-07-10')
    t.equal(bucketName('hour', h - 1), '2024-05-07-09')
    t.equal(bucketName('minute', h), '2024-05-07-10-00')
    t.equal(bucketName('minute', h - 1), '2024-05-07-09-59')
    // minute boundary inside an hour
    const m = Date.UTC(2024, 4, 7, 10, 31, 0, 0)
    t.equal(bucketName('minute', m), '2024-05-07-10-31')
    t.equal(bucketName('minute', m - 1), '2024-05-07-10-30')
    t.equal(bucketName('hour', m - 1), '2024-05-07-10', 'a minute boundary is not an hour boundary')
    // day boundary (leap day)
    const d = Date.UTC(2024, 2, 1, 0, 0, 0, 0)
    t.equal(bucketName('hour', d), '2024-03-01-00')
    t.equal(bucketName('hour', d - 1), '2024-02-29-23')
    t.equal(bucketName('minute', d), '2024-03-01-00-00')
    t.equal(bucketName('minute', d - 1), '2024-02-29-23-59')
    // year boundary
    const y = Date.UTC(2025, 0, 1, 0, 0, 0, 0)
    t.equal(bucketName('hour', y), '2025-01-01-00')
    t.equal(bucketName('hour', y - 1), '2024-12-31-23')
    t.equal(bucketName('minute', y), '2025-01-01-00-00')
    t.equal(bucketName('minute', y - 1), '2024-12-31-23-59')
  })

  t.test('10-minute buckets: aligned on UTC multiples of 10 minutes, a suffix no other name has', async (t) => {
    const ms = Date.UTC(2024, 4, 7, 9, 47, 30)
    t.equal(bucketName('tenmin', ms), '2024-05-07-09-40+10m')
    t.equal(bucketName('tenmin', Date.UTC(2024, 4, 7, 9, 50)), '2024-05-07-09-50+10m', 'a boundary starts a new one')
    t.equal(bucketName('tenmin', Date.UTC(2024, 4, 7, 9, 50) - 1), '2024-05-07-09-40+10m')
    t.equal(bucketName('tenmin', Date.UTC(2025, 0, 1) - 1), '2024-12-31-23-50+10m')
    t.equal(bucketStart('tenmin', ms), Date.UTC(2024, 4, 7, 9, 40))
    t.not(bucketName('tenmin', ms), bucketName('minute', Date.UTC(2024, 4, 7, 9, 40)), 'never the name of its first minute')
  })

  t.test('is UTC whatever the process time zone', async (t) => {
    // Offsets that are not whole hours (+5:45, +13:45 in DST, −3:30) would shift minute and hour names.
    for (const tz of ['Asia/Kathmandu', 'Pacific/Chatham', 'America/St_Johns']) {
      await t.test(tz, async (t) => {
        withTz(t, tz)
        const ms = Date.UTC(2024, 0, 1, 0, 0, 0, 0)
        t.not(new Date(ms).getHours() * 60 + new Date(ms).getMinutes(), 0, 'the local clock is not UTC here')
        t.equal(bucketName('hour', ms), '2024-01-01-00')
        t.equal(bucketName('minute', ms), '2024-01-01-00-00')
        t.equal(bucketName('hour', ms - 1), '2023-12-31-23')
        t.equal(bucketName('minute', ms - 1), '2023-12-31-23-59')
      })
    }
  })

  t.test('matches the UTC ISO time for random times', async (t) => {
    const rnd = mulberry32(7)
    const lo = Date.UTC(2000, 0, 1)
    const hi = Date.UTC(2099, 11, 31)
    let bad = 0
    let example = ''
    for (let i = 0; i < 5000; i++) {
      const ms = lo + Math.floor(rnd() * (hi - lo))
      if (bucketName('hour', ms) !== isoHour(ms) || bucketName('minute', ms) !== isoMinute(ms)) {
        bad++
        example ||= new Date(ms).toISOString()
      }
    }
    t.equal(bad, 0, `every name agrees with toISOString ${example}`)
  })
})

t.test('bucketStart', async (t) => {
  const h = Date.UTC(2024, 6, 15, 13, 0, 0, 0)
  t.equal(bucketStart('hour', h), h, 'on the boundary: the bucket starts there')
  t.equal(bucketStart('hour', h + HOUR - 1), h, 'the last ms of the hour')
  t.equal(bucketStart('hour', h - 1), h - HOUR, 'one ms before: the previous hour')
  t.equal(bucketStart('minute', h + 17 * MIN + 59_999), h + 17 * MIN)
  t.equal(bucketStart('minute', h + 17 * MIN), h + 17 * MIN)
  t.equal(bucketStart('minute', h + 17 * MIN - 1), h + 16 * MIN)
  t.equal(bucketName('minute', bucketStart('minute', h + 17 * MIN + 5)), bucketName('minute', h + 17 * MIN + 5), 'the name of the start is the name of the bucket')
})

t.test('bucketRange', async (t) => {
  t.test('oldest first, count buckets, the current one last', async (t) => {
    const end = Date.UTC(2024, 4, 7, 10, 31, 27, 500)
    const r = bucketRange('minute', end, 5)
    t.equal(r.length, 5)
    t.same(r.map((b) => b.name), ['2024-05-07-10-27', '2024-05-07-10-28', '2024-05-07-10-29', '2024-05-07-10-30', '2024-05-07-10-31'])
    t.same(r.map((b) => b.start), [27, 28, 29, 30, 31].map((m) => Date.UTC(2024, 4, 7, 10, m)))
    t.equal(r.at(-1)?.start, Date.UTC(2024, 4, 7, 10, 31), 'the bucket holding endMs (partial) is last')
  })

  t.test('crosses a day boundary (minutes and hours)', async (t) => {
    const end = Date.UTC(2024, 2, 1, 0, 2, 30) // 2024-03-01T00:02:30Z, after a leap day
    t.same(bucketRange('minute', end, 5).map((b) => b.name),
      ['2024-02-29-23-58', '2024-02-29-23-59', '2024-03-01-00-00', '2024-03-01-00-01', '2024-03-01-00-02'])
    const endH = Date.UTC(2025, 0, 1, 1, 30) // 2025-01-01T01:30Z
    t.same(bucketRange('hour', endH, 6).map((b) => b.name),
      ['2024-12-31-20', '2024-12-31-21', '2024-12-31-22', '2024-12-31-23', '2025-01-01-00', '2025-01-01-01'])
  })

  t.test('endMs exactly on a boundary: that new bucket is the last one', async (t) => {
    const end = Date.UTC(2024, 4, 7, 12, 0, 0, 0)
    const r = bucketRange('hour', end, 3)
    t.same(r.map((b) => b.name), ['2024-05-07-10', '2024-05-07-11', '2024-05-07-12'])
    const r2 = bucketRange('hour', end - 1, 3)
    t.same(r2.map((b) => b.name), ['2024-05-07-09', '2024-05-07-10', '2024-05-07-11'])
  })

  t.test('consecutive buckets of one size, for every window', async (t) => {
    const end = Date.UTC(2024, 11, 31, 23, 59, 59, 999)
    for (const [name, spec] of Object.entries(WINDOWS)) {
      const r = bucketRange(spec.res, end, spec.buckets)
      const size = spec.res === 'hour' ? HOUR : MIN
      t.equal(r.length, spec.buckets, `${name}: ${spec.buckets} buckets`)
      const steps = r.slice(1).map((b, i) => b.start - (r[i]?.start ?? NaN))
      t.ok(steps.every((s) => s === size), `${name}: each bucket starts one ${spec.res} after the previous`)
      t.ok(r.every((b) => b.name === (spec.res === 'hour' ? isoHour(b.start) : isoMinute(b.start))), `${name}: names match starts`)
      const last = r.at(-1)
      t.ok(last !== undefined && last.start <= end && end < last.start + size, `${name}: the last bucket holds endMs`)
    }
  })

  t.test('count 1 is just the current bucket', async (t) => {
    const end = Date.UTC(2024, 4, 7, 12, 34, 56)
    t.same(bucketRange('minute', end, 1), [{ name: '2024-05-07-12-34', start: Date.UTC(2024, 4, 7, 12, 34) }])
  })
})

t.test('bucketExpiry', async (t) => {
  const hStart = Date.UTC(2024, 4, 7, 10)
  t.equal(bucketExpiry('hour', hStart, 168), hStart + HOUR + 168 * HOUR, 'hour: end of the bucket plus the retention')
  t.equal(bucketExpiry('hour', hStart, 1), hStart + 2 * HOUR)
  t.equal(bucketExpiry('hour', hStart, 24), Date.UTC(2024, 4, 8, 11))
  const mStart = Date.UTC(2024, 4, 7, 10, 41)
  t.equal(bucketExpiry('minute', mStart, 168), Date.UTC(2024, 4, 7, 12, 42), 'minute: end of the bucket plus 2 hours')
  t.equal(bucketExpiry('minute', mStart, 1), Date.UTC(2024, 4, 7, 12, 42), 'minute retention does not depend on the hour retention')
  t.equal(bucketExpiry('minute', mStart, 720), Date.UTC(2024, 4, 7, 12, 42))
  const tStart = Date.UTC(2024, 4, 7, 10, 40)
  t.equal(bucketExpiry('tenmin', tStart, 168), Date.UTC(2024, 4, 7, 12, 50), '10 minutes: end of the bucket plus 2 hours')
  t.equal(bucketExpiry('tenmin', tStart, 1), Date.UTC(2024, 4, 7, 12, 50))
})

t.test('coverMinutes', async (t) => {
  const names = (end: number, count: number): string[] => coverMinutes(bucketRange('minute', end, count)).map((b) => b.name)
  t.strictSame(names(Date.UTC(2024, 4, 7, 10, 47, 30), 60), [
    '2024-05-07-09-48', '2024-05-07-09-49',
    '2024-05-07-09-50+10m', '2024-05-07-10-00+10m', '2024-05-07-10-10+10m', '2024-05-07-10-20+10m', '2024-05-07-10-30+10m',
    '2024-05-07-10-40', '2024-05-07-10-41', '2024-05-07-10-42', '2024-05-07-10-43', '2024-05-07-10-44', '2024-05-07-10-45', '2024-05-07-10-46', '2024-05-07-10-47'
  ], 'an hour: complete blocks by 10 minutes, the edges by minute')
  t.strictSame(names(Date.UTC(2024, 4, 7, 10, 59), 60), ['2024-05-07-10-00+10m', '2024-05-07-10-10+10m', '2024-05-07-10-20+10m', '2024-05-07-10-30+10m', '2024-05-07-10-40+10m', '2024-05-07-10-50+10m'], 'an aligned hour: six blocks')
  t.strictSame(names(Date.UTC(2024, 4, 7, 10, 8), 15), ['2024-05-07-09-54', '2024-05-07-09-55', '2024-05-07-09-56', '2024-05-07-09-57', '2024-05-07-09-58', '2024-05-07-09-59', '2024-05-07-10-00', '2024-05-07-10-01', '2024-05-07-10-02', '2024-05-07-10-03', '2024-05-07-10-04', '2024-05-07-10-05', '2024-05-07-10-06', '2024-05-07-10-07', '2024-05-07-10-08'], 'no complete block: minutes only')
  t.strictSame(names(Date.UTC(2024, 4, 7, 10, 9), 10), ['2024-05-07-10-00+10m'], 'exactly one block')
  // Whatever the range: the cover holds each minute exactly once, in order.
  const rnd = mulberry32(7)
  for (let i = 0; i < 200; i++) {
    const end = Date.UTC(2024, 4, 7) + Math.floor(rnd() * 1440) * MIN
    const minutes = bucketRange('minute', end, 1 + Math.floor(rnd() * 130))
    const covered = coverMinutes(minutes).flatMap((b) => b.name.endsWith('+10m') ? bucketRange('minute', b.start + 9 * MIN, 10) : [b])
    if (covered.map((b) => b.name).join() !== minutes.map((b) => b.name).join()) t.fail(`range of ${minutes.length} to ${minutes.at(-1)!.name}`)
  }
  t.pass('200 random ranges covered exactly')
})

t.test('WINDOWS', async (t) => {
  const expected: Record<string, { res: Resolution, buckets: number, seconds: number }> = {
    '5m': { res: 'minute', buckets: 5, seconds: 300 },
    '15m': { res: 'minute', buckets: 15, seconds: 900 },
    '1h': { res: 'minute', buckets: 60, seconds: 3600 },
    '6h': { res: 'hour', buckets: 6, seconds: 21_600 },
    '24h': { res: 'hour', buckets: 24, seconds: 86_400 }
  }
  t.strictSame(WINDOWS, expected)
  t.same([...WINDOW_NAMES].sort(), Object.keys(expected).sort(), 'WINDOW_NAMES lists every window')
  for (const name of WINDOW_NAMES) {
    const w = WINDOWS[name]
    t.equal(w.buckets * (w.res === 'hour' ? 3600 : 60), w.seconds, `${name}: buckets × bucket length = seconds`)
  }
})

t.test('bucketRange refuses a count it cannot serve', async (t) => {
  for (const bad of [Infinity, -1, 1.5, NaN, 10_081]) t.throws(() => bucketRange('hour', Date.UTC(2026, 0, 1), bad), RangeError, String(bad))
  t.equal(bucketRange('minute', Date.UTC(2026, 0, 1), 10_080).length, 10_080, 'a week of minutes is the most')
})
