import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { RateLimitedError, UnauthorizedError } from '../errors.js'
import { RATE_LIMIT_SYNC_MS, SharedRateLimit } from '../limits/shared-rate-limit.js'
import { withHook } from './route-hooks.js'

/** Which tokens a route needs: set per route as `config: { auth: 'ingest' | 'read' }`. */
export type AuthScope = 'ingest' | 'read'

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthScope
  }
  interface FastifyRequest {
    /** Hash of the bearer token that authenticated the request, if any (rate-limit key). */
    tokenId?: string
  }
}

function digest (token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

/** The bearer token of a request, if it sent one. */
export function bearer (request: FastifyRequest): string | undefined {
  const h = request.headers.authorization
  if (h === undefined || !/^bearer /i.test(h)) return undefined
  return h.slice(7).trim()
}

/** At most this many accepted token strings are remembered per scope (only configured tokens can be). */
const MAX_REMEMBERED = 64

/**
 * Requests refused for a missing or wrong token that one address may make a minute; beyond it they
 * get 429. A gateway with the right token is never counted here, so a shared address is no risk to it.
 */
export const AUTH_FAILURES_PER_MINUTE = 100

/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with timingSafeEqual, against
 * every configured token (no early exit), so timing tells nothing about them. The recording routes
 * carry the `ingest` scope; the reads under /api/ and GET /metrics the `read` scope. Routes without an
 * `auth` scope (health, docs) stay open; a scope with no tokens configured is open too.
 *
 * A string once accepted is remembered with its token id, so the gateway's own token is hashed once
 * rather than on every request. This keeps the timing guarantee: only accepted strings are
 * remembered, so a quick answer only says "this is a configured token", which the 202 says anyway;
 * any other string takes the constant-time path above. Looking a string up compares it whole (V8
 * compares string contents only after equal lengths and equal hashes), so a guess sharing a prefix
 * with a token is not answered faster than any other wrong guess. With the rate limit on
 * (METRICS_RATE_LIMIT_MAX > 0), refusals are counted per address across all instances, and an address
 * refused more than AUTH_FAILURES_PER_MINUTE times a minute gets 429 instead.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const tokens: Record<AuthScope, Buffer[]> = {
    ingest: opts.config.ingestTokens.map(digest),
    read: opts.config.readTokens.map(digest)
  }
  fastify.decorateRequest('tokenId', undefined)
  const failures = opts.config.rateLimitMax === 0
    ? null
    : new SharedRateLimit(fastify.metricsStore, { windowMs: 60_000, syncMs: RATE_LIMIT_SYNC_MS, member: fastify.instanceId })
  if (failures !== null) fastify.addHook('onClose', async () => { failures.close() })
  /** The 429 to answer instead of a 401 once the address has been refused too often, else undefined. */
  const failureLimit = (request: FastifyRequest, reply: FastifyReply): Error | undefined => {
    if (failures === null) return undefined
    const { current, ttl } = failures.incr(`f:${request.ip}`)
    if (current <= AUTH_FAILURES_PER_MINUTE) return undefined
    void reply.header('retry-after', String(Math.ceil(ttl / 1000)))
    return new RateLimitedError(`more than ${AUTH_FAILURES_PER_MINUTE} requests a minute from this address without a valid token; retry after the Retry-After delay`)
  }
  /** The token id of `given` if it is one of `accepted`, compared in constant time. */
  const verify = (given: string, accepted: Buffer[]): string | undefined => {
    const d = digest(given)
    let ok = false
    for (const t of accepted) ok = timingSafeEqual(d, t) || ok
    return ok ? d.toString('base64url').slice(0, 16) : undefined
  }
  // A callback hook rather than an async one: no promise and no extra tick per request.
  const check = (scope: AuthScope, accepted: Buffer[]) => {
    const remembered = new Map<string, string>()
    return (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
      const given = bearer(request)
      if (given !== undefined) {
        let id = remembered.get(given)
        if (id === undefined) {
          id = verify(given, accepted)
          if (id !== undefined && remembered.size < MAX_REMEMBERED) remembered.set(given, id)
        }
        if (id !== undefined) {
          request.tokenId = id
          done()
          return
        }
      }
      // Refusals count against a limit per address, so guessing tokens is throttled.
      const limited = failureLimit(request, reply)
      if (limited !== undefined) {
        done(limited)
        return
      }
      void reply.header('www-authenticate', 'Bearer')
      done(new UnauthorizedError(scope === 'ingest' ? 'METRICS_INGEST_TOKEN' : 'METRICS_READ_TOKEN'))
    }
  }
  const checks = { ingest: check('ingest', tokens.ingest), read: check('read', tokens.read) }
  // Attached only to the routes that need a token, so open routes pay nothing for it.
  fastify.addHook('onRoute', (route) => {
    const scope = route.config?.auth
    if (scope === undefined || tokens[scope].length === 0) return
    route.onRequest = withHook(route.onRequest, checks[scope], 'first')
  })
}, { name: 'auth', dependencies: ['store'] })
