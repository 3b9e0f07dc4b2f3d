import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { UnauthorizedError } from '../errors.js'
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
  interface FastifyInstance {
    /**
     * Asked for each request refused for its token: an error to answer instead of the 401 (too many
     * refusals from that address), else undefined. Set by the limits plugin; null: always the 401.
     */
    authFailureLimit: ((request: FastifyRequest, reply: FastifyReply) => Error | undefined) | null
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
 * with a token is not answered faster than any other wrong guess. Each refusal is first offered to
 * `authFailureLimit`, which answers 429 instead once an address has been refused too often.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const tokens: Record<AuthScope, Buffer[]> = {
    ingest: opts.config.ingestTokens.map(digest),
    read: opts.config.readTokens.map(digest)
  }
  fastify.decorateRequest('tokenId', undefined)
  fastify.decorate('authFailureLimit', null)
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
      const limited = fastify.authFailureLimit?.(request, reply)
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
}, { name: 'auth' })
