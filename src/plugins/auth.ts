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

/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with timingSafeEqual, against
 * every configured token (no early exit), so timing tells nothing about them. The recording routes
 * carry the `ingest` scope; the reads under /api/ and GET /metrics the `read` scope. Routes without an
 * `auth` scope (health, docs) stay open; a scope with no tokens configured is open too.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const tokens: Record<AuthScope, Buffer[]> = {
    ingest: opts.config.ingestTokens.map(digest),
    read: opts.config.readTokens.map(digest)
  }
  fastify.decorateRequest('tokenId', undefined)
  const check = (scope: AuthScope, accepted: Buffer[]) => async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const given = bearer(request)
    if (given !== undefined) {
      const d = digest(given)
      let ok = false
      for (const t of accepted) ok = timingSafeEqual(d, t) || ok
      if (ok) {
        request.tokenId = d.toString('base64url').slice(0, 16)
        return
      }
    }
    void reply.header('www-authenticate', 'Bearer')
    throw new UnauthorizedError(scope === 'ingest' ? 'METRICS_INGEST_TOKEN' : 'METRICS_READ_TOKEN')
  }
  // Attached only to the routes that need a token, so open routes pay nothing for it.
  fastify.addHook('onRoute', (route) => {
    const scope = route.config?.auth
    if (scope === undefined || tokens[scope].length === 0) return
    route.onRequest = withHook(route.onRequest, check(scope, tokens[scope]), 'first')
  })
}, { name: 'auth' })
