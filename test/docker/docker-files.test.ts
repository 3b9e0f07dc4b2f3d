/**
 * The Docker files, checked without a Docker engine: the Dockerfile is read as text and
 * docker-compose.yml parsed as YAML, and both are compared with what the app really reads and serves
 * (the config schema, the start script, the routes, the port).
 */
import t from 'tap'
import { graceMs } from '../../src/shutdown.js'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { ConfigError, EnvSchema, loadConfig } from '../../src/config.js'
import { build } from '../helpers/app.js'
import { freePort } from '../helpers/redis.js'

const run = promisify(execFile)
const ROOT = new URL('../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8')
const exists = (path: string): boolean => existsSync(new URL(path, ROOT))

const SCHEMA_KEYS = new Set(Object.keys(EnvSchema.properties))
const DEFAULT_PORT = EnvSchema.properties.PORT.default as number
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>, engines: { node: string } }

// ---- Dockerfile -------------------------------------------------------------------------------------

interface Instruction { op: string, args: string }
interface Stage { name: string | undefined, from: string, instructions: Instruction[] }

/** Instructions per stage: comments dropped, `\` continuations joined, keywords upper-cased. */
function parseDockerfile (text: string): Stage[] {
  const logical: string[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue
    const line = raw.trim()
    if (line.endsWith('\\')) { pending += line.slice(0, -1).trimEnd() + ' '; continue }
    pending += line
    if (pending !== '') logical.push(pending)
    pending = ''
  }
  const stages: Stage[] = []
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    const op = keyword.toUpperCase()
    if (op === 'FROM') {
      const [, from = '', name] = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? []
      stages.push({ from, name, instructions: [] })
    } else {
      const stage = stages.at(-1)
      if (stage === undefined) throw new Error(`${op} before FROM`)
      stage.instructions.push({ op, args })
    }
  }
  return stages
}

const stages = parseDockerfile(read('Dockerfile'))
const stageNamed = (name: string): Stage | undefined => stages.find((s) => s.name === name)

/** The stage and the stages it is built FROM, oldest first. */
function chain (stage: Stage): Stage[] {
  const parent = stageNamed(stage.from)
  return parent === undefined ? [stage] : [...chain(parent), stage]
}
const instructions = (stage: Stage, op: string): string[] => chain(stage).flatMap((s) => s.instructions.filter((i) => i.op === op).map((i) => i.args))
const baseImage = (stage: Stage): string => (chain(stage)[0] as Stage).from

function envOf (stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const args of instructions(stage, 'ENV')) {
    for (const [, key = '', quoted, bare] of args.matchAll(/(\w+)=(?:"([^"]*)"|(\S*))/g)) env[key] = quoted ?? bare ?? ''
  }
  return env
}

/** CMD / ENTRYPOINT in exec (JSON) form; undefined when absent, an error when in shell form. */
function execForm (stage: Stage, op: 'CMD' | 'ENTRYPOINT'): string[] | undefined {
  const last = instructions(stage, op).at(-1)
  if (last === undefined) return undefined
  const parsed = JSON.parse(last) as unknown
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`${op} is not in exec form: ${last}`)
  return parsed
}

/** The stage that a `COPY --from=X … <dest>` into this stage (dest relative to WORKDIR) comes from. */
function copiedFrom (stage: Stage, dest: string): Stage | undefined {
  const copy = stage.instructions.filter((i) => i.op === 'COPY').find((i) => i.args.split(' ').at(-1)?.replace(/^\.\//, '').replace(/\/$/, '') === dest)
  const from = /--from=(\S+)/.exec(copy?.args ?? '')?.[1]
  return from === undefined ? undefined : stageNamed(from)
}

const runs = (stage: Stage): string => instructions(stage, 'RUN').join('\n')
/** The `npm ci …` commands a stage (with its parents) runs. */
const npmCi = (stage: Stage | undefined): string[] => stage === undefined ? [] : [...runs(stage).matchAll(/\bnpm ci\b[^&;\n]*/g)].map((m) => m[0])
const runtime = stages.at(-1) as Stage

t.test('Dockerfile: the runtime stage (the default target)', async (t) => {
  t.equal(runtime.name, 'runtime', 'the last stage, built by default, is the runtime')
  const image = baseImage(runtime)
  t.match(image, /^node:20(\.\d+)*-(bookworm|bullseye|trixie)(-slim)?$/, 'official Debian-based Node 20 image')
  const major = Number(/^node:(\d+)/.exec(image)?.[1])
  t.ok(major >= Number(/>=\s*(\d+)/.exec(pkg.engines.node)?.[1]), `node ${major} satisfies engines ${pkg.engines.node}`)

  const env = envOf(runtime)
  t.equal(env.NODE_ENV, 'production', 'NODE_ENV=production')
  t.equal(env.HOST, '0.0.0.0', 'listens on every interface of the container')
  for (const key of Object.keys(env)) t.ok(SCHEMA_KEYS.has(key), `${key} is a variable of the config schema`)
  t.equal(Number(env.PORT ?? DEFAULT_PORT), DEFAULT_PORT, 'the port is the app default')
  t.same(instructions(runtime, 'EXPOSE').flatMap((e) => e.split(' ')).map((p) => Number(p.replace(/\/tcp$/, ''))), [DEFAULT_PORT], 'EXPOSE is the port the app listens on')

  const user = instructions(runtime, 'USER').at(-1)
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `runs as a non-root user (${String(user)})`)
})

t.test('Dockerfile: CMD is the start script, with node as PID 1', async (t) => {
  const start = pkg.scripts.start?.trim().split(/\s+/)
  t.same(execForm(runtime, 'CMD'), start, 'CMD runs exactly what `npm start` runs')
  t.equal(execForm(runtime, 'ENTRYPOINT'), undefined, 'no ENTRYPOINT wraps it')
  t.equal(start?.[0], 'node', 'node itself, so SIGTERM reaches the graceful close')
  const stop = instructions(runtime, 'STOPSIGNAL').at(-1)
  t.ok(stop === undefined || stop === 'SIGTERM', 'the stop signal is SIGTERM')

  // The script is compiled output: dist/x.js comes from src/x.ts (tsconfig.build.json), built in the
  // stage the runtime copies dist from, and runs on production dependencies only.
  const tsBuild = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string, outDir: string } }
  const entry = start?.[1] ?? ''
  const source = entry.replace(new RegExp(`^${tsBuild.compilerOptions.outDir}/`), `${tsBuild.compilerOptions.rootDir}/`).replace(/\.js$/, '.ts')
  t.ok(exists(source), `${entry} is compiled from ${source}`)
  t.match(pkg.scripts.build, /tsconfig\.build\.json/, 'npm run build compiles with tsconfig.build.json')
  // tsc writes only JavaScript: the store's Lua scripts, read beside the compiled module, are copied.
  t.ok(readdirSync(new URL('src/store/lua/', ROOT)).some((f) => f.endsWith('.lua')), 'the Lua scripts are in src/store/lua (the build stage copies src)')
  t.match(pkg.scripts.build, /cpSync\('src\/store\/lua','dist\/store\/lua'/, 'npm run build copies them to dist/store/lua, which the runtime copies with dist')
  const distFrom = copiedFrom(runtime, tsBuild.compilerOptions.outDir)
  t.ok(distFrom !== undefined && /\bnpm run build\b/.test(runs(distFrom)), 'dist comes from the stage that builds')
  const prod = npmCi(copiedFrom(runtime, 'node_modules'))
  t.ok(prod.length > 0 && prod.every((c) => /--omit=dev\b/.test(c)), 'node_modules holds production dependencies only')
  t.notMatch(runs(runtime), /\bnpm (ci|install)\b/, 'the runtime stage installs nothing itself')
  t.ok(runtime.instructions.some((i) => i.op === 'COPY' && /\bpackage\.json\b/.test(i.args)), 'package.json (type: module) is in the image')
})

t.test('Dockerfile: the workspaces are in place before npm ci; the runtime has the client the service imports', async (t) => {
  const manifests = readdirSync(new URL('packages/', ROOT)).map((d) => `packages/${d}/package.json`)
  const copiedSources = (is: Instruction[]): string[] => is.filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(' ').filter((a) => !a.startsWith('--')).slice(0, -1))
  const installing = stages.filter((s) => npmCi(s).length > 0)
  t.ok(installing.length >= 2, 'the build and the production dependencies run npm ci')
  for (const stage of installing) {
    const at = stage.instructions.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))
    const before = copiedSources(stage.instructions.slice(0, at))
    for (const m of manifests) t.ok(before.includes(m) || before.includes('packages'), `${String(stage.name)}: ${m} before npm ci, so that it links the workspace`)
  }
  const fromBuild = runtime.instructions.filter((i) => i.op === 'COPY' && i.args.includes('--from=build')).map((i) => i.args)
  t.ok(fromBuild.some((a) => /\/app\/packages\/client\/dist\s/.test(a)), 'the built client (dist/ingest imports @llm-gateway-metrics/client/provider)')
  t.ok(fromBuild.some((a) => /\/app\/packages\/client\/package\.json\s/.test(a)), 'its package.json (exports)')
  const bench = stageNamed('bench')
  t.ok(bench?.instructions.some((i) => i.op === 'COPY' && /--from=build\b.*\/app\/packages\s/.test(i.args)), 'the bench target has the built workspaces its node_modules link to')
})

t.test('Dockerfile: HEALTHCHECK asks the running app', async (t) => {
  const check = instructions(runtime, 'HEALTHCHECK').at(-1) ?? ''
  const [, options = '', command = ''] = /^((?:--\S+\s+)*)CMD\s+(.*)$/.exec(check) ?? []
  t.match(options, /--timeout=\d+s/, 'a timeout, so a hung process is marked unhealthy')
  const argv = JSON.parse(command) as string[]
  t.same(argv.slice(0, 2), ['node', '-e'], 'node itself: the slim image has no curl')
  const script = argv[2] ?? ''
  const path = /'(\/[^']*)'/.exec(script)?.[1]
  t.equal(path, '/healthz', 'liveness, not readiness: a Redis outage must not restart the containers')

  const { app } = await build(t)
  t.equal((await app.inject({ method: 'GET', url: path })).statusCode, 200, `GET ${String(path)} answers 200`)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  const probe = async (p: number): Promise<number> => {
    try {
      await run(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, PORT: String(p) }, timeout: 10_000 })
      return 0
    } catch (err) {
      return (err as { code?: number }).code ?? -1
    }
  }
  t.equal(await probe(port), 0, 'healthy while the app answers')
  t.not(await probe(await freePort()), 0, 'unhealthy when nothing listens')

  const failing = createServer((req, res) => { res.statusCode = 500; res.end() })
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { failing.close() })
  t.not(await probe((failing.address() as AddressInfo).port), 0, 'unhealthy when the app answers 5xx')
})

t.test('Dockerfile: the bench target runs the autocannon suite', async (t) => {
  const bench = stageNamed('bench')
  if (bench === undefined) return t.fail('no bench stage')
  t.match(runs(bench), /apt-get install[^\n]*\bredis-server\b/, "Debian's redis-server, which the suite starts itself")
  const command = [...execForm(bench, 'ENTRYPOINT') ?? [], ...execForm(bench, 'CMD') ?? []]
  t.same(command.slice(0, 3), ['npm', 'run', 'bench'], 'runs npm run bench')
  t.ok(pkg.scripts.bench !== undefined, 'package.json has the bench script')
  const dev = npmCi(copiedFrom(bench, 'node_modules'))
  t.ok(dev.length > 0 && dev.every((c) => !c.includes('--omit')), 'keeps the dev dependencies (tsx, autocannon)')
  for (const dir of ['src', 'bench', 'test/helpers']) t.ok(bench.instructions.some((i) => i.op === 'COPY' && i.args.split(' ').includes(dir)), `copies ${dir}`)
  const user = instructions(bench, 'USER').at(-1)
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), 'runs as a non-root user')
})

t.test('.dockerignore keeps secrets and host builds out, and what the Dockerfile copies in', async (t) => {
  const rules = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  for (const path of ['.env', 'node_modules', 'dist', '.git']) t.ok(rules.includes(path), `${path} is not sent to the build`)
  // Docker's rule: the last matching line wins; a pattern also excludes everything below it.
  const glob = (p: string): RegExp => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}(/.*)?$`)
  const ignored = (path: string): boolean => rules.reduce((out, rule) => rule.startsWith('!') ? (glob(rule.slice(1)).test(path) ? false : out) : (glob(rule).test(path) ? true : out), false)
  const sources = stages.flatMap((s) => s.instructions).filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
    .flatMap((i) => i.args.split(' ').filter((a) => !a.startsWith('--')).slice(0, -1))
  t.ok(sources.length > 0, 'the Dockerfile copies from the context')
  for (const source of sources) {
    t.ok(exists(source), `${source} exists`)
    t.notOk(ignored(source), `${source} is in the build context`)
  }
  t.ok(ignored('.env') && ignored('test/routes/health.test.ts') && !ignored('test/helpers/redis.ts'), 'the matcher reads the rules as Docker does')
})

// ---- docker-compose.yml -----------------------------------------------------------------------------

interface Service {
  image?: string
  build?: { context?: string, target?: string }
  profiles?: string[]
  command?: string | string[]
  entrypoint?: string | string[]
  environment?: Record<string, string | number | boolean | null> | string[]
  env_file?: string | Array<string | { path: string }>
  ports?: Array<string | { target: number, published?: number | string }>
  depends_on?: string[] | Record<string, { condition?: string }>
  healthcheck?: { test?: string | string[] }
  volumes?: Array<string | { source?: string, target: string }>
  stop_grace_period?: string
  init?: boolean
}

const composeText = read('docker-compose.yml')
const compose = parse(composeText) as { services: Record<string, Service>, volumes?: Record<string, unknown> }
const services = compose.services

function environment (s: Service): Record<string, string> {
  const e = s.environment ?? {}
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.split('=')[0] as string, kv.slice(kv.indexOf('=') + 1)]))
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]))
}
const envFiles = (s: Service): string[] => [s.env_file ?? []].flat().map((f) => typeof f === 'string' ? f : f.path)
const dependsOn = (s: Service): Record<string, string> => Array.isArray(s.depends_on)
  ? Object.fromEntries(s.depends_on.map((d) => [d, 'service_started']))
  : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, v]) => [d, v.condition ?? 'service_started']))
const words = (c: string | string[] | undefined): string[] => Array.isArray(c) ? c.map(String) : (c ?? '').split(/\s+/).filter((w) => w !== '')
/** The value after `--flag` in a redis-server command line. */
const flag = (s: Service, name: string): string | undefined => { const w = words(s.command); const i = w.indexOf(`--${name}`); return i < 0 ? undefined : w[i + 1] }
const redisPort = (s: Service): number => Number(flag(s, 'port') ?? 6379)
function ports (s: Service): Array<{ published: number | undefined, target: number }> {
  return (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { target: p.target, published: p.published === undefined ? undefined : Number(p.published) }
    const parts = p.replace(/\/(tcp|udp)$/, '').split(':')
    return { target: Number(parts.at(-1)), published: parts.length > 1 ? Number(parts.at(-2)) : undefined }
  })
}
function parseDuration (d: string | undefined): number {
  let ms = 0
  for (const [, n, unit] of (d ?? '').matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms']
  return ms
}
/** KEY=VALUE lines of an env file, comments and blank lines skipped. */
const dotenv = (text: string): Record<string, string> => Object.fromEntries(text.split('\n').map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))

const appServices = Object.entries(services).filter(([, s]) => s.build?.target === 'runtime')
/** The services running redis-server (not the one-shot redis-cli of the cluster init). */
const redisServices = Object.entries(services).filter(([, s]) => words(s.command)[0] === 'redis-server')
const example = dotenv(read('.env.example'))
const filledExample = Object.fromEntries(Object.keys(example).map((k) => [k, `${k.toLowerCase()}-0123456789abcdef`]))

t.test('docker-compose.yml: build targets exist in the Dockerfile, commands are well-formed', async (t) => {
  const built = Object.entries(services).filter(([, s]) => s.build !== undefined)
  t.ok(built.length >= 2, 'services built from the Dockerfile')
  for (const [name, s] of built) {
    t.equal(s.build?.context ?? '.', '.', `${name} builds from the repository root`)
    t.ok(s.build?.target !== undefined && stageNamed(s.build.target) !== undefined, `${name}: target ${String(s.build?.target)} is a Dockerfile stage`)
  }
  // Compose takes command and entrypoint lists of strings only (an unquoted 5000 would be a number).
  for (const [name, s] of Object.entries(services)) {
    for (const list of [s.command, s.entrypoint]) {
      if (Array.isArray(list)) t.ok(list.every((w) => typeof w === 'string'), `${name}: command words are strings`)
    }
  }
})

t.test('docker-compose.yml: the service instances', async (t) => {
  t.ok(appServices.length >= 2, 'one instance by default and one in the cluster profile')
  t.match(read('src/server.ts'), /closeWithGrace\(\{ delay: graceMs\(config\.shutdownDelayMs\) \}/, 'src/server.ts sets the graceful-close deadline from the configuration')
  for (const [name, s] of appServices) {
    const env = environment(s)
    for (const key of Object.keys(env)) t.ok(SCHEMA_KEYS.has(key), `${name}: ${key} is a variable of the config schema`)
    t.equal(env.HOST, '0.0.0.0', `${name}: HOST=0.0.0.0`)
    t.ok(envFiles(s).includes('.env'), `${name}: tokens come from .env`)
    const port = Number(env.PORT ?? DEFAULT_PORT)
    t.equal(port, DEFAULT_PORT, `${name}: the app's port`)
    t.same(ports(s).map((p) => p.target), [port], `${name}: the published port targets the port the app listens on`)
    // What the process sees in the container: the image's ENV, the env file, then `environment`.
    const config = loadConfig({ ...envOf(runtime), ...filledExample, ...env })
    const shutdownDelay = graceMs(config.shutdownDelayMs)
    t.ok(parseDuration(s.stop_grace_period) > shutdownDelay, `${name}: docker waits longer than the graceful close (${shutdownDelay} ms) before SIGKILL`)
    t.match(config, { host: '0.0.0.0', port: DEFAULT_PORT, ingestTokens: [filledExample.METRICS_INGEST_TOKEN] }, `${name}: the container environment is a valid configuration`)
  }
  const metrics = services.metrics
  if (metrics === undefined) return t.fail('no metrics service')
  t.same(metrics.profiles, undefined, 'the default instance runs without a profile')
  t.same(ports(metrics), [{ published: DEFAULT_PORT, target: DEFAULT_PORT }], 'served on the host at the documented port')
})

t.test('docker-compose.yml: the default instance uses the Redis service once it is healthy', async (t) => {
  const metrics = services.metrics as Service
  const url = new URL(environment(metrics).REDIS_URL ?? '')
  t.equal(url.protocol, 'redis:', 'a redis:// URL')
  const redis = services[url.hostname]
  if (redis === undefined) return t.fail(`REDIS_URL names no service (${url.hostname})`)
  t.equal(Number(url.port || 6379), redisPort(redis), 'on the port Redis listens on')
  t.equal(dependsOn(metrics)[url.hostname], 'service_healthy', 'starts once Redis answers its healthcheck')
  t.match(redis.image, /^redis:7(\.|-|$)/, 'Redis 7')
  t.equal(flag(redis, 'appendonly'), 'yes', 'AOF persistence')
  t.equal(flag(redis, 'appendfsync') ?? 'everysec', 'everysec', 'fsynced every second')
  t.equal(flag(redis, 'maxmemory-policy'), 'noeviction', 'a full Redis refuses writes rather than evicting metrics keys')
  const data = (redis.volumes ?? []).map((v) => typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v).find((v) => v.target === '/data')
  t.ok(data?.source !== undefined && compose.volumes !== undefined && data.source in compose.volumes, 'the AOF lives on a named volume')
})

t.test('docker-compose.yml: every Redis has a healthcheck and no eviction of metrics keys', async (t) => {
  t.ok(redisServices.length >= 4, 'one Redis and three cluster nodes')
  for (const [name, s] of redisServices) {
    t.match(words(s.healthcheck?.test).join(' '), /redis-cli.* ping$/, `${name}: healthcheck is redis-cli ping`)
    // allkeys-* would evict live counters (every key has a TTL, so volatile-* only trims the oldest).
    t.match(flag(s, 'maxmemory-policy'), /^(noeviction|volatile-(lru|lfu|ttl|random))$/, `${name}: eviction policy`)
  }
  t.notMatch(composeText, /allkeys-/, 'allkeys-* appears nowhere')
})

t.test('docker-compose.yml: the cluster profile', async (t) => {
  const nodes = redisServices.filter(([, s]) => flag(s, 'cluster-enabled') === 'yes')
  t.equal(nodes.length, 3, 'three cluster nodes')
  for (const [name, s] of nodes) {
    t.same(s.profiles, ['cluster'], `${name} only in the cluster profile`)
    t.match(s.image, /^redis:7(\.|-|$)/, `${name}: Redis 7`)
  }
  const nodeNames = nodes.map(([n]) => n)

  const init = Object.entries(services).find(([, s]) => words(s.command).join(' ').includes('--cluster create'))
  if (init === undefined) return t.fail('no cluster init service')
  const [initName, initService] = init
  const script = words(initService.command).join(' ')
  t.same(initService.profiles, ['cluster'], `${initName} only in the cluster profile`)
  t.match(script, /--cluster-replicas 0/, 'three masters, no replicas')
  t.match(script, /--cluster-yes/, 'no prompt')
  for (const n of nodeNames) {
    t.ok(script.includes(n), `the init joins ${n}`)
    t.equal(dependsOn(initService)[n], 'service_healthy', `the init waits for ${n}`)
  }

  const instance = appServices.find(([, s]) => s.profiles?.includes('cluster'))
  if (instance === undefined) return t.fail('no service instance in the cluster profile')
  const [name, s] = instance
  t.same(s.profiles, ['cluster'], `${name} only in the cluster profile`)
  t.equal(dependsOn(s)[initName], 'service_completed_successfully', `${name} starts once the cluster is created`)
  const env = environment(s)
  // The variable must be in the config schema: checked with the others in "the service instances".
  t.ok(SCHEMA_KEYS.has('REDIS_CLUSTER_NODES'), 'REDIS_CLUSTER_NODES is a variable of the config schema')
  t.equal(env.REDIS_URL, undefined, 'no single-node URL beside the cluster')
  const listed = (env.REDIS_CLUSTER_NODES ?? '').split(',').map((hp) => { const [host = '', port] = hp.trim().split(':'); return { host, port: Number(port) } })
  t.same(listed.map((n) => n.host).sort(), [...nodeNames].sort(), 'REDIS_CLUSTER_NODES names every node')
  for (const n of listed) {
    const node = services[n.host]
    t.ok(node !== undefined && n.port === redisPort(node), `${n.host} is a node, on the port it listens on`)
  }
  t.not(ports(s)[0]?.published, ports(services.metrics as Service)[0]?.published, 'beside the default instance without a port clash')
})

t.test('docker-compose.yml: the bench profile', async (t) => {
  const bench = Object.entries(services).filter(([, s]) => s.build?.target === 'bench')
  t.equal(bench.length, 1, 'one bench service')
  const [, s] = bench[0] as [string, Service]
  t.same(s.profiles, ['bench'], 'only in the bench profile')
  t.equal(s.init, true, 'an init process reaps the servers the suite forks')
  t.ok((s.volumes ?? []).some((v) => typeof v === 'string' && v.endsWith(':/app/bench/results')), 'results land in bench/results on the host')
})

t.test('docker-compose.yml: no variable interpolation (shell $ is escaped as $$)', async (t) => {
  t.notMatch(composeText.replaceAll('$$', ''), /\$/, 'every $ is doubled, so compose passes it to the shell')
  t.ok(composeText.includes('$$'), 'the cluster init script uses shell variables')
})

t.test('.env.example lists the tokens, and an unedited copy does not start', async (t) => {
  t.ok('METRICS_INGEST_TOKEN' in example && 'METRICS_READ_TOKEN' in example, 'both tokens are listed')
  for (const key of Object.keys(example)) t.ok(SCHEMA_KEYS.has(key), `${key} is a variable of the config schema`)
  const env = { ...envOf(runtime), ...example, ...environment(services.metrics as Service) }
  const err = t.throws(() => loadConfig(env), ConfigError) as Error
  t.match(err.message, /^invalid METRICS_INGEST_TOKEN: /, 'the placeholder is refused, naming the variable')
  t.notMatch(err.message, new RegExp(example.METRICS_INGEST_TOKEN ?? '-'), 'without echoing it')
  t.ok(read('.gitignore').split('\n').map((l) => l.trim()).includes('.env'), '.env is never committed')
})
