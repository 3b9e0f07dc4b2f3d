import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { PAIR_DISTS, PAIR_ZERO, ZERO_BIN } from '../metrics/histogram.js'
import { STAT_NAMES } from './layout.js'
import { TS_DIGITS } from './merge.js'
import { MAX_SUM, PARTS_PER_GROUP } from './types.js'

/**
 * The store's Lua scripts. Each one's source is a plain Lua file in ./lua/ (copied beside the
 * compiled module by `npm run build`), read once when this module loads. A constant that the
 * TypeScript side owns (a limit, a histogram offset, the stats names) appears in the file as a
 * placeholder `__NAME__` and is filled in from the values given here, so the script and the service
 * never hold two copies of it. A placeholder without a value, or a value without its placeholder, makes
 * the module throw on load: the two sides cannot drift apart unnoticed. What the scripts do and what
 * the service does with the same data (src/store/merge.ts, src/store/memory-store.ts) are checked
 * against each other by the store contract (test/helpers/store-contract.ts), run on both stores.
 */

/** `__NAME__`, NAME in capitals and digits joined by single underscores: still a valid Lua name. */
const PLACEHOLDER = /__([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)__/g

/** Values for a script's placeholders, by name; numbers are written as JavaScript prints them. */
export type LuaConstants = Readonly<Record<string, string | number>>

/**
 * The script text of `source` with every placeholder replaced by its value. Throws, naming `file`,
 * when a placeholder has no value or a value is not used by any placeholder.
 */
export function inject (source: string, constants: LuaConstants, file: string): string {
  const used = new Set<string>()
  const text = source.replace(PLACEHOLDER, (_, name: string) => {
    if (!Object.hasOwn(constants, name)) throw new Error(`${file}: placeholder __${name}__ has no value`)
    used.add(name)
    return String(constants[name])
  })
  const unused = Object.keys(constants).filter((name) => !used.has(name))
  if (unused.length > 0) throw new Error(`${file}: no placeholder uses the value given for ${unused.join(', ')}`)
  return text
}

/** A script file, read now (at module load) and its placeholders filled in. */
function load (url: URL, constants: LuaConstants): string {
  const file = fileURLToPath(url)
  return inject(readFileSync(file, 'utf8'), constants, file)
}

/**
 * Scripts are defined once per client (ioredis `defineCommand`) and run by SHA.
 *
 * APPLY: KEYS[1] is the group's marker, KEYS[2] the seal index of the group's tag, KEYS[3..] the
 * group's keys (all in one hash slot). ARGV: seq, marker TTL (ms), then for each key: expire-at (epoch
 * ms), its op/field/value triples packed in one string, and its place (`<period>|<sub>`, or '' for a
 * key never sealed; src/store/layout.ts); every token followed by the unit separator (byte 31), which no field name or
 * value contains. One argument per key instead of three per op keeps the client's work per flush
 * small (a flush carries thousands of histogram bins). A group whose marker already holds seq or later is skipped (returns 0): that is what makes
 * a retry, or ioredis re-sending an unanswered command after a reconnect, harmless.
 *
 * A group is applied whole or not at all. Redis scripts have no rollback, so everything that could
 * fail is checked before the first write: every key is a hash (or absent), and no checked sum (`s`)
 * would pass MAX_SUM; a group that fails a check is refused with an error starting METRICS_REFUSED and
 * nothing written. The shebang (no flags: a script that may write) makes Redis refuse the whole script
 * up front when it is out of memory, instead of at its first write.
 */
export const APPLY_LUA = load(new URL('./lua/apply.lua', import.meta.url), {
  PARTS_PER_GROUP,
  MAX_SUM,
  TS_DIGITS
})

/**
 * FETCH: the raw contents of KEYS (one hash slot), in one atomic call; ARGV[i] says what KEYS[i] is:
 * `s` a sealed block (the string as it is, '' when absent; `s<length>` when the service holds it at that
 * length: then '=' when it still has that length); `x` a seal index (read; returned, its fields and
 * values joined by NUL, only as `xr` or when a claim below fails); `h` a live hash (its fields and
 * values joined by NUL, which no name or value holds), followed by `<index>|<period>|<sub>` when it may
 * be sealed: then it is not read when its seal index (KEYS[index]) says its sub-bucket is sealed and its
 * period has had no late write.
 *
 * ARGV past #KEYS are the service's claims `a<index>|<period>|<subs>`: the seal index KEYS[index] says
 * `subs` of `period` are sealed and the period has had no late write. The service leaves out the live
 * hashes of such sub-buckets (it holds the seal index from an earlier call, src/store/fetch.ts
 * SealIndexes). When a claim no longer holds, nothing else is read: the answer is the seal indexes
 * followed by '!', and the service asks again with what they say.
 *
 * Nothing is merged here: the service merges (src/store/fetch.ts), so a read costs Redis only the
 * copying of what it reads. Being one call, it sees a bucket either before its seal (in the hash) or
 * after (in the block), never in both or neither.
 */
export const FETCH_LUA = load(new URL('./lua/fetch.lua', import.meta.url), {})

/**
 * SEAL: moves live hashes into a block (src/store/layout.ts). KEYS[1] is the block, KEYS[2] the tag's
 * seal index, KEYS[3..] live hashes of the same hash slot; ARGV: the block's period, the oldest hour
 * and 10-minute period kept (older ones leave the seal index; '' for no pruning), then, for each
 * live hash, its sub-bucket and its part. The unit's sub-buckets are recorded as sealed in the seal index. The
 * hashes that exist are packed into one MessagePack snapshot (canonical integers of up to 15 digits
 * as integers, latest values always as strings), added at the end of the block, and deleted; the block
 * expires with the latest of them. Pairs equal to their model are written as 1, and histograms as
 * sorted differences (the decoding is src/store/layout.ts's partOf). One call, so a read or a flush sees each figure exactly once:
 * in the hash before, in the block after; a flush that comes later writes a new live hash beside
 * the block. Returns the bytes appended (0 when nothing was live).
 */
export const SEAL_LUA = load(new URL('./lua/seal.lua', import.meta.url), {
  PAIR_DISTS_TTFT: PAIR_DISTS.ttft,
  PAIR_DISTS_TOTAL: PAIR_DISTS.total,
  PAIR_DISTS_TPS: PAIR_DISTS.tps,
  ZERO_BIN,
  PAIR_ZERO,
  STAT_NAMES_JSON: JSON.stringify(STAT_NAMES)
})
