/**
 * `npm ci` of the repository on the Node running the tests prints no EBADENGINE warning: every
 * locked package accepts it (content-disposition 3 and cookie 2, which want Node 22, are overridden
 * by versions with the same API that accept Node 18 and up). Checked with a dry run of npm ci on
 * copies of the manifests and the lock in a temporary folder; nothing is downloaded or installed.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

t.test('npm ci on this Node: no EBADENGINE', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'metrics-engines-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })
  copyFileSync(join(ROOT, 'package.json'), join(tmp, 'package.json'))
  copyFileSync(join(ROOT, 'package-lock.json'), join(tmp, 'package-lock.json'))
  for (const dir of readdirSync(join(ROOT, 'packages'))) {
    mkdirSync(join(tmp, 'packages', dir), { recursive: true })
    copyFileSync(join(ROOT, 'packages', dir, 'package.json'), join(tmp, 'packages', dir, 'package.json'))
  }
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS') env[k] = v
  const { stdout, stderr } = await run('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: tmp, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })
  t.notMatch(stdout + stderr, /EBADENGINE/, `no package refuses Node ${process.version}`)

  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string, engines?: { node?: string } }> }
  const byName = (name: string): string[] => Object.entries(lock.packages).filter(([k]) => k.endsWith(`node_modules/${name}`)).map(([, v]) => `${v.version ?? ''} ${v.engines?.node ?? ''}`)
  t.same(byName('content-disposition').sort(), ['1.1.0 >=18', '2.0.1 >=18'], 'content-disposition: 2.0.1 for @fastify/static 10, 1.1.0 for the one Swagger UI bundles')
  t.same(byName('cookie'), ['1.1.1 >=18'], 'cookie 1.1.1 for light-my-request')
})
