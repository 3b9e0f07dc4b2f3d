import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { StreamEventComponents } from '../schemas/stream.js'

/**
 * The OpenAPI 3.1 document, generated from the route schemas (the single source of truth; the
 * checked-in openapi.yaml is regenerated with `npm run openapi` and a test fails when they drift),
 * served at GET /openapi.json, with Swagger UI at GET /docs from locally installed assets.
 */
/** The operation ids, as generated clients name their functions; a route missing here fails test/openapi. */
export const OPERATION_IDS: Record<string, string> = {
  'get /healthz': 'getLiveness',
  'get /readyz': 'getReadiness',
  'post /api/metrics/chat': 'recordChat',
  'post /api/metrics/gateway/fetch': 'recordGatewayFetch',
  'get /api/metrics/realtime': 'getRealtime',
  'get /api/metrics/health/leaderboard': 'getLeaderboard',
  'get /api/metrics/provider/summary': 'getProviderSummary',
  'get /api/metrics/trends': 'getTrends',
  'get /api/metrics/compare': 'getComparison',
  'get /api/metrics/route': 'getRouteCandidates',
  'get /api/metrics/status/history': 'getStatusHistory',
  'get /api/metrics/gateway/catalog': 'getGatewayCatalog',
  'get /metrics': 'getPrometheusMetrics',
  'get /api/metrics/stream': 'streamMetrics'
}

/** JSON answers that the stream also sends as events: components, referenced by both. */
const HOISTED: Record<string, string> = {
  'get /api/metrics/health/leaderboard': 'Leaderboard',
  'get /api/metrics/provider/summary': 'ProviderSummary',
  'get /api/metrics/realtime': 'Realtime'
}

/**
 * What code generators and linters need beyond the route schemas: an operation id on every
 * operation, `security: []` on the open ones (none means "the document's default", which a linter
 * cannot tell from forgotten), query parameters with a default not required (the default is
 * applied when absent), and the stream's events typed by their JSON data (a generated SSE client
 * parses and checks each event's data against the schema of text/event-stream).
 */
export function completeDocument (doc: Record<string, any>): Record<string, any> {
  const schemas: Record<string, unknown> = doc.components.schemas ??= {}
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const key = `${method} ${path}`
      const operationId = OPERATION_IDS[key]
      if (operationId !== undefined) op.operationId ??= operationId
      op.security ??= []
      for (const param of op.parameters ?? []) {
        if (param.in === 'query' && param.schema?.default !== undefined) param.required = false
      }
      const hoisted = HOISTED[key]
      const json = op.responses?.['200']?.content?.['application/json']
      if (hoisted !== undefined && json !== undefined) {
        schemas[hoisted] = json.schema
        json.schema = { $ref: `#/components/schemas/${hoisted}` }
      }
    }
  }
  Object.assign(schemas, StreamEventComponents)
  const sse = doc.paths['/api/metrics/stream']?.get?.responses?.['200']?.content?.['text/event-stream']
  if (sse !== undefined) sse.schema = { $ref: '#/components/schemas/StreamEvent' }
  return doc
}

export default fp(async (fastify) => {
  await fastify.register(swagger, {
    // Shared schemas become components named by their $id.
    refResolver: { buildLocalReference: (json) => String(json.$id) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'LLM gateway metrics',
        version: '1.0.0',
        description: 'Real-time metrics for LLM chat gateways: record one event per chat completion, read exact counts and percentiles per model, provider and gateway.',
        license: { name: 'MIT', identifier: 'MIT' }
      },
      servers: [
        { url: '/', description: 'the instance that serves this document (GET /openapi.json)' },
        {
          url: 'http://{host}:{port}',
          description: 'an instance on its defaults (HOST, PORT)',
          variables: { host: { default: '127.0.0.1' }, port: { default: '3000' } }
        }
      ],
      components: {
        securitySchemes: {
          ingestToken: { type: 'http', scheme: 'bearer', description: 'one of METRICS_INGEST_TOKEN (required when set)' },
          readToken: { type: 'http', scheme: 'bearer', description: 'one of METRICS_READ_TOKEN (required when set)' }
        }
      },
      tags: [
        { name: 'recording', description: 'What the gateway sends' },
        { name: 'reading', description: 'What dashboards and clients read' },
        { name: 'operating', description: 'Health and readiness' }
      ]
    },
    // The document is OpenAPI 3 (`openapi` above), never Swagger 2.
    transformObject: (document) => completeDocument((document as { openapiObject: Record<string, any> }).openapiObject)
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
