/**
 * The published package: `npm pack` (prepack builds dist/), installed alone into an empty
 * node_modules, serves `llm-gateway-metrics/client` without Fastify, Redis or any other dependency.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The environment of the child processes: nothing that would let Node find modules elsewhere. */
function cleanEnv (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.NODE_PATH
  delete env.NODE_OPTIONS
  return env
}

t.test('npm pack: the SDK works installed alone', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'metrics-pack-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })

  await run('npm', ['pack', '--pack-destination', tmp], { cwd: ROOT, env: cleanEnv(), timeout: 90_000, maxBuffer: 16 * 1024 * 1024 })
  const tarballs = readdirSync(tmp).filter((f) => f.endsWith('.tgz'))
  t.equal(tarballs.length, 1, `one tarball: ${tarballs.join(', ')}`)
  const tarball = join(tmp, tarballs[0] as string)

  const { stdout: listing } = await run('tar', ['-tzf', tarball], { maxBuffer: 16 * 1024 * 1024 })
  const files = listing.split('\n').filter((f) => f !== '').map((f) => f.replace(/^package\//, ''))
  for (const f of ['package.json', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/client/errors.js', 'dist/client/api-types.d.ts', 'dist/metrics/provider.js', 'openapi.yaml', 'dist/react/index.js', 'dist/react/index.d.ts', 'public/index.html', 'public/app.js']) {
    t.ok(files.includes(f), `contains ${f}`)
  }
  t.same(files.filter((f) => /(^|\/)(src|test)\//.test(f)), [], 'no src/ or test/ files')
  t.same(files.filter((f) => /\.test\.(ts|js)$/.test(f) || f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources or tests')

  const nm = join(tmp, 'node_modules')
  mkdirSync(nm)
  await run('tar', ['-xzf', tarball, '-C', tmp])
  renameSync(join(tmp, 'package'), join(nm, 'llm-gateway-metrics'))
  t.same(readdirSync(nm), ['llm-gateway-metrics'], 'the only package installed')

  const probe = `
    const out = {}
    try { await import('fastify'); out.fastify = 'found' } catch (e) { out.fastify = e.code }
    try { await import('ioredis'); out.ioredis = 'found' } catch (e) { out.ioredis = e.code }
    const m = await import('llm-gateway-metrics/client')
    out.exports = Object.keys(m).sort()
    out.types = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v]))
    out.provider = m.extractProvider('anthropic/claude-3.5-sonnet')
    out.errorType = m.determineErrorType({ status: 429 })
    const c = m.createMetricsClient({ baseUrl: 'http://127.0.0.1:9', flushIntervalMs: 60000 })
    out.clientMethods = Object.keys(c).sort()
    c.recordChat({ model: 'a/b', success: true })
    out.stats = c.stats()
    await c.close()
    const types = await import('llm-gateway-metrics/client/api-types')
    out.apiTypesLoads = typeof types === 'object'
    process.stdout.write(JSON.stringify(out))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: tmp, env: cleanEnv(), timeout: 30_000 })
  const out = JSON.parse(stdout) as Record<string, unknown>
  t.equal(out.fastify, 'ERR_MODULE_NOT_FOUND', 'fastify cannot be found from there')
  t.equal(out.ioredis, 'ERR_MODULE_NOT_FOUND', 'ioredis cannot be found from there')
  t.same(out.types, { createMetricsClient: 'function', determineErrorType: 'function', extractProvider: 'function' }, 'exports createMetricsClient, determineErrorType, extractProvider')
  t.equal(out.provider, 'anthropic')
  t.equal(out.errorType, 'rate_limit')
  t.same(out.clientMethods, ['close', 'flush', 'recordChat', 'recordGatewayFetch', 'route', 'stats', 'trackCompletion'])
  t.same(out.stats, { queued: 1, sent: 0, dropped: 0, failed: 0, invalid: 0, refused: 0, expired: 0, retries: 0 })
  t.equal(out.apiTypesLoads, true, 'the api-types subpath resolves too')
})
