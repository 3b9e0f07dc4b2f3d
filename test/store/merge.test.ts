import t from 'tap'
import { addFields, applyOp, latestValue, mergeFields, mergeOpOf, splitLatest, TS_DIGITS } from '../../src/store/merge.js'
import type { FieldOp, Fields } from '../../src/store/types.js'

/** A latest-value field built by hand: 15-digit zero-padded event time, then the value. */
const lv = (ts: number, value: string): string => String(ts).padStart(15, '0') + value

t.test('applyOp', async (t) => {
  t.test('with nothing stored, every op stores the value', async (t) => {
    for (const op of ['i', 'm', 'M', 'l'] as FieldOp[]) t.equal(applyOp(op, undefined, '42'), '42', op)
  })

  t.test('i adds', async (t) => {
    t.equal(applyOp('i', '7', '5'), '12')
    t.equal(applyOp('i', '0', '0'), '0')
    t.equal(applyOp('i', '1000000000000', '1'), '1000000000001')
    t.equal(applyOp('i', '10', '-3'), '7', 'a negative increment')
    t.equal(applyOp('i', '9', '10'), '19', 'numbers, not strings')
  })

  t.test('m keeps the smaller', async (t) => {
    t.equal(applyOp('m', '50', '40'), '40')
    t.equal(applyOp('m', '40', '50'), '40')
    t.equal(applyOp('m', '10', '9'), '9', 'compared as numbers ("9" > "10" as strings)')
    t.equal(applyOp('m', '0', '5'), '0')
  })

  t.test('M keeps the larger', async (t) => {
    t.equal(applyOp('M', '40', '50'), '50')
    t.equal(applyOp('M', '50', '40'), '50')
    t.equal(applyOp('M', '9', '10'), '10', 'compared as numbers')
    t.equal(applyOp('M', '100', '99'), '100', 'compared as numbers ("99" > "100" as strings)')
  })

  t.test('l keeps the value whose time is not older', async (t) => {
    const older = lv(1_700_000_000_000, 'a')
    const newer = lv(1_700_000_000_001, 'b')
    t.equal(applyOp('l', older, newer), newer, 'a newer write replaces')
    t.equal(applyOp('l', newer, older), newer, 'an older write is ignored')
    const same = lv(1_700_000_000_000, 'c')
    t.equal(applyOp('l', older, same), same, 'equal time: the new value wins')
    t.equal(applyOp('l', lv(999, 'x'), lv(1000, 'y')), lv(1000, 'y'), 'times of different digit counts compare by time')
    t.equal(applyOp('l', lv(1000, 'y'), lv(999, 'x')), lv(1000, 'y'))
    t.equal(applyOp('l', lv(5, '2'), lv(5, '10')), lv(5, '10'), 'the value part does not decide')
    t.equal(applyOp('l', lv(6, '2'), lv(5, '99')), lv(6, '2'), 'the value part does not decide (older with a "larger" value)')
  })
})

t.test('mergeOpOf', async (t) => {
  const cases: Array<[string, FieldOp]> = [
    ['last:provider', 'l'],
    ['last:model_count', 'l'],
    ['ttft:min', 'm'],
    ['fetch_rt:min', 'm'],
    ['ttft:max', 'M'],
    ['tps:max', 'M'],
    ['n', 'i'],
    ['ok', 'i'],
    ['err:timeout', 'i'],
    ['ttft:sum', 'i'],
    ['ttft:n', 'i'],
    ['fetch:n', 'i'],
    ['tokens:in', 'i'],
    ['123', 'i'],
    ['z', 'i'],
    ['x:minute', 'i'],
    ['max', 'i'],
    ['lastprovider', 'i']
  ]
  for (const [field, op] of cases) t.equal(mergeOpOf(field), op, `${field} → ${op}`)
})

t.test('mergeFields', async (t) => {
  t.test('merges plain objects by the field rules', async (t) => {
    const target: Fields = {}
    mergeFields(target, { n: '3', ok: '2', 'ttft:min': '500', 'ttft:max': '900', 'last:provider': lv(100, 'openai'), 7: '1' })
    t.strictSame(target, { n: '3', ok: '2', 'ttft:min': '500', 'ttft:max': '900', 'last:provider': lv(100, 'openai'), 7: '1' }, 'into an empty target: a copy')
    mergeFields(target, { n: '4', 'ttft:min': '450', 'ttft:max': '800', 'last:provider': lv(99, 'azure'), 7: '2', z: '5' })
    t.strictSame(target, {
      n: '7',
      ok: '2',
      'ttft:min': '450',
      'ttft:max': '900',
      'last:provider': lv(100, 'openai'),
      7: '3',
      z: '5'
    })
    mergeFields(target, { 'last:provider': lv(100, 'together') })
    t.equal(target['last:provider'], lv(100, 'together'), 'equal time: the later merged wins')
  })

  t.test('merges Maps like objects', async (t) => {
    const fromObject: Fields = { n: '1', 'x:max': '5' }
    const fromMap: Fields = { n: '1', 'x:max': '5' }
    const source: Fields = { n: '10', 'x:max': '3', 'x:min': '3', 'last:p': lv(1, 'v') }
    mergeFields(fromObject, source)
    mergeFields(fromMap, new Map(Object.entries(source)))
    t.strictSame(fromMap, fromObject)
    t.strictSame(fromMap, { n: '11', 'x:max': '5', 'x:min': '3', 'last:p': lv(1, 'v') })
  })

  t.test('merging several sources in any order gives the same result', async (t) => {
    const sources: Fields[] = [
      { n: '1', 'a:min': '30', 'a:max': '30', 'last:p': lv(10, 'x') },
      { n: '2', 'a:min': '10', 'a:max': '50', 'last:p': lv(30, 'y') },
      { n: '3', 'a:min': '20', 'a:max': '40', 'last:p': lv(20, 'z') }
    ]
    const forward: Fields = {}
    for (const s of sources) mergeFields(forward, s)
    const backward: Fields = {}
    for (const s of [...sources].reverse()) mergeFields(backward, s)
    t.strictSame(forward, { n: '6', 'a:min': '10', 'a:max': '50', 'last:p': lv(30, 'y') })
    t.strictSame(backward, forward)
  })
})

t.test('addFields', async (t) => {
  // for hashes whose field names are ids or bin indices: every field is added, whatever its name
  const target: Fields = { 'acme/m:max': '3', 'last:x': '1', z: '2' }
  addFields(target, new Map([['acme/m:max', '5'], ['acme/m:min', '4'], ['last:x', '10'], ['z', '1'], ['17', '6']]))
  t.strictSame(target, { 'acme/m:max': '8', 'acme/m:min': '4', 'last:x': '11', z: '3', 17: '6' })
})

t.test('latestValue and splitLatest', async (t) => {
  t.equal(TS_DIGITS, 15)
  for (const [ts, value] of [[0, 'x'], [1, '42'], [1_716_000_000_123, 'anthropic'], [1_716_000_000_123, 'openai/gpt-4o:online'], [999_999_999_999_999, '0']] as const) {
    const raw = latestValue(ts, value)
    t.equal(raw, lv(ts, value), `${ts}/${value}: 15-digit time prefix, then the value`)
    t.strictSame(splitLatest(raw), { ts, value }, `${ts}/${value}: round trip`)
  }
  t.strictSame(splitLatest(latestValue(1_716_000_000_000, 17)), { ts: 1_716_000_000_000, value: '17' }, 'a number value comes back as a string')
  t.strictSame(splitLatest(latestValue(1_716_000_000_000, '')), { ts: 1_716_000_000_000, value: '' }, 'an empty value')
  t.equal(latestValue(1234.9, 'a'), lv(1234, 'a'), 'fractional times are truncated')
  t.equal(latestValue(-5, 'a'), lv(0, 'a'), 'negative times become 0')
  t.ok(applyOp('l', latestValue(1_716_000_000_000, 'old'), latestValue(1_716_000_000_001, 'new')) === latestValue(1_716_000_000_001, 'new'),
    'values made by latestValue order by time under the l op')
})
