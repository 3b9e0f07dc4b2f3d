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
  const file = readFileSync(new URL('src/client/api-types.ts', root), 'utf8')
  t.equal(file.slice(file.indexOf('export interface paths')), generated.slice(generated.indexOf('export interface paths')), 'src/client/api-types.ts matches openapi.yaml')
})
