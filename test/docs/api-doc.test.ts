/**
 * docs/api.md is the project's one reference of its HTTP contract: it names every route of
 * openapi.yaml, every field of both recorded events and every variable the service reads, and it is
 * what code and docs cite (never a bare `API.md`, which is not in the repository).
 */
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { EnvSchema } from '../../src/config.js'
import { ChatEventSchema, FetchEventSchema } from '../../src/schemas/ingest.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')
const doc = read('docs/api.md')
/** Names as the page writes them: in backticks, or as the path of a heading or table row. */
const mentions = (name: string): boolean => doc.includes(`\`${name}\``) || new RegExp(`(^|[\\s|\`])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([\\s|\`?]|$)`, 'm').test(doc)

t.test('every route path of openapi.yaml, with its methods', async (t) => {
  const spec = parse(read('openapi.yaml')) as { paths: Record<string, Record<string, unknown>> }
  const paths = Object.keys(spec.paths)
  t.ok(paths.length >= 14, `openapi.yaml lists ${paths.length} paths`)
  for (const path of paths) {
    t.ok(mentions(path), `${path} is documented`)
    for (const method of Object.keys(spec.paths[path]!).filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))) {
      t.ok(doc.includes(`${method.toUpperCase()} ${path}`), `${method.toUpperCase()} ${path} is named`)
    }
  }
})

t.test('every field of ChatEvent and GatewayFetchEvent', async (t) => {
  for (const schema of [ChatEventSchema, FetchEventSchema]) {
    const fields = Object.keys(schema.properties)
    t.ok(fields.length > 0)
    for (const field of fields) t.ok(doc.includes(`| \`${field}\` |`), `${String(schema.$id)}.${field} has a row`)
  }
})

t.test('every environment variable of the config schema', async (t) => {
  for (const name of Object.keys(EnvSchema.properties)) t.ok(doc.includes(`\`${name}\``), `${name} is documented`)
})

/** Text files under `dir`, without dependencies and build output. */
function files (dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (['node_modules', 'dist', '.git', 'tmp', 'results'].includes(name)) return []
    if (statSync(join(ROOT, path)).isDirectory()) return files(path)
    return /\.(ts|tsx|js|mjs|md|yml|yaml|json|html|css)$/.test(name) ? [path] : []
  })
}

t.test('nothing cites a bare API.md: the reference is docs/api.md', async (t) => {
  const checked = [...['src', 'test', 'docs', 'bench', 'public'].flatMap(files), 'README.md', 'openapi.yaml', 'Dockerfile', 'docker-compose.yml']
  const bare = /(^|[^/\w])API\.md/m
  const citing = checked.filter((path) => path !== join('test', 'docs', 'api-doc.test.ts') && bare.test(read(path)))
  t.same(citing, [], 'files citing API.md rather than docs/api.md')
  t.match(read('README.md'), /docs\/api\.md/, 'the README points at the reference')
})
