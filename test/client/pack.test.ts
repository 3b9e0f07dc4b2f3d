/**
 * The published client: `npm pack` of packages/client (its prepare script builds dist/), the tarball
 * installed alone, offline, into an empty project in a temporary folder. It installs no other
 * package, loads from ES modules and from CommonJS alike, and a consumer type-checks with the
 * repository's TypeScript under the node10, node16, nodenext and bundler resolutions (strict,
 * exactOptionalPropertyTypes, the package's own .d.ts checked too). The package is packed from a
 * copy in the temporary folder (its prepack script builds there): the repository's packages/client/dist,
 * which the service imports while other tests run, is left alone.
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PKG_DIR = join(ROOT, 'packages/client')
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const NAME = '@llm-gateway-metrics/client'

/** The environment of the child processes: nothing that would let Node find modules elsewhere, nor npm settings of a parent npm run. */
function cleanEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
  delete env.NODE_PATH
  delete env.NODE_OPTIONS
  return env
}

const opts = { env: cleanEnv(), timeout: 120_000, maxBuffer: 32 * 1024 * 1024 }

/** Every path string under an `exports` or `typesVersions` value. */
function targets (v: unknown): string[] {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.flatMap(targets)
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(targets)
  return []
}

/** What a consumer does with the package, the same from ESM and CommonJS (`load` differs). */
const probe = (load: string): string => `
  const out = {}
  const m = ${load}('${NAME}')
  out.exports = Object.keys(m).sort()
  out.provider = m.extractProvider('anthropic/claude-3.5-sonnet')
  out.errorType = m.determineErrorType({ status: 429 })
  out.subpaths = {
    provider: (${load}('${NAME}/provider')).extractProvider('mistral:large'),
    errors: (${load}('${NAME}/errors')).determineErrorType(new Error('connect ECONNREFUSED 127.0.0.1:9')),
    apiTypes: Object.keys(${load}('${NAME}/api-types')).length
  }
  let fetches = 0
  const fetch = async () => { fetches++; return new Response('{}', { status: 202 }) }
  const metricsService = m.createMetricsService({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: 1e9, fetch })
  const model = 'anthropic/claude-3.5-sonnet'
  const rejected = []
  await Promise.all([
    metricsService.recordRequestComplete({ model, gateway: 'g', total_time_ms: 10, success: true }).catch((e) => rejected.push(e)),
    metricsService.recordLatency({ model, gateway: 'g', ttft_ms: 5 }).catch((e) => rejected.push(e)),
    metricsService.recordRequestComplete({ model, ttft_ms: 5, total_time_ms: 20, success: true }).catch((e) => rejected.push(e)),
    metricsService.recordGatewayFetch('error', { gateway: 'g', error_type: 'timeout' }).catch((e) => rejected.push(e)),
    metricsService.recordStatus(null).catch((e) => rejected.push(e))
  ])
  await metricsService.close()
  out.rejected = rejected.length
  out.fetches = fetches
  out.stats = metricsService.stats()
  out.clientMethods = Object.keys(m.createMetricsClient({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: 1e9 })).sort()
  process.stdout.write(JSON.stringify(out))
`

/** A consumer that uses every entry point; the @ts-expect-error lines fail if a type resolved to any. */
const CONSUMER = `
import { createMetricsClient, createMetricsService, determineErrorType, extractProvider, type ChatEvent, type MetricsService, type MetricsServiceOptions } from '${NAME}'
import { extractProvider as providerOf } from '${NAME}/provider'
import { determineErrorType as errorTypeOf, type ChatErrorType } from '${NAME}/errors'
import type { components, paths } from '${NAME}/api-types'

declare const token: string | undefined
declare const gateway: string | undefined
declare const error: unknown

const options: MetricsServiceOptions = { baseUrl: 'http://127.0.0.1:3000', token, gateway }
const metricsService: MetricsService = createMetricsService(options)
const model = 'anthropic/claude-3.5-sonnet'
const provider = providerOf(model)
const total_time_ms = 3150
const ttft_ms = 420
const model_count = 312
const response_time_ms = 840
metricsService.recordRequestComplete({ model, gateway, provider: extractProvider(model), total_time_ms, success: true }).catch(console.error)
metricsService.recordStatus({ model, gateway, provider, success: false, error_type: determineErrorType(error) }).catch(console.error)
metricsService.recordLatency({ model, gateway, provider, ttft_ms }).catch(console.error)
metricsService.recordRequestComplete({ model, ttft_ms, total_time_ms, success: true }).catch(console.error)
metricsService.recordGatewayFetch('success', { gateway: 'eu-1', model_count, response_time_ms }).catch(console.error)
metricsService.recordGatewayFetch('error', { gateway: 'eu-1', error_type: 'timeout' }).catch(console.error)
// @ts-expect-error: a fetch is 'success' or 'error'
void metricsService.recordGatewayFetch('maybe', { gateway: 'eu-1' })
// @ts-expect-error: a latency sample needs its ttft_ms
void metricsService.recordLatency({ model })

const client = createMetricsClient({ baseUrl: 'http://127.0.0.1:3000', token, onError: (e) => { console.warn(e.kind, e.count) } })
const event: ChatEvent = { model, gateway, success: true, ttft_ms }
client.recordChat(event)
const track = client.trackCompletion({ model, gateway })
track.firstToken()
track.end({ output_tokens: 10 })
// @ts-expect-error: success is required
client.recordChat({ model })

const kind: ChatErrorType = errorTypeOf(error)
type Realtime = components['schemas']['Realtime']
type RealtimeQuery = paths['/api/metrics/realtime']['get']['parameters']['query']
const requests = (r: Realtime): number => r.requests
const q: RealtimeQuery = { type: 'model', id: model }
// @ts-expect-error: requests is a number
const wrong: string = ({} as Realtime).requests
export { kind, requests, q, wrong }
`

interface Row { resolution: string, format: string, file: string, ok: boolean, resolved: string[], output: string }

t.test('the packed client: alone, zero dependencies, ESM and CommonJS, typed under four resolutions', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'metrics-client-pack-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })
  const packDir = join(tmp, 'pack')
  const app = join(tmp, 'consumer')
  mkdirSync(packDir)
  mkdirSync(app)

  // The package's own files, and the repository's node_modules for its build tools (tsup, TypeScript, @types/node).
  const copy = join(tmp, 'client')
  for (const f of ['package.json', 'tsconfig.json', 'README.md', 'src']) cpSync(join(PKG_DIR, f), join(copy, f), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir')
  const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { ...opts, cwd: copy })
  const [info] = JSON.parse(packed.slice(packed.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = info!.files.map((f) => f.path).sort()
  const manifest = JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')) as Record<string, unknown>

  t.test('the tarball', async (t) => {
    t.same(files.filter((f) => !/^dist\/[\w-]+\.(js|cjs|d\.ts|d\.cts|js\.map|cjs\.map)$/.test(f)), ['README.md', 'package.json'], 'built output, the README and package.json: no sources, tests or configuration')
    const promised = [...targets(manifest.exports), ...targets(manifest.typesVersions), manifest.main, manifest.module, manifest.types].map((p) => String(p).replace(/^\.\//, ''))
    t.same(promised.filter((p) => !files.includes(p)), [], 'every file exports, typesVersions, main, module and types name is in it')
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'bundleDependencies']) t.equal(manifest[field], undefined, `no ${field}`)
    t.same(manifest.engines, { node: '>=20' })
  })

  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  const tarball = join(packDir, info!.filename)
  const installed = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { ...opts, cwd: app })

  t.test('installed alone, offline', async (t) => {
    t.notMatch(installed.stdout + installed.stderr, /EBADENGINE|npm warn/i, 'no warning')
    t.match(installed.stdout, /added 1 package/, 'one package added')
    t.same(readdirSync(join(app, 'node_modules')).filter((f) => !f.startsWith('.')), ['@llm-gateway-metrics'])
    t.same(readdirSync(join(app, 'node_modules/@llm-gateway-metrics')), ['client'])
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }
    t.same(Object.keys(lock.packages).filter((k) => k !== ''), ['node_modules/@llm-gateway-metrics/client'], 'zero dependencies in the lock file')
  })

  const esm = await run(process.execPath, ['--input-type=module', '-e', probe('await import')], { ...opts, cwd: app })
  writeFileSync(join(app, 'probe.cjs'), `(async () => {${probe('require')}})().catch((e) => { console.error(e); process.exit(1) })`)
  const cjs = await run(process.execPath, ['probe.cjs'], { ...opts, cwd: app })

  t.test('ESM and CommonJS', async (t) => {
    const fromEsm = JSON.parse(esm.stdout) as Record<string, unknown>
    const fromCjs = JSON.parse(cjs.stdout) as Record<string, unknown>
    t.same(fromEsm.exports, ['createMetricsClient', 'createMetricsService', 'determineErrorType', 'extractProvider'])
    t.same(fromEsm.subpaths, { provider: 'mistral', errors: 'network', apiTypes: 0 })
    t.equal(fromEsm.provider, 'anthropic')
    t.equal(fromEsm.errorType, 'rate_limit')
    t.equal(fromEsm.rejected, 0, 'no call rejected')
    t.equal(fromEsm.fetches, 2, 'close() sent the completions and the fetch (one request per route)')
    t.match(fromEsm.stats, { sent: 3, invalid: 1, latencyJoined: 1, latencyPending: 0 })
    t.same(fromEsm.clientMethods, ['close', 'flush', 'recordChat', 'recordGatewayFetch', 'route', 'stats', 'trackCompletion'])
    t.same(fromCjs, fromEsm, 'require() gives the same as import')
  })

  // The consumer, type-checked with the repository's compiler: no @types/node there, so DOM's lib.
  const matrix: Array<{ resolution: string, module: string, format: string, file: string }> = [
    { resolution: 'node10', module: 'commonjs', format: 'CJS', file: 'consumer.ts' },
    { resolution: 'node16', module: 'node16', format: 'ESM', file: 'consumer.mts' },
    { resolution: 'node16', module: 'node16', format: 'CJS', file: 'consumer.cts' },
    { resolution: 'nodenext', module: 'nodenext', format: 'ESM', file: 'consumer.mts' },
    { resolution: 'nodenext', module: 'nodenext', format: 'CJS', file: 'consumer.cts' },
    { resolution: 'bundler', module: 'esnext', format: 'ESM', file: 'consumer.ts' }
  ]
  for (const file of new Set(matrix.map((m) => m.file))) writeFileSync(join(app, file), CONSUMER)
  const rows: Row[] = []
  for (const m of matrix) {
    const config = `tsconfig.${m.resolution}.${m.format}.json`
    writeFileSync(join(app, config), JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        module: m.module,
        moduleResolution: m.resolution,
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
        types: [],
        // node10 is deprecated in TypeScript 6, still supported.
        ignoreDeprecations: '6.0'
      },
      files: [m.file]
    }))
    const r = await run(process.execPath, [TSC, '-p', config, '--traceResolution'], { ...opts, cwd: app }).then(
      (r) => ({ ok: true, out: r.stdout }),
      (err: { stdout?: string, stderr?: string }) => ({ ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` })
    )
    const resolved = [...r.out.matchAll(/Module name '(@llm-gateway-metrics\/client[^']*)' was successfully resolved to '[^']*\/node_modules\/@llm-gateway-metrics\/client\/([^']+)'/g)]
      .map(([, name, to]) => `${name!.replace(NAME, '.')} → ${to}`)
    rows.push({ ...m, ok: r.ok, resolved: [...new Set(resolved)], output: r.out.split('\n').filter((l) => /error TS/.test(l)).join('\n') })
  }

  t.test('types under node10, node16, nodenext and bundler', async (t) => {
    for (const row of rows) {
      t.equal(row.output, '', `${row.resolution} ${row.format}: no type error`)
      t.ok(row.ok, `${row.resolution} ${row.format}: tsc exits 0`)
      const ext = row.format === 'CJS' ? 'd.cts' : 'd.ts'
      t.same(row.resolved.sort(), ['. → dist/index', './api-types → dist/api-types', './errors → dist/errors', './provider → dist/provider'].map((s) => `${s}.${ext}`),
        `${row.resolution} ${row.format}: every entry point resolves to its .${ext}`)
    }
    t.comment('resolution | format | result | resolved')
    for (const row of rows) t.comment(`${row.resolution} | ${row.format} | ${row.ok ? 'ok' : 'FAIL'} | ${row.resolved.join(', ')}`)
  })
})
