import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/**
 * The OpenAPI 3.1 document, generated from the route schemas (the single source of truth; the
 * checked-in openapi.yaml is regenerated with `npm run openapi` and a test fails when they drift),
 * served at GET /openapi.json, with Swagger UI at GET /docs from locally installed assets.
 */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    // Shared schemas become components named by their $id.
    refResolver: { buildLocalReference: (json) => String(json.$id) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'LLM gateway metrics',
        version: '1.0.0',
        description: 'Real-time metrics for LLM chat gateways: record one event per chat completion, read exact counts and percentiles per model, provider and gateway.'
      },
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
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
