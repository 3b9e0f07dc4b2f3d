import { readFileSync } from 'node:fs'
import t from 'tap'
import SwaggerParser from '@apidevtools/swagger-parser'
import openapiTS, { astToString } from 'openapi-typescript'
import { parse } from 'yaml'
import { buildSpec, specYaml } from '../../src/openapi.js'

const root = new URL('../../', import.meta.url)
const yamlText = readFileSync(new URL('openapi.yaml', root), 'utf8')
const checkedIn = parse(yamlText) as Record<string, any>

t.test('openapi.yaml is what the live app generates (run `npm run openapi` after changing a route)', async (t) => {
  const live = await buildSpec()
  // Structure first, so a drift names the path and method that changed.
  t.same(Object.keys(checkedIn.paths).sort(), Object.keys(live.paths as object).sort(), 'the same paths')
  for (const [path, methods] of Object.entries(live.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const mine = checkedIn.paths[path]?.[method]
      t.ok(mine, `${method.toUpperCase()} ${path} is in openapi.yaml`)
      t.same(mine?.parameters, op.parameters, `${method.toUpperCase()} ${path}: parameters`)
      t.same(mine?.requestBody, op.requestBody, `${method.toUpperCase()} ${path}: request body`)
      t.same(mine?.responses, op.responses, `${method.toUpperCase()} ${path}: responses`)
    }
  }
  t.same(checkedIn.components, live.components, 'components')
  t.equal(yamlText, specYaml(live), 'byte for byte')
})

t.test('openapi.yaml passes the OpenAPI validator', async (t) => {
  const api = await SwaggerParser.validate(structuredClone(checkedIn) as never)
  t.equal((api as { openapi: string }).openapi, '3.1.0')
  const documented = Object.entries(checkedIn.paths as Record<string, object>).flatMap(([p, m]) => Object.keys(m).map((x) => `${x.toUpperCase()} ${p}`)).sort()
  t.same(documented, [
    'GET /api/metrics/compare',
    'GET /api/metrics/gateway/catalog',
    'GET /api/metrics/health/leaderboard',
    'GET /api/metrics/provider/summary',
    'GET /api/metrics/realtime',
    'GET /api/metrics/route',
    'GET /api/metrics/status/history',
    'GET /api/metrics/stream',
    'GET /api/metrics/trends',
    'GET /healthz',
    'GET /metrics',
    'GET /readyz',
    'POST /api/metrics/chat',
    'POST /api/metrics/gateway/fetch'
  ], 'every route of docs/api.md')
  for (const [path, methods] of Object.entries(checkedIn.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(methods)) {
      if (!path.startsWith('/api/')) continue
      const codes = Object.keys(op.responses)
      const expected = method === 'post' ? ['202', '400', '401', '413', '415', '429', '503'] : ['200', '400', '401', '429', '503']
      t.same(codes.sort(), expected, `${method.toUpperCase()} ${path} documents ${expected.join(', ')}`)
    }
  }
})

t.test('the generated client types are up to date', async (t) => {
  const generated = astToString(await openapiTS(yamlText))
  const file = readFileSync(new URL('packages/client/src/api-types.ts', root), 'utf8')
  t.equal(file.slice(file.indexOf('export interface paths')), generated.slice(generated.indexOf('export interface paths')), 'packages/client/src/api-types.ts matches openapi.yaml')
})

t.test('what code generators need: operation ids, servers, explicit security, optional defaults, Retry-After', async (t) => {
  const ops = Object.entries(checkedIn.paths as Record<string, Record<string, any>>).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })))
  const ids = ops.map(({ op }) => op.operationId)
  t.ok(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)), 'every operation has a camelCase operationId')
  t.equal(new Set(ids).size, ids.length, 'operation ids are unique')
  t.match(Object.fromEntries(ops.map(({ name, op }) => [name, op.operationId])), { 'POST /api/metrics/chat': 'recordChat', 'POST /api/metrics/gateway/fetch': 'recordGatewayFetch', 'GET /api/metrics/stream': 'streamMetrics', 'GET /readyz': 'getReadiness' })
  t.ok(Array.isArray(checkedIn.servers) && checkedIn.servers.length > 0, 'servers are listed')
  for (const { name, op } of ops) {
    t.ok(Array.isArray(op.security), `${name}: security is explicit`)
    const open = name === 'GET /healthz' || name === 'GET /readyz'
    t.equal(op.security.length === 0, open, `${name}: ${open ? 'open' : 'behind a bearer token'}`)
    for (const p of op.parameters ?? []) {
      if (p.schema?.default !== undefined) t.not(p.required, true, `${name}: ${p.name} has a default, so it is not required`)
    }
    for (const code of ['429', '503']) {
      if (op.responses[code] !== undefined && name !== 'GET /readyz') t.ok(op.responses[code].headers?.['retry-after'], `${name}: ${code} has Retry-After`)
    }
    if (op.requestBody?.content?.['application/json'] !== undefined) t.ok(op.responses['415'], `${name}: 415 for a body that is not JSON`)
  }
  const sse = checkedIn.paths['/api/metrics/stream'].get.responses['200'].content['text/event-stream'].schema
  t.same(sse, { $ref: '#/components/schemas/StreamEvent' }, 'the stream\'s events are typed by their data')
  t.same(checkedIn.components.schemas.StreamEvent.oneOf.map((s: { $ref: string }) => s.$ref.split('/').pop()), ['Leaderboard', 'Sparklines', 'ProviderSummary', 'GatewaysEvent', 'Realtime', 'StreamError'])
})
