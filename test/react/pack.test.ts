/**
 * The published React package: packages/client and packages/react copied to a temporary folder and
 * packed there (`npm pack`, whose prepack builds dist/ with tsup), so that nothing in the repository
 * is rebuilt under another test's feet. The two tarballs and eventsource-parser (packed from the
 * repository's node_modules) are installed offline into an empty project; React, the peer, is the
 * repository's own, linked in as an app's would be installed. Then it loads from ES modules and
 * from CommonJS and renders with the app's React (one copy), and a consumer type-checks with the
 * repository's TypeScript under the node10, node16, nodenext and bundler resolutions (strict,
 * exactOptionalPropertyTypes, the package's own .d.ts checked too), JSX included.
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
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const NAME = '@llm-gateway-metrics/react'

/** The environment of the child processes: nothing that would let Node find modules elsewhere, nor npm settings of a parent npm run. */
function cleanEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
  delete env.NODE_PATH
  delete env.NODE_OPTIONS
  return env
}

const opts = { env: cleanEnv(), timeout: 120_000, maxBuffer: 32 * 1024 * 1024 }

/** Every path string under an `exports` value. */
function targets (v: unknown): string[] {
  if (typeof v === 'string') return [v]
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(targets)
  return []
}

/** Packs `dir` into `dest`: the tarball's path and the files in it. */
async function pack (dir: string, dest: string, extra: string[] = []): Promise<{ tarball: string, files: string[] }> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest, ...extra], { ...opts, cwd: dir })
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  return { tarball: join(dest, info!.filename), files: info!.files.map((f) => f.path).sort() }
}

/** What a consumer does with the package, the same from ESM and CommonJS (`load` differs). */
const probe = (load: string): string => `
  const out = {}
  const m = ${load}('${NAME}')
  const React = ${load}('react')
  const { renderToStaticMarkup } = ${load}('react-dom/server')
  out.exports = Object.keys(m).filter((k) => k !== 'default').sort()
  out.card = renderToStaticMarkup(React.createElement(m.RealtimeMetricsCard, { type: 'model', id: 'anthropic/claude-3.5-sonnet', pollingInterval: 5000, className: 'mine' }))
  out.board = renderToStaticMarkup(React.createElement(m.HealthLeaderboard, { order: 'asc', limit: 5, headingLevel: 2 }))
  out.ms = m.formatMs(3150, 'en-US')
  out.error = new m.MetricsError('no', 401, 'METRICS_UNAUTHORIZED') instanceof Error
  process.stdout.write(JSON.stringify(out))
`

/** A consumer of every export; the @ts-expect-error lines fail if a type resolved to any. */
const CONSUMER = `
import { createElement, type ReactElement } from 'react'
import {
  HealthLeaderboard, MetricsError, RealtimeMetricsCard, formatMs, useLeaderboard, useRealtimeMetrics,
  type HealthLeaderboardProps, type LeaderboardEntry, type LiveState, type RealtimeMetrics, type RealtimeMetricsCardProps
} from '${NAME}'

declare const token: string | undefined
const cardProps: RealtimeMetricsCardProps = { type: 'model', id: 'anthropic/claude-3.5-sonnet', pollingInterval: 5000, window: '1h', baseUrl: '', token }
const boardProps: HealthLeaderboardProps = { order: 'asc', limit: 5, minRequests: 10, window: '24h', token, className: 'board', headingLevel: 2 }
export const card: ReactElement = createElement(RealtimeMetricsCard, cardProps)
export const board: ReactElement = createElement(HealthLeaderboard, boardProps)

export function Widget (): ReactElement | null {
  const live: LiveState<RealtimeMetrics> = useRealtimeMetrics({ baseUrl: '', type: 'provider', id: 'anthropic', token, pollIntervalMs: 2000 })
  const top = useLeaderboard({ baseUrl: 'http://127.0.0.1:3000', order: 'desc', limit: 3 })
  const first: LeaderboardEntry | undefined = top.data?.entries[0]
  if (live.error instanceof MetricsError && live.error.status === 401) return null
  return createElement('p', null, formatMs(live.data?.ttft_ms.p50), first?.model)
}

// @ts-expect-error: the card needs an id
export const noId = createElement(RealtimeMetricsCard, { type: 'model' })
// @ts-expect-error: no such window
export const badWindow: HealthLeaderboardProps = { window: '2h' }
// @ts-expect-error: requests is a number: the API types resolved
export const notAny: string = ({} as RealtimeMetrics).requests
`

const JSX_CONSUMER = `
import { HealthLeaderboard, RealtimeMetricsCard } from '${NAME}'

export const page = (
  <main>
    <RealtimeMetricsCard type="model" id="anthropic/claude-3.5-sonnet" pollingInterval={5000} />
    <HealthLeaderboard order="asc" limit={5} window="24h" className="board" />
  </main>
)
// @ts-expect-error: pollingInterval is a number
export const wrong = <RealtimeMetricsCard id="x" pollingInterval="5s" />
`

interface Row { resolution: string, format: string, ok: boolean, resolved: string[], output: string }

t.test('the packed React package: ESM and CommonJS, React as a peer, typed under four resolutions', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'metrics-react-pack-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })
  const build = join(tmp, 'build')
  const packDir = join(tmp, 'pack')
  const app = join(tmp, 'consumer')
  for (const d of [build, packDir, app]) mkdirSync(d)
  // The build tools (tsup, TypeScript, React's types) as the repository has them.
  symlinkSync(join(ROOT, 'node_modules'), join(build, 'node_modules'), 'dir')
  for (const pkg of ['client', 'react']) {
    cpSync(join(ROOT, 'packages', pkg), join(build, pkg), { recursive: true, filter: (src) => !/[/\\](node_modules|dist)$/.test(src) })
  }
  // The React package's build reads the client types just built, not the repository's.
  mkdirSync(join(build, 'react/node_modules/@llm-gateway-metrics'), { recursive: true })
  symlinkSync(join(build, 'client'), join(build, 'react/node_modules/@llm-gateway-metrics/client'), 'dir')

  const client = await pack(join(build, 'client'), packDir)
  const react = await pack(join(build, 'react'), packDir)
  const parser = await pack(join(ROOT, 'node_modules/eventsource-parser'), packDir, ['--ignore-scripts'])
  const manifest = JSON.parse(readFileSync(join(ROOT, 'packages/react/package.json'), 'utf8')) as Record<string, unknown>
  const clientVersion = (JSON.parse(readFileSync(join(ROOT, 'packages/client/package.json'), 'utf8')) as { version: string }).version

  t.test('the tarball and its manifest', async (t) => {
    t.same(react.files.filter((f) => !/^dist\/index\.(js|cjs|d\.ts|d\.cts|js\.map|cjs\.map)$/.test(f)), ['README.md', 'package.json'], 'built output, the README and package.json only')
    const promised = [...targets(manifest.exports), manifest.main, manifest.module, manifest.types].map((p) => String(p).replace(/^\.\//, ''))
    t.same(promised.filter((p) => !react.files.includes(p)), [], 'every file exports, main, module and types name is in it')
    t.same(manifest.peerDependencies, { react: '>=18' }, 'React is a peer, and only React')
    t.same(manifest.dependencies, { '@llm-gateway-metrics/client': clientVersion, 'eventsource-parser': '^3.1.1' }, 'the client (for the API types) and the SSE parser')
    t.equal(manifest.sideEffects, false)
    t.same(manifest.engines, { node: '>=20' })
    const built = join(build, 'react/dist')
    for (const file of ['index.js', 'index.cjs']) {
      const code = readFileSync(join(built, file), 'utf8')
      t.ok(code.startsWith("'use client';\n"), `${file}: 'use client' first, for React Server Components`)
      t.match(code, file === 'index.js' ? /from "react"/ : /require\("react"\)/, `${file}: React imported, not bundled`)
      t.notMatch(code, /__SECRET_INTERNALS|react\.production/, `${file}: no copy of React`)
    }
  })

  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  // Offline, and peers left to the app: it has React already (linked below).
  const installed = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--legacy-peer-deps', client.tarball, react.tarball, parser.tarball], { ...opts, cwd: app })
  const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }
  const modules = join(app, 'node_modules')
  mkdirSync(join(modules, '@types'))
  for (const m of ['react', 'react-dom', '@types/react']) symlinkSync(join(ROOT, 'node_modules', m), join(modules, m), 'dir')

  t.test('installed offline: itself, the client and the parser', async (t) => {
    t.notMatch(installed.stdout + installed.stderr, /EBADENGINE|npm warn/i, 'no warning')
    t.same(Object.keys(lock.packages).filter((k) => k !== '').sort(), ['node_modules/@llm-gateway-metrics/client', 'node_modules/@llm-gateway-metrics/react', 'node_modules/eventsource-parser'])
    t.same(readdirSync(join(modules, '@llm-gateway-metrics')).sort(), ['client', 'react'])
    t.same(readdirSync(join(modules, '@llm-gateway-metrics/react')).filter((f) => f === 'node_modules'), [], 'no React of its own')
  })

  const esm = await run(process.execPath, ['--input-type=module', '-e', probe('await import')], { ...opts, cwd: app })
  writeFileSync(join(app, 'probe.cjs'), `(async () => {${probe('require')}})().catch((e) => { console.error(e); process.exit(1) })`)
  const cjs = await run(process.execPath, ['probe.cjs'], { ...opts, cwd: app })

  t.test('ESM and CommonJS, rendered by the app\'s React', async (t) => {
    const fromEsm = JSON.parse(esm.stdout) as Record<string, unknown>
    t.same(fromEsm.exports, ['HealthLeaderboard', 'MetricsError', 'NO_VALUE', 'RealtimeMetricsCard', 'formatCount', 'formatMs', 'formatPercent', 'formatScore', 'formatStatus', 'formatWindow', 'useLeaderboard', 'useRealtimeMetrics'])
    t.match(fromEsm.card, /^<section class="lgm-card lgm-card--loading mine" aria-labelledby="[^"]+" aria-busy="true"><h3 id="[^"]+" class="lgm-card__title">anthropic\/claude-3.5-sonnet<\/h3>.*Loading…/, 'the card, loading (effects run in the browser)')
    t.match(fromEsm.board, /^<section class="lgm-leaderboard lgm-leaderboard--loading".*<h2 [^>]*>Model health<\/h2>/)
    t.equal(fromEsm.ms, '3.15 s')
    t.equal(fromEsm.error, true)
    t.same(JSON.parse(cjs.stdout), fromEsm, 'require() gives the same as import')
  })

  // The consumer, type-checked with the repository's compiler: React's types linked, no @types/node.
  const matrix = [
    { resolution: 'node10', module: 'commonjs', format: 'CJS', files: ['consumer.ts'] },
    { resolution: 'node16', module: 'node16', format: 'ESM', files: ['consumer.mts'] },
    { resolution: 'node16', module: 'node16', format: 'CJS', files: ['consumer.cts'] },
    { resolution: 'nodenext', module: 'nodenext', format: 'ESM', files: ['consumer.mts'] },
    { resolution: 'nodenext', module: 'nodenext', format: 'CJS', files: ['consumer.cts'] },
    { resolution: 'bundler', module: 'esnext', format: 'ESM', files: ['consumer.ts', 'page.tsx'] }
  ]
  for (const file of ['consumer.ts', 'consumer.mts', 'consumer.cts']) writeFileSync(join(app, file), CONSUMER)
  writeFileSync(join(app, 'page.tsx'), JSX_CONSUMER)
  const rows: Row[] = []
  for (const m of matrix) {
    const config = `tsconfig.${m.resolution}.${m.format}.json`
    writeFileSync(join(app, config), JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        module: m.module,
        moduleResolution: m.resolution,
        jsx: 'react-jsx',
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
        types: [],
        // node10 is deprecated in TypeScript 6, still supported.
        ignoreDeprecations: '6.0'
      },
      files: m.files
    }))
    const r = await run(process.execPath, [TSC, '-p', config, '--traceResolution'], { ...opts, cwd: app }).then(
      (r) => ({ ok: true, out: r.stdout }),
      (err: { stdout?: string, stderr?: string }) => ({ ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` })
    )
    const resolved = [...r.out.matchAll(/Module name '(@llm-gateway-metrics\/[^']*)' was successfully resolved to '[^']*\/node_modules\/(@llm-gateway-metrics\/[^']+)'/g)]
      .map(([, name, to]) => `${name} → ${to}`)
    rows.push({ ...m, ok: r.ok, resolved: [...new Set(resolved)].sort(), output: r.out.split('\n').filter((l) => /error TS/.test(l)).join('\n') })
  }

  t.test('types under node10, node16, nodenext and bundler', async (t) => {
    for (const row of rows) {
      t.equal(row.output, '', `${row.resolution} ${row.format}: no type error`)
      t.ok(row.ok, `${row.resolution} ${row.format}: tsc exits 0`)
      const ext = row.format === 'CJS' ? 'd.cts' : 'd.ts'
      t.same(row.resolved, [
        `${NAME} → ${NAME}/dist/index.${ext}`,
        // The package's .d.ts takes the API types from the client, resolved as the consumer resolves.
        `@llm-gateway-metrics/client/api-types → @llm-gateway-metrics/client/dist/api-types.${ext}`
      ].sort(), `${row.resolution} ${row.format}: the package and the client's API types resolve to their .${ext}`)
    }
    t.comment('resolution | format | result | resolved')
    for (const row of rows) t.comment(`${row.resolution} | ${row.format} | ${row.ok ? 'ok' : 'FAIL'} | ${row.resolved.join(', ')}`)
  })
})
