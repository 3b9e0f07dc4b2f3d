import { ReadBusyError } from '../errors.js'
import { applyOp, fieldOf, mergeFields, setField } from '../store/merge.js'
import type { Fields, MergeRead, MetricsStore } from '../store/types.js'

/** What the read paths need of a store. */
export type StoreReader = Pick<MetricsStore, 'read'>

/** Retry-After (seconds) of a read the budget refused. */
export const READ_RETRY_S = 1

export function isReadBusy (err: unknown): boolean {
  return err instanceof ReadBusyError
}

export interface ReadBudgetOptions {
  /** Store reads in flight at once; each has at most one round trip at the store at a time. */
  concurrency: number
  /** Reads waiting for their turn at most; one more is refused at once. */
  queue: number
  /**
   * Milliseconds per second (with a burst of as much) during which round trips of these reads may
   * be at the store; 0: no limit beyond `concurrency`. The store spends no time on these reads
   * outside those milliseconds, so the store time they take is at most this.
   */
  msPerSecond: number
  /** A read that waited this long for its turn is refused. */
  maxWaitMs: number
  now?: () => number
}

interface Waiter {
  resolve: (release: () => void) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/**
 * The share of the store that this instance's reads may take. Flushes, readiness pings and reads
 * share one connection to Redis, which answers in order: whatever reads are in flight is what a flush
 * waits behind. So reads are admitted `concurrency` at a time (each sends one bounded round trip at
 * a time, see budgetedReader), `queue` more wait at most `maxWaitMs`, the rest are refused (503), and
 * the time during which their round trips are at the store is charged against `msPerSecond`.
 */
export class ReadBudget {
  readonly concurrency: number
  readonly queueLimit: number
  readonly msPerSecond: number
  readonly #maxWaitMs: number
  readonly #now: () => number
  readonly #waiting: Waiter[] = []
  #active = 0
  /** Round trips at the store now, and since when the time they take is not charged yet. */
  #trips = 0
  #busySince = 0
  #tokens: number
  #refilledAt: number
  #refillTimer: NodeJS.Timeout | undefined
  /** Reads admitted, refused (queue full or waited too long) since start. */
  admitted = 0
  refused = 0
  /** The most reads ever in flight at once: never above `concurrency`. */
  maxActive = 0
  /** Milliseconds charged since start: the time round trips of these reads were at the store. */
  chargedMs = 0

  constructor (opts: ReadBudgetOptions) {
    this.concurrency = opts.concurrency
    this.queueLimit = opts.queue
    this.msPerSecond = opts.msPerSecond
    this.#maxWaitMs = opts.maxWaitMs
    this.#now = opts.now ?? (() => performance.now())
    this.#tokens = opts.msPerSecond
    this.#refilledAt = this.#now()
  }

  /** Reads in flight now. */
  get active (): number {
    return this.#active
  }

  /** Reads waiting for their turn now. */
  get queued (): number {
    return this.#waiting.length
  }

  /**
   * Resolves with the function that ends the read once it may start; rejects with ReadBusyError
   * when the queue is full or the wait too long.
   */
  async acquire (): Promise<() => void> {
    if (this.#waiting.length === 0 && this.#canStart()) return this.#start()
    if (this.#waiting.length >= this.queueLimit) {
      this.refused++
      throw new ReadBusyError()
    }
    return await new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.#waiting.indexOf(waiter)
          if (at >= 0) this.#waiting.splice(at, 1)
          this.refused++
          reject(new ReadBusyError())
        }, this.#maxWaitMs)
      }
      this.#waiting.push(waiter)
      this.#pump()
    })
  }

  /**
   * A round trip starts; the function returned ends it (`failed`: without an answer). The time
   * during which at least one round trip of these reads is at the store is charged (once, however
   * many overlap): the store cannot spend time on these reads outside it.
   */
  trip (): (failed?: boolean) => void {
    if (this.#trips++ === 0) this.#busySince = this.#now()
    let ended = false
    return (failed = false) => {
      if (ended) return
      ended = true
      const now = this.#now()
      // A round trip that failed (the store unreachable, or frozen until the command timed out) is
      // not the store working for these reads: charging it would hold reads back once it is back.
      if (!failed) this.charge(now - this.#busySince)
      this.#busySince = now
      this.#trips--
    }
  }

  /** Charges `ms` of store time. */
  charge (ms: number): void {
    this.chargedMs += ms
    if (this.msPerSecond > 0) {
      this.#refill()
      this.#tokens -= ms
    }
  }

  /** Refuses every waiting read (the app is closing). */
  close (): void {
    clearTimeout(this.#refillTimer)
    for (const w of this.#waiting.splice(0)) {
      clearTimeout(w.timer)
      w.reject(new ReadBusyError())
    }
  }

  #refill (): number {
    const now = this.#now()
    this.#tokens = Math.min(this.msPerSecond, this.#tokens + (now - this.#refilledAt) * this.msPerSecond / 1000)
    this.#refilledAt = now
    return this.#tokens
  }

  #canStart (): boolean {
    return this.#active < this.concurrency && (this.msPerSecond === 0 || this.#refill() > 0)
  }

  #start (): () => void {
    this.#active++
    this.admitted++
    if (this.#active > this.maxActive) this.maxActive = this.#active
    let released = false
    return () => {
      if (released) return
      released = true
      this.#active--
      this.#pump()
    }
  }

  #pump (): void {
    while (this.#waiting.length > 0 && this.#canStart()) {
      const w = this.#waiting.shift()!
      clearTimeout(w.timer)
      w.resolve(this.#start())
    }
    // Waiting on the time budget rather than on a read in flight: look again once it has refilled.
    if (this.#waiting.length > 0 && this.#active < this.concurrency && this.#refillTimer === undefined) {
      const wait = Math.max(1, Math.ceil((1 - this.#tokens) * 1000 / this.msPerSecond))
      this.#refillTimer = setTimeout(() => {
        this.#refillTimer = undefined
        this.#pump()
      }, wait)
    }
  }
}

export interface SplitOptions {
  /** Keys one FETCH call reads at most: what a single script holds the store for is bounded by it. */
  maxKeysPerCall: number
  /** Keys one round trip (a pipeline of FETCH calls) reads at most. */
  maxKeysPerTrip: number
}

/**
 * A FETCH call only copies what it reads (sealed buckets: one block string for many keys, and no
 * look at their live hashes), so a call of 128 keys stays well under 2 ms of Redis time on the
 * bench's data, and a round trip of 2 048 keys a few milliseconds.
 */
export const SPLIT_DEFAULTS: SplitOptions = { maxKeysPerCall: 128, maxKeysPerTrip: 2048 }

/** One part of a split read: a MergeRead, and the original slot each of its result slots feeds. */
interface Part { read: MergeRead, origin: number, feeds: number[] }

/**
 * Cuts `reads` into MergeReads of at most `maxKeys` keys. The keys of one result slot may be cut into
 * several parts, whose results merge back by the store's own rules (adding, for counters). A slot that
 * mixes counter and other keys is never cut.
 */
export function splitReads (reads: readonly MergeRead[], maxKeys: number): Part[] {
  const parts: Part[] = []
  reads.forEach((r, origin) => {
    if (r.keys.length <= maxKeys) {
      parts.push({ read: r, origin, feeds: Array.from({ length: r.nSlots }, (_, s) => s) })
      return
    }
    const bySlot = new Map<number, number[]>()
    r.keys.forEach((_, i) => {
      const s = r.slots[i]!
      let list = bySlot.get(s)
      if (list === undefined) bySlot.set(s, list = [])
      list.push(i)
    })
    const pieces: Array<{ slot: number, keys: number[] }> = []
    for (const [slot, keys] of bySlot) {
      const counters = keys.map((i) => r.counters?.[i] === true)
      if (counters.some((c) => c !== counters[0])) {
        pieces.push({ slot, keys })
        continue
      }
      for (let i = 0; i < keys.length; i += maxKeys) pieces.push({ slot, keys: keys.slice(i, i + maxKeys) })
    }
    let part: Part | undefined
    for (const piece of pieces) {
      if (part === undefined || (part.read.keys.length > 0 && part.read.keys.length + piece.keys.length > maxKeys)) {
        part = { read: { keys: [], slots: [], nSlots: 0, counters: [] }, origin, feeds: [] }
        parts.push(part)
      }
      const local = part.read.nSlots++
      part.feeds.push(piece.slot)
      for (const i of piece.keys) {
        part.read.keys.push(r.keys[i]!)
        part.read.slots.push(local)
        part.read.counters!.push(r.counters?.[i] === true)
      }
    }
  })
  return parts
}

/** Merges `from` into `into` as the store merges a slot's keys. */
function mergeSlot (into: Fields, from: Fields, counters: boolean): void {
  if (!counters) {
    mergeFields(into, from)
    return
  }
  for (const [field, value] of Object.entries(from)) setField(into, field, applyOp('i', fieldOf(into, field), value))
}

/** The results of `parts` (as splitReads made them from `reads`) put back together, one per read. */
export function joinParts (reads: readonly MergeRead[], parts: readonly Part[], results: readonly Fields[][]): Fields[][] {
  const out: Array<Array<Fields | undefined>> = reads.map((r) => new Array<Fields | undefined>(r.nSlots).fill(undefined))
  // A store's result may be shared (sealed merges are: src/store/fetch.ts): a slot fed by several
  // parts merges into a copy of the first.
  const copies = new Set<Fields>()
  parts.forEach((part, p) => {
    const r = reads[part.origin]!
    const slots = out[part.origin]!
    part.feeds.forEach((slot, local) => {
      const got = results[p]![local]!
      let into = slots[slot]
      if (into === undefined) {
        slots[slot] = got
        return
      }
      if (!copies.has(into)) copies.add(slots[slot] = into = { ...into })
      const key = r.slots.indexOf(slot)
      mergeSlot(into, got, r.counters?.[key] === true)
    })
  })
  return out.map((slots) => slots.map((s) => s ?? {}))
}

/**
 * The store as the read routes and the stream see it: every read goes through `budget`, and is sent
 * as MERGE calls of at most `maxKeysPerCall` keys, in round trips of at most `maxKeysPerTrip` keys,
 * one round trip at a time. So a read holds the store for a bounded time per call and per trip, and
 * a flush queued behind the reads in flight waits for at most `concurrency` trips.
 */
export function budgetedReader (store: StoreReader, budget: ReadBudget, split: SplitOptions = SPLIT_DEFAULTS): StoreReader {
  return {
    async read (reads: MergeRead[]): Promise<Fields[][]> {
      if (reads.length === 0) return []
      const parts = splitReads(reads, split.maxKeysPerCall)
      const trips: MergeRead[][] = [[]]
      let keys = 0
      for (const part of parts) {
        if (keys > 0 && keys + part.read.keys.length > split.maxKeysPerTrip) {
          trips.push([])
          keys = 0
        }
        trips.at(-1)!.push(part.read)
        keys += part.read.keys.length
      }
      const release = await budget.acquire()
      const results: Fields[][] = []
      try {
        for (const trip of trips) {
          // Charged until the store has answered: the merge that follows is the service's time, not the store's.
          const end = budget.trip()
          let failed = true
          try {
            results.push(...await store.read(trip, () => { end() }))
            failed = false
          } finally {
            end(failed)
          }
        }
      } finally {
        release()
      }
      return joinParts(reads, parts, results)
    }
  }
}
