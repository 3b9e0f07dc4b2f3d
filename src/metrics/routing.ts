/**
 * The routing hint's rule (docs/health.md): candidates that are not down first; then the higher
 * uptime lower bound (Wilson, z = 1.96, rate limits apart); then the lower TTFT p90; then more
 * requests; then the id. Each rank says which of these put it below the one before.
 */
import type { Status } from './status.js'

export interface Candidate {
  id: string
  status: Status
  /** 100 × the Wilson lower bound of the uptime, 2 decimals; null without requests (rate limits apart). */
  uptimeLowerBound: number | null
  ttftP90: number | null
  requests: number
}

export interface RankedCandidate extends Candidate { rank: number, reason: string }

/** Nulls sort after numbers; `dir` 1 ascending, −1 descending. */
function byNumber (a: number | null, b: number | null, dir: 1 | -1): number {
  if (a === b) return 0
  if (a === null) return 1
  if (b === null) return -1
  return (a - b) * dir
}

const downness = (c: Candidate): number => c.status === 'down' ? 1 : 0

export function compareCandidates (a: Candidate, b: Candidate): number {
  return downness(a) - downness(b) ||
    byNumber(a.uptimeLowerBound, b.uptimeLowerBound, -1) ||
    byNumber(a.ttftP90, b.ttftP90, 1) ||
    b.requests - a.requests ||
    // Ids are unique among candidates.
    (a.id < b.id ? -1 : 1)
}

const lb = (v: number | null): string => v === null ? 'no uptime lower bound (no requests apart from rate limits)' : `uptime lower bound ${v} %`
const p90 = (v: number | null): string => v === null ? 'no TTFT samples' : `TTFT p90 ${v} ms`

/** Why `c` ranks right below `above`: the first criterion of the rule that differs. */
function whyBelow (c: Candidate, above: RankedCandidate): string {
  const ref = `rank ${above.rank}`
  if (downness(c) !== downness(above)) return 'down, after every candidate that is not'
  if (c.uptimeLowerBound !== above.uptimeLowerBound) return `${lb(c.uptimeLowerBound)}, below ${ref} (${above.uptimeLowerBound!} %)`
  if (c.ttftP90 !== above.ttftP90) return `same uptime lower bound as ${ref}; ${p90(c.ttftP90)}, slower than ${ref} (${above.ttftP90!} ms)`
  if (c.requests !== above.requests) return `same uptime lower bound and TTFT p90 as ${ref}; fewer requests (${c.requests} < ${above.requests})`
  return `same figures as ${ref}; by id`
}

/** The candidates in rank order, each with the reason for its rank. */
export function rankCandidates (candidates: readonly Candidate[]): RankedCandidate[] {
  const sorted = [...candidates].sort(compareCandidates)
  const out: RankedCandidate[] = []
  sorted.forEach((c, i) => {
    const above = out[i - 1]
    const reason = above === undefined
      ? `${c.status === 'down' ? 'down (every candidate is)' : 'not down'}; ${lb(c.uptimeLowerBound)}; ${p90(c.ttftP90)}`
      : whyBelow(c, above)
    out.push({ ...c, rank: i + 1, reason })
  })
  return out
}
