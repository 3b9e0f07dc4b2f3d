import { LRUCache } from 'lru-cache'
import { decodeBlock, expandKey, locate, partOf, type Location, type Snapshot } from './layout.js'
import { mergeOpOf, setField } from './merge.js'
import type { Fields, MergeRead } from './types.js'

/**
 * Reads in layout version 2 (src/store/layout.ts): which stored keys hold a read's buckets, and the
 * merge of what they hold, done here in the service rather than in Redis.
 */

/** The stored keys one script call fetches, and where each read key's figures are among them. */
export interface FetchPlan {
  keys: string[]
  /** Per fetched key: `h` a live hash, `s` a sealed block, `x` a seal index. */
  kinds: string[]
  /** Per live hash that may be sealed: its seal index's place in `keys`, its period and sub-bucket. */
  guards: Array<Guard | undefined>
  /** Per read key: its sources, each a live hash's index in `keys`, its block's (-1: never sealed), its sub-bucket and part. */
  sources: Array<Array<{ live: number, block: number, sub: string, part: string }>>
}

/**
 * Where a read key's stored keys are (expandKey, locate), remembered: reads ask for the same
 * buckets again and again (the hours of a day, the minutes of the last hour).
 */
const places = new LRUCache<string, Array<[string, Location | null]>>({ max: 200_000 })
function placesOf (key: string): Array<[string, Location | null]> {
  let p = places.get(key)
  if (p === undefined) places.set(key, p = expandKey(key).map((stored) => [stored, locate(stored)]))
  return p
}

/**
 * Plans by the keys they read: a dashboard asks for the same lists of buckets (a model's day, its
 * minutes behind the state) again and again, and a plan depends on nothing but the keys.
 */
const plans = new LRUCache<string, FetchPlan>({ maxSize: 16 * 1024 * 1024, sizeCalculation: (p, list) => 1 + list.length * 2 + p.keys.length * 160 })

export function planFetch (keys: readonly string[]): FetchPlan {
  const list = keys.join('\n')
  let plan = plans.get(list)
  if (plan === undefined) plans.set(list, plan = planOf(keys))
  return plan
}

export interface Guard { seals: number, period: string, sub: string }

function planOf (keys: readonly string[]): FetchPlan {
  const plan: FetchPlan = { keys: [], kinds: [], guards: [], sources: [] }
  const at = new Map<string, number>()
  const indexOf = (key: string, kind: string): number => {
    let i = at.get(key)
    if (i === undefined) {
      i = plan.keys.push(key) - 1
      plan.kinds.push(kind)
      at.set(key, i)
    }
    return i
  }
  for (const key of keys) {
    plan.sources.push(placesOf(key).map(([stored, loc]) => {
      if (loc === null) return { live: indexOf(stored, 'h'), block: -1, sub: '', part: '' }
      const seals = indexOf(loc.seals, 'x')
      const live = indexOf(stored, 'h')
      plan.guards[live] = { seals, period: loc.period, sub: loc.sub }
      return { live, block: indexOf(loc.block, 's'), sub: loc.sub, part: loc.part }
    }))
  }
  return plan
}

/**
 * Decoded blocks, by key. A sealed block only grows (a later seal appends to it), so its length says
 * which version it is: the fetch names the length held (`s<length>`) and Redis sends the block again
 * only when it has changed. A block is decoded once per version; bounded by the bytes of the blocks held.
 */
export class BlockCache {
  readonly #cache: LRUCache<string, HeldBlock>
  constructor (maxBytes = 32 * 1024 * 1024) {
    this.#cache = new LRUCache({ maxSize: maxBytes, sizeCalculation: (v) => Math.max(1, v.length * 4) })
  }

  /** The block held for `key`, if any. */
  held (key: string): HeldBlock | undefined {
    return this.#cache.get(key)
  }

  /** The snapshots of a block fetched whole, decoded and kept. */
  decode (key: string, raw: Buffer): Snapshot[] {
    if (raw.length === 0) return []
    const snaps = decodeBlock(raw)
    this.#cache.set(key, { length: raw.length, snaps })
    return snaps
  }
}

export interface HeldBlock { length: number, snaps: Snapshot[] }

/** A seal index as a read last saw it: period → sub-buckets sealed, the periods written late, its size. */
export interface HeldIndex { at: number, sealed: Map<string, string>, late: Set<string>, bytes: number }

/**
 * The seal indexes of the tags this instance reads, as FETCH last returned them. With them a fetch
 * leaves out the live hashes of sub-buckets sealed in periods without a late write (most of a read's
 * keys: a day's closed hours, the closed minutes behind a state) and claims so instead; the script
 * checks every claim against the index itself, in the same call, and answers with the current
 * indexes instead when one no longer holds (a late write since, a period pruned), and the fetch is
 * asked again. So what is held may be stale without a read ever missing a figure: a stale index only
 * costs a second call, or leaves in keys that need not be read. Refreshed after `refreshMs`;
 * bounded by bytes (an index holds a field per period kept: a few KB at most).
 */
export class SealIndexes {
  readonly #cache: LRUCache<string, HeldIndex>
  readonly #refreshMs: number
  readonly #now: () => number
  constructor (opts: { maxBytes?: number, refreshMs?: number, now?: () => number } = {}) {
    // Four times the bytes FETCH sent: the strings and map entries they become.
    this.#cache = new LRUCache({ maxSize: opts.maxBytes ?? 16 * 1024 * 1024, sizeCalculation: (v) => 64 + v.bytes * 4 })
    this.#refreshMs = opts.refreshMs ?? 5_000
    this.#now = opts.now ?? Date.now
  }

  held (key: string): HeldIndex | undefined {
    return this.#cache.get(key)
  }

  /** Whether a fetch should ask for the index again (`xr`): not held, or held longer than refreshMs. */
  wanted (key: string): boolean {
    const h = this.#cache.get(key)
    return h === undefined || this.#now() - h.at >= this.#refreshMs
  }

  /** An index as FETCH returned it: fields and values joined by NUL ('' for none). */
  learn (key: string, raw: Buffer): void {
    const kv = raw.length === 0 ? [] : raw.toString('latin1').split('\0')
    const index: HeldIndex = { at: this.#now(), sealed: new Map(), late: new Set(), bytes: raw.length }
    for (let j = 0; j + 1 < kv.length; j += 2) {
      const field = kv[j]!
      if (field.endsWith(':late')) index.late.add(field.slice(0, -5))
      else index.sealed.set(field, kv[j + 1]!)
    }
    this.#cache.set(key, index)
  }
}

/** Whether the index held says `sub` of `period` is sealed, with no late write: what a fetch may claim. */
export function sealedIn (h: HeldIndex | undefined, period: string, sub: string): boolean {
  if (h === undefined || h.late.has(period)) return false
  return h.sealed.get(period)?.includes(sub) === true
}

/** One call of the fetch script: its keys and arguments, and where each of the plan's keys went. */
export interface FetchCall {
  keys: string[]
  args: string[]
  /** Per plan key: its place among `keys`, or -1 when left out (a live hash claimed sealed). */
  sent: number[]
  /** Per plan key: the block held when asked, if any. */
  held: Array<HeldBlock | undefined>
  /** Per plan key: whether its seal index was asked for (`xr`). */
  refresh: boolean[]
}

/**
 * What the fetch script is told of each key: its kind, for a block held here its length, and, with
 * `seals`, which live hashes are left out because the seal index held says they are sealed (claimed
 * in arguments past the keys, one per period). Without `seals`, every key is sent.
 */
export function fetchArgs (plan: FetchPlan, blocks: BlockCache, seals?: SealIndexes): FetchCall {
  const call: FetchCall = { keys: [], args: [], sent: [], held: [], refresh: [] }
  // Per seal index (by its place in the plan): the index held, and the sub-buckets claimed per period.
  const indexes = new Map<number, HeldIndex | undefined>()
  const claims = new Map<number, Map<string, string>>()
  plan.keys.forEach((key, i) => {
    const g = plan.guards[i]
    if (g !== undefined && seals !== undefined) {
      let h = indexes.get(g.seals)
      if (h === undefined && !indexes.has(g.seals)) indexes.set(g.seals, h = seals.held(plan.keys[g.seals]!))
      if (sealedIn(h, g.period, g.sub)) {
        call.sent[i] = -1
        let periods = claims.get(g.seals)
        if (periods === undefined) claims.set(g.seals, periods = new Map())
        const subs = periods.get(g.period) ?? ''
        if (!subs.includes(g.sub)) periods.set(g.period, subs + g.sub)
        return
      }
    }
    call.sent[i] = call.keys.push(key) - 1
    const kind = plan.kinds[i]!
    if (kind === 's') {
      const h = blocks.held(key)
      call.held[i] = h
      call.args.push(h === undefined ? 's' : `s${h.length}`)
    } else if (kind === 'x') {
      call.refresh[i] = seals?.wanted(key) === true
      call.args.push(call.refresh[i] ? 'xr' : 'x')
    } else {
      // Script arguments count from 1; a guard names its seal index by its place in this call.
      call.args.push(g === undefined ? 'h' : `h${call.sent[g.seals]! + 1}|${g.period}|${g.sub}`)
    }
  })
  for (const [x, periods] of claims) {
    for (const [period, subs] of periods) call.args.push(`a${call.sent[x]! + 1}|${period}|${subs}`)
  }
  return call
}

/** Each fetched key's content: a live hash as field/value pairs, a block's snapshots. */
export interface Fetched {
  hashes: Array<Array<string | number>>
  blocks: Snapshot[][]
  /** A claim of the call no longer held: nothing was read but the seal indexes (now learnt); ask again. */
  stale: boolean
}

/** The script's answer for a block that has not changed since it was fetched. */
const SAME = 0x3d

/** A call's answer, per plan key (`call` as fetchArgs made it; without it, every key was sent in order). */
export function unpack (plan: FetchPlan, replies: Buffer[], blocks: BlockCache, call?: Pick<FetchCall, 'keys' | 'sent' | 'held' | 'refresh'>, seals?: SealIndexes): Fetched {
  const hashes: Array<Array<string | number>> = []
  const decoded: Snapshot[][] = []
  const sentCount = call === undefined ? plan.keys.length : call.keys.length
  const stale = replies.length > sentCount && replies[sentCount]!.toString() === '!'
  plan.keys.forEach((key, i) => {
    const at = call === undefined ? i : call.sent[i]!
    const raw = at < 0 ? Buffer.alloc(0) : replies[at]!
    if (plan.kinds[i] === 'x') {
      if (seals !== undefined && (stale || call?.refresh[i] === true)) seals.learn(key, raw)
      hashes[i] = []
    } else if (stale) {
      hashes[i] = []
      decoded[i] = []
    } else if (plan.kinds[i] === 's') {
      const h = call?.held[i]
      // The snapshots held when the fetch was asked for: an eviction since does not lose them.
      decoded[i] = raw.length === 1 && raw[0] === SAME && h !== undefined ? h.snaps : blocks.decode(key, raw)
      hashes[i] = []
    } else {
      hashes[i] = raw.length === 0 ? [] : raw.toString('utf8').split('\0')
    }
  })
  return { hashes, blocks: decoded, stale }
}

/**
 * Fetches what `plans` read, one script call each, through `send` (a round trip of calls). A call
 * whose claims no longer held (stale) is asked again with the seal indexes it returned; a third time
 * without claims, so a plan takes three calls at most and a stale answer can never be the result.
 */
export async function fetchAll (
  plans: readonly FetchPlan[], blocks: BlockCache, seals: SealIndexes, send: (calls: FetchCall[]) => Promise<Buffer[][]>
): Promise<Array<{ plan: FetchPlan, got: Fetched }>> {
  const out: Array<{ plan: FetchPlan, got: Fetched }> = []
  let pending = plans.map((_, i) => i)
  for (let attempt = 0; pending.length > 0; attempt++) {
    const calls = pending.map((i) => fetchArgs(plans[i]!, blocks, attempt < 2 ? seals : undefined))
    const replies = await send(calls)
    const again: number[] = []
    replies.forEach((reply, j) => {
      const i = pending[j]!
      const got = unpack(plans[i]!, reply, blocks, calls[j], seals)
      if (got.stale) again.push(i)
      else out[i] = { plan: plans[i]!, got }
    })
    pending = again
  }
  return out
}

type Flat = Array<string | number>

/**
 * The field/value arrays holding read key `i`: its live hashes into `live`, their parts in each
 * snapshot of their blocks into `sealed`.
 */
function sourcesOf (plan: FetchPlan, got: Fetched, i: number, live: Flat[], sealed: Flat[]): void {
  for (const src of plan.sources[i]!) {
    const hash = got.hashes[src.live]!
    if (hash.length > 0) live.push(hash)
    if (src.block < 0) continue
    for (const snap of got.blocks[src.block]!) {
      const part = partOf(snap, src.sub, src.part)
      if (part !== undefined) sealed.push(part)
    }
  }
}

type Acc = Map<string, number | string>

/**
 * Merges one value into a slot: counters add; other fields by the rule of their name (src/store/
 * types.ts). A value seen once is kept as stored; sums past 2^53 are added as big integers, exactly.
 */
function mergeValue (acc: Acc, field: string, value: string | number, counter: boolean): void {
  const cur = acc.get(field)
  if (cur === undefined) {
    acc.set(field, value)
    return
  }
  const op = counter ? 'i' : mergeOpOf(field)
  if (op === 'l') {
    if (String(value).slice(0, 15) >= String(cur).slice(0, 15)) acc.set(field, value)
  } else if (op === 'i') {
    const sum = Number(cur) + Number(value)
    acc.set(field, Number.isSafeInteger(sum) ? sum : bigSum(cur, value, sum))
  } else if (op === 'm' ? Number(value) < Number(cur) : Number(value) > Number(cur)) {
    acc.set(field, value)
  }
}

/** a + b exactly, for integers whose sum passes 2^53 (`approx` when either is not an integer). */
function bigSum (a: string | number, b: string | number, approx: number): string | number {
  try {
    return String(BigInt(a) + BigInt(b))
  } catch {
    return approx
  }
}

function toFields (acc: Acc): Fields {
  const out: Fields = {}
  for (const [f, v] of acc) setField(out, f, String(v))
  return out
}

/** Sources of one slot, each with whether its key merges as counters. */
interface Sources { kvs: Flat[], counters: boolean[] }

function mergeInto (acc: Acc, src: Sources): Acc {
  src.kvs.forEach((kv, s) => {
    const counter = src.counters[s]!
    for (let j = 0; j + 1 < kv.length; j += 2) mergeValue(acc, String(kv[j]), kv[j + 1]!, counter)
  })
  return acc
}

/**
 * Sealed figures merged once per version of their blocks. A block part is an array inside the
 * snapshots decoded for one version of its block (BlockCache keeps them while the block is
 * unchanged), so the same arrays are the same figures: a part's fields, and the merge of a slot's
 * sealed parts (a model's 23 closed hours of a day, 7 days of one hour for a baseline), are computed
 * once and reused while those versions are held. A block that grows is decoded anew, into new arrays.
 * The results are frozen: readers never change them (joinParts copies before it merges into one).
 */
const partFields = new WeakMap<Flat, Fields>()
const partIds = new WeakMap<Flat, number>()
let nextPartId = 0
const sealedMerges = new LRUCache<string, Fields>({
  maxSize: 32 * 1024 * 1024,
  sizeCalculation: (v, key) => key.length + 1 + Object.keys(v).length * 96
})

function partIdOf (kv: Flat): number {
  let id = partIds.get(kv)
  if (id === undefined) partIds.set(kv, id = nextPartId++)
  return id
}

function fieldsOfPart (kv: Flat): Fields {
  let f = partFields.get(kv)
  if (f === undefined) partFields.set(kv, f = Object.freeze(fieldsOf(kv)))
  return f
}

function sealedMerge (sealed: Sources): Fields {
  let key = ''
  sealed.kvs.forEach((kv, s) => { key += `${sealed.counters[s]! ? 'c' : 'n'}${partIdOf(kv)}` })
  let m = sealedMerges.get(key)
  if (m === undefined) sealedMerges.set(key, m = Object.freeze(toFields(mergeInto(new Map(), sealed))))
  return m
}

/** The read's result slots from what one fetch brought back. */
export function mergeRead (read: MergeRead, plan: FetchPlan, got: Fetched): Fields[] {
  const slots = Array.from({ length: read.nSlots }, () => ({ live: { kvs: [], counters: [] } as Sources, sealed: { kvs: [], counters: [] } as Sources }))
  read.keys.forEach((_, i) => {
    const { live, sealed } = slots[read.slots[i]!]!
    sourcesOf(plan, got, i, live.kvs, sealed.kvs)
    const counter = read.counters?.[i] === true
    while (live.counters.length < live.kvs.length) live.counters.push(counter)
    while (sealed.counters.length < sealed.kvs.length) sealed.counters.push(counter)
  })
  return slots.map(({ live, sealed }) => {
    if (sealed.kvs.length === 0) {
      // One live hash (a minute's, as most of a state's minutes are): its fields, nothing to merge.
      return live.kvs.length === 1 ? fieldsOf(live.kvs[0]!) : toFields(mergeInto(new Map(), live))
    }
    if (live.kvs.length === 0 && sealed.kvs.length === 1) return fieldsOfPart(sealed.kvs[0]!)
    const merged = sealedMerge(sealed)
    // Live hashes on top of the shared merge, from its fields (values merge the same as strings).
    return live.kvs.length === 0 ? merged : toFields(mergeInto(new Map(Object.entries(merged)), live))
  })
}

/** The fields of one stored hash (or block part), whose field names are unique. */
function fieldsOf (kv: Flat): Fields {
  const out: Fields = {}
  for (let j = 0; j + 1 < kv.length; j += 2) setField(out, String(kv[j]), String(kv[j + 1]))
  return out
}

/** The field names of each read key, live and sealed. */
export function namesOf (plan: FetchPlan, got: Fetched, n: number): string[][] {
  return Array.from({ length: n }, (_, i) => {
    const names = new Set<string>()
    const kvs: Flat[] = []
    sourcesOf(plan, got, i, kvs, kvs)
    for (const kv of kvs) for (let j = 0; j < kv.length; j += 2) names.add(String(kv[j]))
    return [...names]
  })
}
