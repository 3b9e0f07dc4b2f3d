import t from 'tap'
import { binOf, pairBinField, pairBins, ZERO_BIN } from '../../src/metrics/histogram.js'

t.test('a pair keeps three histograms in one hash of integer fields', async (t) => {
  t.equal(pairBinField('ttft', 12), '12')
  t.equal(pairBinField('total', 12), '10012')
  t.equal(pairBinField('tps', 12), '20012')
  t.equal(pairBinField('total', ZERO_BIN), '19999', 'the zero bin of each distribution')
  const fields = { 12: '3', 9999: '1', 10012: '5', 10500: '2', 20007: '4' }
  t.same(pairBins(fields, 'ttft'), { 12: '3', z: '1' })
  t.same(pairBins(fields, 'total'), { 12: '5', 500: '2' })
  t.same(pairBins(fields, 'tps'), { 7: '4' })
  t.ok((binOf(3_600_000 * 1000) as number) < 9999, 'the bin of the longest time accepted (1 hour, in µs) is far below the zero bin')
  t.ok((binOf(1e13 * 1000) as number) < 9999, 'so is that of 10^13 tokens/s')
})
