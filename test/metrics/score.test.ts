import t from 'tap'
import { healthScore, round, successRate } from '../../src/metrics/score.js'

/**
 * Wilson score interval lower bound, textbook form (Wilson 1927; Agresti & Coull 1998):
 *   (2np̂ + z² − z·√(z² + 4np̂(1 − p̂))) / (2(n + z²))
 * which is algebraically the same as (p̂ + z²/2n − z√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
 */
function wilsonLower (successes: number, n: number, z = 1.96): number {
  const p = successes / n
  return (2 * n * p + z * z - z * Math.sqrt(z * z + 4 * n * p * (1 - p))) / (2 * (n + z * z))
}

/** 100 × the bound, 2 decimals; the bound is never below 0. */
function expectedScore (successes: number, n: number): number {
  return Math.round(Math.max(0, wilsonLower(successes, n)) * 10_000) / 100
}

const hasAtMost2Decimals = (v: number): boolean => Math.abs(v * 100 - Math.round(v * 100)) < 1e-6

t.test('healthScore', async (t) => {
  t.test('null with no requests', async (t) => {
    t.equal(healthScore(0, 0), null)
  })

  t.test('known values', async (t) => {
    // (s, n) → expected, each computed by the textbook formula above
    const cases: Array<[number, number]> = [
      [1, 1], [0, 1], [0, 10], [10, 10], [9, 10], [5, 10], [95, 100], [99, 100], [50, 100],
      [999, 1000], [1, 1000], [900_000, 1_000_000], [999_999, 1_000_000], [1_000_000, 1_000_000],
      [123_456_789, 1_000_000_000]
    ]
    for (const [s, n] of cases) {
      const got = healthScore(s, n)
      t.equal(got, expectedScore(s, n), `(${s}, ${n}) → ${got}`)
    }
    // Hand-checked anchors (Wilson lower bound, z = 1.96): 1/1 → 0.2065, 9/10 → 0.5958, 95/100 → 0.8882
    t.equal(healthScore(1, 1), 20.65)
    t.equal(healthScore(9, 10), 59.58)
    t.equal(healthScore(95, 100), 88.82)
    t.equal(healthScore(0, 10), 0, 'no successes: 0, never negative')
  })

  t.test('every (s, n) with n ≤ 300 agrees with the formula and lies within [0, 100]', async (t) => {
    let bad = 0
    let example = ''
    for (let n = 1; n <= 300; n++) {
      for (let s = 0; s <= n; s++) {
        const got = healthScore(s, n)
        const want = expectedScore(s, n)
        if (got === null || got !== want || got < 0 || got > 100 || !hasAtMost2Decimals(got)) {
          bad++
          example ||= `(${s}, ${n}) → ${got}, expected ${want}`
        }
      }
    }
    t.equal(bad, 0, `all agree ${example}`)
  })

  t.test('is below the success rate, and grows with evidence at the same rate', async (t) => {
    for (const [s, n] of [[9, 10], [90, 100], [900, 1000], [9000, 10_000]] as const) {
      const h = healthScore(s, n)
      const r = successRate(s, n)
      t.ok(h !== null && r !== null && h < r, `(${s}, ${n}): ${h} < ${r}`)
    }
    const a = healthScore(9, 10)
    const b = healthScore(900, 1000)
    t.ok(a !== null && b !== null && a < b, 'more requests, same rate: a higher lower bound')
  })
})

t.test('successRate', async (t) => {
  t.equal(successRate(0, 0), null, 'null with no requests')
  t.equal(successRate(0, 5), 0)
  t.equal(successRate(5, 5), 100)
  t.equal(successRate(1, 3), 33.33)
  t.equal(successRate(2, 3), 66.67)
  t.equal(successRate(95, 100), 95)
  t.equal(successRate(1, 8), 12.5)
  t.equal(successRate(1, 32), 3.13, '3.125 → 3.13')
  t.equal(successRate(999_999, 1_000_000), 100, '99.9999 → 100.00')

  // Exact reference with integers: round(10 000·s / r) half up, then / 100. Ties (exactly …5 in the
  // third decimal) are checked apart below.
  let bad = 0
  let example = ''
  for (let r = 1; r <= 400; r++) {
    for (let s = 0; s <= r; s++) {
      const twice = 20_000 * s
      if (twice % r === 0 && (twice / r) % 2 === 1) continue // an exact tie
      const want = Math.floor((20_000 * s + r) / (2 * r)) / 100
      const got = successRate(s, r)
      if (got !== want) {
        bad++
        example ||= `(${s}, ${r}) → ${got}, expected ${want}`
      }
    }
  }
  t.equal(bad, 0, `100 × s / r rounded to 2 decimals for every s ≤ r ≤ 400 ${example}`)

  t.test('exact ties round half up', async (t) => {
    // 100 × 23 / 4000 = 0.575 exactly: half up (and half even) give 0.58
    t.equal(successRate(1, 32), 3.13, '3.125 → 3.13')
    t.equal(successRate(1, 16), 6.25, '6.25 exactly')
    t.equal(successRate(1, 160), 0.63, '0.625 → 0.63')
    t.equal(successRate(23, 4000), 0.58, '0.575 → 0.58')
  })
})

t.test('round', async (t) => {
  t.equal(round(1.23456, 2), 1.23)
  t.equal(round(1.23656, 2), 1.24)
  t.equal(round(12.3456789, 3), 12.346)
  t.equal(round(99.994, 2), 99.99)
  t.equal(round(99.996, 2), 100)
  t.equal(round(7, 2), 7)
  t.equal(round(0, 2), 0)
  t.equal(round(2.5, 0), 3)
  t.equal(round(1234.5678, 1), 1234.6)
})
