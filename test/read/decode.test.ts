/**
 * Decoding merged results: a tally of shared (frozen) results — sealed figures, merged once per
 * version of their blocks — is decoded once and shared; anything else is decoded at each call.
 */
import t from 'tap'
import { ZERO_BIN } from '../../src/metrics/histogram.js'
import { tallyOf } from '../../src/read/decode.js'

t.test('tallyOf: counts, rate limits, the TTFT summary and bins', async (t) => {
  const tally = tallyOf({ n: '10', ok: '8', 'err:rate_limit': '1', 'ttft:n': '3', 'ttft:sum': '900', 'ttft:min': '100', 'ttft:max': '500' }, { 12: '2', [ZERO_BIN]: '1' })
  t.strictSame({ ...tally, ttftBins: [...tally.ttftBins] }, { requests: 10, successes: 8, rateLimited: 1, ttft: { n: 3, sum: 900, min: 100, max: 500 }, ttftBins: [[12, 2], [ZERO_BIN, 1]] })
})

t.test('tallyOf: shared results are decoded once, others at each call', async (t) => {
  const stats = Object.freeze({ n: '4', ok: '4' })
  const hist = Object.freeze({ 7: '4' })
  const other = Object.freeze({ 8: '4' })
  const first = tallyOf(stats, hist)
  t.equal(tallyOf(stats, hist), first, 'the same frozen results: the same tally')
  t.not(tallyOf(stats, other), first, 'another histogram: another tally')
  t.equal(tallyOf(stats, other).ttftBins.get(8), 4)
  t.not(tallyOf({ n: '4', ok: '4' }, hist), tallyOf({ n: '4', ok: '4' }, hist), 'results a reader may own: decoded afresh')
  t.not(tallyOf(stats, { 7: '4' }), tallyOf(stats, { 7: '4' }))
})
