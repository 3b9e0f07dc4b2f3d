import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import type { TSchema } from '@sinclair/typebox'
import { MediaTypeError } from './errors.js'
import type { FastifyRequest } from 'fastify'

/**
 * Error messages that name the field the way a client wrote it: `body[3].model`, `querystring.window`.
 */
export function fieldPath (part: string, instancePath: string): string {
  let out = part
  for (const seg of instancePath.split('/').slice(1)) {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~')
    out += /^\d+$/.test(s) ? `[${s}]` : `.${s}`
  }
  return out
}

const PATTERN_MESSAGES: Record<string, string> = {
  '^[^\\s\\p{Cc}]+$': 'must not contain whitespace or control characters',
  '^[^\\p{Cc}]+$': 'must not contain control characters'
}

/** One line for the first error. Fastify's `schemaErrorFormatter` and the event validators share it. */
export function describeErrors (errors: ErrorObject[], part: string): string {
  // anyOf reports each branch and then itself: the anyOf line is the one that explains the field.
  // Ajv reports at least one error whenever it calls for a message.
  const first = errors.find((e) => e.keyword === 'anyOf') ?? errors[0]!
  const at = fieldPath(part, first.instancePath)
  const p = first.params as Record<string, unknown>
  switch (first.keyword) {
    case 'required': return `${fieldPath(part, `${first.instancePath}/${String(p.missingProperty)}`)} is required`
    case 'enum': return `${at} must be one of ${(p.allowedValues as unknown[]).join(', ')}`
    case 'pattern': return `${at} ${PATTERN_MESSAGES[String(p.pattern)] ?? `must match ${String(p.pattern)}`}`
    // The only union a field has is the timestamp's.
    case 'anyOf': return `${at} must be epoch milliseconds or an ISO 8601 string with Z or an offset`
    case 'format': return `${at} must be a ${String(p.format)} string`
    default: return `${at} ${first.message ?? 'is invalid'}`
  }
}

/** Strict validator for request bodies: no type coercion, no defaults, unknown fields ignored. */
export const bodyAjv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false, strict: false, strictNumbers: true })
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
addFormats(bodyAjv)

/** Compiled once per schema $id (every body schema has one; apps built again in one process share it). */
export function compileBody<T> (schema: TSchema): ValidateFunction<T> {
  return bodyAjv.getSchema<T>(schema.$id!) ?? bodyAjv.compile<T>(schema)
}

/**
 * Ajv coerces "Infinity" or "1e400" in a query string to a number that is not finite and then skips
 * minimum/maximum for it: refuse any such number after validation, naming the parameter.
 */
export async function rejectNonFiniteQuery (request: FastifyRequest): Promise<void> {
  for (const [name, value] of Object.entries(request.query as object)) {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw Object.assign(new Error(`querystring.${name} must be a finite number`), { statusCode: 400, code: 'FST_ERR_VALIDATION' })
    }
  }
}

/** Fastify's own code for a body it has no parser for, with a message that says what to send. */

/** The parser for every content type but JSON: a 415 before the body is read. */
export function refuseMediaType (request: FastifyRequest, _body: unknown, done: (err: Error | null, body?: unknown) => void): void {
  const given = request.headers['content-type']
  done(new MediaTypeError(given === undefined ? 'no Content-Type' : JSON.stringify(given.slice(0, 100))))
}
