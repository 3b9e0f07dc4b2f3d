import t from 'tap'
import { chatValidator } from '../../src/ingest/normalize.js'

t.test('a timestamp the format allows but no clock reads is refused', async (t) => {
  const now = Date.UTC(2026, 10, 27, 23, 59, 30)
  const validate = chatValidator(() => ({ now, retentionHours: 168 }))
  // RFC 3339 allows a leap second; Date.parse does not read it.
  const r = validate({ model: 'a/b', success: true, timestamp: '2026-11-27T23:59:60Z' })
  t.match(r, { error: { message: 'body.timestamp is not a valid time', statusCode: 400 } })
  t.match(validate({ model: 'a/b', success: true, timestamp: '2026-11-28T01:59:00+02' }), { value: [{ ts: Date.UTC(2026, 10, 27, 23, 59) }] }, 'an hours-only offset is read')
})
