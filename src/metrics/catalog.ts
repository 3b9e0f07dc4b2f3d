/**
 * A gateway's model catalog: each distinct list is stored once, named by its digest, and every fetch
 * that carried a list records the digest; changes are the differences between consecutive fetches.
 */
import { createHash } from 'node:crypto'

/** Most model ids one fetch may carry. */
export const MAX_CATALOG_MODELS = 5000

/** The ids of a fetch as the catalog keeps them: distinct, sorted. */
export function distinctSorted (models: readonly string[]): string[] {
  return [...new Set(models)].sort()
}

/** Names a list (already distinct and sorted): 16 hex digits of the SHA-256 of the ids joined by newlines. */
export function catalogDigest (sorted: readonly string[]): string {
  return createHash('sha256').update(sorted.join('\n')).digest('hex').slice(0, 16)
}

export interface CatalogChange { appeared: string[], disappeared: string[] }

/** Ids in `next` and not in `prev` (appeared), and the reverse (disappeared); both sorted. */
export function diffCatalogs (prev: readonly string[], next: readonly string[]): CatalogChange {
  const before = new Set(prev)
  const after = new Set(next)
  return {
    appeared: [...after].filter((m) => !before.has(m)).sort(),
    disappeared: [...before].filter((m) => !after.has(m)).sort()
  }
}
