import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'

const require = createRequire(import.meta.url)

/** The dashboard's files: public/ at the package root, beside src/ and dist/ alike. */
export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url))

/** Browser modules served from the installed packages (never from a CDN): URL name → [folder, file]. */
const VENDOR: Record<string, [string, string]> = {
  'uplot.js': [dirname(require.resolve('uplot')), 'uPlot.esm.js'],
  'uplot.css': [dirname(require.resolve('uplot')), 'uPlot.min.css'],
  'eventsource-parser.js': [dirname(require.resolve('eventsource-parser')), 'index.js']
}

/**
 * Everything the page loads comes from this service, and it talks to this service only; it is never
 * framed. uPlot styles its elements through the DOM, which style-src 'self' allows.
 */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * GET / (the dashboard) and its assets, open whatever the read token: the page asks for the token
 * and sends it to the /api/ routes. No route here has an `auth` scope or sits under /api/.
 */
const dashboardRoutes: FastifyPluginAsync = async (fastify) => {
  await fastify.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    // One route per file at start-up: an unknown path stays the service's own 404.
    wildcard: false,
    setHeaders: (reply) => {
      void reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
      void reply.header('x-content-type-options', 'nosniff')
    }
  })
  for (const [name, [dir, file]] of Object.entries(VENDOR)) {
    fastify.get(`/vendor/${name}`, { schema: { hide: true } }, async (_request, reply) => await reply.sendFile(file, dir))
  }
}

export default dashboardRoutes
