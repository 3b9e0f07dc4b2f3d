import { bucketRange, HOUR_MS } from '../metrics/buckets.js'
import type { Static } from '@sinclair/typebox'
import type { CatalogSchema } from '../schemas/catalog.js'
import { diffCatalogs } from '../metrics/catalog.js'
import { splitLatest, TS_DIGITS } from '../store/merge.js'
import type { Fields } from '../store/types.js'
import type { StoreReader } from './budget.js'
import { ReadPlan } from './targets.js'

/** GET /api/metrics/gateway/catalog's answer, as src/schemas/catalog.ts describes it. */
export type CatalogAnswer = Static<typeof CatalogSchema>
export type CatalogChangeEntry = CatalogAnswer['changes'][number]

interface Fetched { ts: number, arrival: number, field: string, digest: string, order: string }

/**
 * A fetch from its `catalog_fetches` field and value. The field is `last:<time>:<instance>:<arrival>`
 * (src/ingest/aggregator.ts, `catalogFetchField`): every fetch has its own, even in the same
 * millisecond. A field of the time alone (`last:<time>`, written before) reads as arrival 0.
 */
function fetchedOf (field: string, raw: string): Fetched {
  const { ts, value } = splitLatest(raw)
  const n = Number(field.slice(field.lastIndexOf(':') + 1))
  const arrival = field.length > 5 + TS_DIGITS && Number.isSafeInteger(n) ? n : 0
  // Time, then arrival, then the field name, as one string that sorts in that order.
  const order = `${String(ts).padStart(TS_DIGITS, '0')}:${String(arrival).padStart(16, '0')}:${field}`
  return { ts, arrival, field, digest: value, order }
}

/**
 * Fetches in the order they happened: by time, then (same millisecond) by arrival at the instance
 * that took them. Arrivals at different instances have no order between them: the field name
 * settles those, so that every read gives the same answer.
 */
function byTimeThenArrival (a: Fetched, b: Fetched): number {
  return Number(a.order > b.order) - Number(a.order < b.order)
}

/**
 * GET /api/metrics/gateway/catalog: the gateway's latest model list and what appeared or
 * disappeared between consecutive fetches in the last `hours`. Two round trips over the gateway's
 * own keys: the fetches (time → list digest), then the lists the answer needs.
 */
export async function readCatalog (store: StoreReader, gateway: string, hours: number, limit: number, now: number): Promise<CatalogAnswer> {
  return (await readCatalogComputation(store, gateway, hours, limit, now)).answer
}

/** A catalog answer with the time of every fetch in its window (oldest first), from which narrower ones are cut. */
export interface CatalogComputation { answer: CatalogAnswer, times: number[] }

export async function readCatalogComputation (store: StoreReader, gateway: string, hours: number, limit: number, now: number): Promise<CatalogComputation> {
  const buckets = bucketRange('hour', now, hours)
  const index = new ReadPlan({ type: 'gateway', id: gateway })
  index.slot('catalog_fetches', buckets)
  const [[fields]] = await store.read([index.read]) as [[Fields]]
  const fetched = Object.entries(fields).map(([field, raw]) => fetchedOf(field, raw)).sort(byTimeThenArrival)
  const iso = (ts: number): string => new Date(ts).toISOString()
  const window = { from: iso(buckets[0]!.start), to: iso(now), seconds: hours * HOUR_MS / 1000 }
  const answer = { gateway, window, fetches: fetched.length, generated_at: iso(now) }
  const last = fetched[fetched.length - 1]
  const times = fetched.map((f) => f.ts)
  if (last === undefined) return { answer: { ...answer, last_fetch_at: null, model_count: null, models: [], changes: [] }, times }

  const changes: Array<[Fetched, Fetched]> = []
  for (let i = fetched.length - 1; i > 0 && changes.length < limit; i--) {
    if (fetched[i]!.digest !== fetched[i - 1]!.digest) changes.push([fetched[i - 1]!, fetched[i]!])
  }
  const digests = [...new Set([last.digest, ...changes.flatMap(([a, b]) => [a.digest, b.digest])])]
  const lists = new ReadPlan({ type: 'gateway', id: gateway })
  for (const d of digests) lists.slot('catalog', [{ name: d }])
  const [listSlots] = await store.read([lists.read]) as [Fields[]]
  const models = new Map(digests.map((d, i) => [d, Object.keys(listSlots[i]!).sort()]))
  const current = models.get(last.digest)!
  return {
    times,
    answer: {
      ...answer,
      last_fetch_at: iso(last.ts),
      model_count: current.length,
      models: current,
      changes: changes.map(([a, b]) => ({ at: iso(b.ts), previous_fetch_at: iso(a.ts), ...diffCatalogs(models.get(a.digest)!, models.get(b.digest)!) }))
    }
  }
}

/**
 * The catalog of the last `hours` with at most `limit` changes, from one computed (at the same time)
 * over at least as many hours with at least as many changes: the fetches of a narrower window are the
 * latest ones, so its changes are the first of the wider window's.
 */
export function narrowCatalog ({ answer, times }: CatalogComputation, hours: number, limit: number): CatalogAnswer {
  const now = Date.parse(answer.generated_at)
  const from = bucketRange('hour', now, hours)[0]!.start
  const window = { from: new Date(from).toISOString(), to: answer.window.to, seconds: hours * HOUR_MS / 1000 }
  const fetches = times.filter((ts) => ts >= from).length
  if (fetches === 0) return { ...answer, window, fetches, last_fetch_at: null, model_count: null, models: [], changes: [] }
  const changes = answer.changes.filter((c) => Date.parse(c.previous_fetch_at) >= from).slice(0, limit)
  return { ...answer, window, fetches, changes }
}
