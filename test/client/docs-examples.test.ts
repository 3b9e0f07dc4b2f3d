/**
 * The TypeScript examples of the docs compile: every ```ts block of docs/integration.md,
 * docs/migration.md, the README's SDK section and the client package's README, each as a module of
 * its own, type-checked with the repository's compiler under strict and exactOptionalPropertyTypes
 * against the client package's sources. The names an example takes from the gateway's own code
 * (`app`, `model`, a provider's stream, …) are declared per document below, with the types a
 * gateway would have. Files go to a temporary folder.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')

/** The ```ts blocks of a markdown text, with the line each starts on. */
function blocks (markdown: string, firstLine = 1): Array<{ line: number, code: string }> {
  const out: Array<{ line: number, code: string }> = []
  for (const m of markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    out.push({ line: firstLine + markdown.slice(0, m.index).split('\n').length, code: m[1]! })
  }
  return out
}

/** A section of a markdown text, from its heading to the next heading of the same level. */
function section (markdown: string, heading: string): { text: string, line: number } {
  const start = markdown.indexOf(`\n${heading}\n`)
  if (start < 0) throw new Error(`no section ${heading}`)
  const end = markdown.indexOf('\n## ', start + heading.length + 2)
  return { text: markdown.slice(start, end < 0 ? undefined : end), line: markdown.slice(0, start).split('\n').length }
}

const CLIENT = "import('@llm-gateway-metrics/client')"

/** Names the gateway's code has in scope, per document. */
const GATEWAY = `
declare const metrics: ${CLIENT}.MetricsClient
declare const metricsService: ${CLIENT}.MetricsService
declare const model: string
declare const gateway: string
declare const write: (chunk: unknown) => void
`
const PRELUDES: Record<string, string> = {
  'docs/integration.md': `${GATEWAY}
interface Usage { prompt_tokens: number, completion_tokens: number }
interface Chunk { choices: Array<{ delta?: { content?: string } }>, usage?: Usage }
declare const provider: {
  chat: (body: unknown) => Promise<{ usage: Usage }>
  stream: (body: unknown) => AsyncIterable<Chunk>
  listModels: () => Promise<Array<{ id: string }>>
}
declare const app: {
  post: (path: string, handler: (req: { body: { model: string } }, res: { json: (body: unknown) => void }) => Promise<void>) => void
  setErrorHandler: (handler: (err: unknown, req: { body?: { model?: string }, startedAt: number }, reply: { send: (body: unknown) => void }) => void) => void
}
declare const log: { warn: (fields: object, message: string) => void }
declare const body: unknown
declare const started: number
declare const models: Array<{ id: string }>
declare const baseUrl: string
declare const base: string
declare const headers: Record<string, string>
declare const signal: AbortSignal
declare const render: (event: string | undefined, data: unknown) => void
declare const INGEST_TOKEN: string
declare const READ_TOKEN: string
`,
  'docs/migration.md': `${GATEWAY}
declare const provider: string
declare const total_time_ms: number
declare const ttft_ms: number
declare const error: unknown
declare const model_count: number
declare const response_time_ms: number
declare const providerStream: AsyncIterable<unknown>
`,
  'README.md': '',
  'packages/client/README.md': ''
}

t.test('the docs\' TypeScript examples compile (strict, exactOptionalPropertyTypes)', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'metrics-docs-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })
  // Third-party modules (ai, openapi-fetch, eventsource-parser, @types/node) as the repository has them.
  symlinkSync(join(ROOT, 'node_modules'), join(tmp, 'node_modules'), 'dir')

  const readme = section(read('README.md'), '## Gateway SDK')
  const docs: Array<{ doc: string, found: Array<{ line: number, code: string }> }> = [
    { doc: 'docs/integration.md', found: blocks(read('docs/integration.md')) },
    { doc: 'docs/migration.md', found: blocks(read('docs/migration.md')) },
    { doc: 'README.md', found: blocks(readme.text, readme.line) },
    { doc: 'packages/client/README.md', found: blocks(read('packages/client/README.md')) }
  ]
  t.ok(docs.every((d) => d.found.length > 0), `examples found: ${docs.map((d) => `${d.doc} ${d.found.length}`).join(', ')}`)

  const src = join(ROOT, 'packages/client/src')
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.NODE_OPTIONS
  const errors: string[] = []
  let count = 0
  // One program per document: each document's prelude declares its own globals.
  for (const [d, { doc, found }] of docs.entries()) {
    const prelude = `prelude-${d}.d.ts`
    writeFileSync(join(tmp, prelude), PRELUDES[doc]!)
    const files = found.map(({ code }, i) => {
      const file = `doc${d}-${i}.ts`
      // Each block a module of its own.
      writeFileSync(join(tmp, file), `${code}\nexport {}\n`)
      return file
    })
    count += files.length
    const config = `tsconfig-${d}.json`
    writeFileSync(join(tmp, config), JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        module: 'esnext',
        moduleResolution: 'bundler',
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: true,
        noEmit: true,
        types: ['node'],
        paths: { '@llm-gateway-metrics/client': [join(src, 'index.ts')], '@llm-gateway-metrics/client/*': [join(src, '*.ts')] }
      },
      files: [prelude, ...files]
    }))
    const out = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config], { cwd: tmp, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })
      .then((r) => r.stdout, (err: { stdout?: string }) => err.stdout ?? String(err))
    // "doc0-3.ts(4,7): error …" becomes "docs/integration.md:92:7 error …": the line in the document.
    for (const l of out.split('\n').filter((l) => l.includes('error TS'))) {
      errors.push(l.replace(/^doc\d+-(\d+)\.ts\((\d+),(\d+)\):/, (_m, i: string, line: string, col: string) => `${doc}:${found[Number(i)]!.line + Number(line)}:${col}`))
    }
  }
  t.same(errors, [], `${count} examples type-check`)
})
