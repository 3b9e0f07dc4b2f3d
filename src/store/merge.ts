import type { FieldOp, Fields } from './types.js'

/** Length of the event-time prefix of a latest-value (`l`) field. */
export const TS_DIGITS = 15

export function latestValue (ts: number, value: string | number): string {
  return String(Math.max(0, Math.trunc(ts))).padStart(TS_DIGITS, '0') + String(value)
}

export function splitLatest (raw: string): { ts: number, value: string } {
  return { ts: Number(raw.slice(0, TS_DIGITS)), value: raw.slice(TS_DIGITS) }
}

/** The stored value after applying `op` with `value` to `current` (same rules as the Lua script). */
export function applyOp (op: FieldOp, current: string | undefined, value: string): string {
  if (current === undefined) return value
  switch (op) {
    // Past 2^53 (sums merged on read), added as big integers: exact, as for `s`.
    case 'i': {
      const n = Number(current) + Number(value)
      if (Number.isSafeInteger(n)) return String(n)
      // Only integers have an exact sum: anything else (never stored in a counter hash) adds as doubles.
      try {
        return String(BigInt(current) + BigInt(value))
      } catch {
        return String(n)
      }
    }
    // Sums may pass 2^53, where doubles stop being exact: added as big integers, as Redis does.
    // (The stores check a sum's operands are digits before they apply it.)
    case 's': return String(BigInt(current) + BigInt(value))
    case 'm': return Number(value) < Number(current) ? value : current
    case 'M': return Number(value) > Number(current) ? value : current
    case 'l': return value.slice(0, TS_DIGITS) >= current.slice(0, TS_DIGITS) ? value : current
  }
}

/** The op that merges two stored values of `field` on read, from the field's name. */
export function mergeOpOf (field: string): FieldOp {
  if (field.startsWith('last:')) return 'l'
  if (field.endsWith(':min')) return 'm'
  if (field.endsWith(':max')) return 'M'
  return 'i'
}

/**
 * Field names may be ids, and an id may be `__proto__` or `toString`: fields live in plain objects
 * (V8 keeps those fast, unlike null-prototype ones), so a field is read only when it is a string (never
 * an inherited member) and `__proto__` is defined as an own property rather than assigned.
 */
export function fieldOf (fields: Fields, field: string): string | undefined {
  const v = fields[field]
  return typeof v === 'string' ? v : undefined
}

export function setField (fields: Fields, field: string, value: string): void {
  if (field === '__proto__') Object.defineProperty(fields, field, { value, enumerable: true, writable: true, configurable: true })
  else fields[field] = value
}

export function mergeFields (target: Fields, source: Fields | Map<string, string>): void {
  const entries = source instanceof Map ? source.entries() : Object.entries(source)
  for (const [field, value] of entries) setField(target, field, applyOp(mergeOpOf(field), fieldOf(target, field), value))
}

/** Adds every field, whatever its name: for hashes whose field names are ids or bin indices. */
export function addFields (target: Fields, source: Map<string, string>): void {
  for (const [field, value] of source) setField(target, field, applyOp('i', fieldOf(target, field), value))
}
