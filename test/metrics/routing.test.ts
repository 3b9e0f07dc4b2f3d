import t from 'tap'
import { compareCandidates, rankCandidates, type Candidate } from '../../src/metrics/routing.js'

const c = (id: string, over: Partial<Candidate> = {}): Candidate => ({ id, status: 'healthy', uptimeLowerBound: 99, ttftP90: 500, requests: 100, ...over })

t.test('the rule, step by step', async (t) => {
  const ranked = rankCandidates([
    c('down-but-fast', { status: 'down', uptimeLowerBound: 99.9, ttftP90: 100 }),
    c('slow', { ttftP90: 900 }),
    c('best', { uptimeLowerBound: 99.5 }),
    c('no-ttft', { ttftP90: null }),
    c('fewer', { requests: 50 }),
    c('same-a'),
    c('same-b'),
    c('only-rate-limited', { uptimeLowerBound: null, ttftP90: null }),
    c('unknown', { status: 'unknown', uptimeLowerBound: 40 })
  ])
  t.same(ranked.map((x) => x.id), ['best', 'same-a', 'same-b', 'fewer', 'slow', 'no-ttft', 'unknown', 'only-rate-limited', 'down-but-fast'])
  t.same(ranked.map((x) => x.rank), [1, 2, 3, 4, 5, 6, 7, 8, 9])
  t.same(ranked.map((x) => x.reason), [
    'not down; uptime lower bound 99.5 %; TTFT p90 500 ms',
    'uptime lower bound 99 %, below rank 1 (99.5 %)',
    'same figures as rank 2; by id',
    'same uptime lower bound and TTFT p90 as rank 3; fewer requests (50 < 100)',
    'same uptime lower bound as rank 4; TTFT p90 900 ms, slower than rank 4 (500 ms)',
    'same uptime lower bound as rank 5; no TTFT samples, slower than rank 5 (900 ms)',
    'uptime lower bound 40 %, below rank 6 (99 %)',
    'no uptime lower bound (no requests apart from rate limits), below rank 7 (40 %)',
    'down, after every candidate that is not'
  ])
})

t.test('when every candidate is down', async (t) => {
  const ranked = rankCandidates([c('a', { status: 'down', uptimeLowerBound: 10 }), c('b', { status: 'down', uptimeLowerBound: 20 })])
  t.same(ranked.map((x) => x.id), ['b', 'a'])
  t.equal(ranked[0]?.reason, 'down (every candidate is); uptime lower bound 20 %; TTFT p90 500 ms')
  t.same(rankCandidates([]), [])
})

t.test('equal figures: the id decides, whichever comes first', async (t) => {
  t.equal(compareCandidates(c('a'), c('b')), -1)
  t.equal(compareCandidates(c('b'), c('a')), 1)
  t.same(rankCandidates([c('b'), c('a'), c('c')]).map((x) => x.id), ['a', 'b', 'c'])
  t.same(rankCandidates([c('c'), c('a'), c('b')]).map((x) => x.id), ['a', 'b', 'c'])
})
