/**
 * A client from a second generator: @hey-api/openapi-ts (fetch client, zod validators on every
 * answer and every stream event) generated from openapi.yaml into a temporary directory, compiled
 * with tsc (strict) together with a program that uses it (hey-api-driver.ts.txt), and run against a
 * live service. The stream's events must pass the generated validator: with the data typed as a
 * string, the generated SSE client rejected every JSON event and yielded none.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { createClient } from '@hey-api/openapi-ts'
import t from 'tap'
import { listenApp } from '../helpers/live.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const INGEST = 'hey-api-ingest-token-0001'
const READ = 'hey-api-read-token-000001'

interface Outcome {
  liveness: string
  readiness: string
  recorded: number
  fetches: number
  invalidStatus: number
  unsupportedStatus: number
  unauthorizedStatus: number
  leaderboardModels: string[]
  realtimeRequests: number
  providers: string[]
  events: Array<{ event: string | undefined, data: Record<string, unknown> }>
  sseErrors: string[]
}

t.test('the @hey-api/openapi-ts client compiles and works against the service, stream included', async (t) => {
  // Inside the checkout (t.testdir), so that the compiled program resolves zod from node_modules.
  const dir = t.testdir({})
  await createClient({
    input: join(root, 'openapi.yaml'),
    output: { path: join(dir, 'gen') },
    logs: { level: 'silent' },
    plugins: ['@hey-api/client-fetch', 'zod', { name: '@hey-api/sdk', validator: true }]
  })
  copyFileSync(join(root, 'test/openapi/hey-api-driver.ts.txt'), join(dir, 'driver.ts'))
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, outDir: 'out', rootDir: '.', types: ['node'], typeRoots: [join(root, 'node_modules/@types')] },
    include: ['driver.ts', 'gen']
  }))
  try {
    await promisify(execFile)(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, timeout: 60_000, maxBuffer: 16 << 20 })
  } catch (err) {
    const e = err as { stdout?: string, message: string }
    t.fail(`tsc: ${e.stdout ?? e.message}`)
    return
  }
  t.pass('the generated client and the program using it compile (tsc, strict)')

  const live = await listenApp(t, { config: { ingestTokens: [INGEST], readTokens: [READ] } })
  const { run } = await import(pathToFileURL(join(dir, 'out/driver.js')).href) as { run: (base: string, ingest: string, read: string, flush: () => Promise<void>) => Promise<Outcome> }
  const out = await run(live.base, INGEST, READ, async () => { await live.app.flusher.flush() })

  t.equal(out.liveness, 'ok', 'getLiveness')
  t.equal(out.readiness, 'ready', 'getReadiness')
  t.equal(out.recorded, 2, 'recordChat')
  t.equal(out.fetches, 1, 'recordGatewayFetch')
  t.equal(out.invalidStatus, 400, 'an invalid event: 400')
  t.equal(out.unsupportedStatus, 415, 'a body that is not JSON: 415')
  t.equal(out.unauthorizedStatus, 401, 'a read without the token: 401')
  t.same(out.leaderboardModels, ['openai/gpt-4o'], 'getLeaderboard')
  t.equal(out.realtimeRequests, 2, 'getRealtime')
  t.same(out.providers, ['openai'], 'getProviderSummary')

  t.same(out.sseErrors, [], 'the generated SSE client rejected no event')
  t.same(out.events.map((e) => e.event).sort(), ['gateways', 'leaderboard', 'providers', 'realtime', 'sparklines'], 'one event of each topic, through the generated validator')
  const byName = Object.fromEntries(out.events.map((e) => [e.event, e.data]))
  t.match(byName.leaderboard, { entries: [{ model: 'openai/gpt-4o' }] })
  t.match(byName.realtime, { type: 'model', id: 'openai/gpt-4o', requests: 2 })
  t.match(byName.gateways, { gateways: [{ type: 'gateway', id: 'eu-1' }] })
  t.match(byName.sparklines, { metric: 'ttft', stat: 'p50' })
  t.match(byName.providers, { providers: [{ provider: 'openai' }] })
})
