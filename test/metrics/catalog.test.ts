import { createHash } from 'node:crypto'
import t from 'tap'
import { catalogDigest, diffCatalogs, distinctSorted } from '../../src/metrics/catalog.js'

t.test('a list is kept distinct and sorted, and named by its content', async (t) => {
  t.same(distinctSorted(['b/x', 'a/y', 'b/x']), ['a/y', 'b/x'])
  const d = catalogDigest(['a/y', 'b/x'])
  t.equal(d, createHash('sha256').update('a/y\nb/x').digest('hex').slice(0, 16))
  t.not(catalogDigest(['a/y']), d, 'another list, another name')
  t.equal(catalogDigest(distinctSorted(['b/x', 'a/y', 'a/y'])), d, 'the same models in another order, repeated: the same name')
})

t.test('what appeared and what disappeared', async (t) => {
  t.same(diffCatalogs(['a', 'b', 'c'], ['b', 'd', 'a']), { appeared: ['d'], disappeared: ['c'] })
  t.same(diffCatalogs([], ['z', 'y']), { appeared: ['y', 'z'], disappeared: [] })
  t.same(diffCatalogs(['a'], ['a']), { appeared: [], disappeared: [] })
})
