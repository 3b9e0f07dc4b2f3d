/**
 * The React examples of the docs compile: every ```tsx block of the README, docs/integration.md and
 * the React package's README, each as a module of its own, type-checked with the repository's
 * compiler (strict, exactOptionalPropertyTypes, JSX) against the package's sources. Files go to a
 * temporary folder.
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

/** The ```tsx blocks of a markdown file, with the line each starts on. */
function blocks (doc: string): Array<{ doc: string, line: number, code: string }> {
  const text = readFileSync(join(ROOT, doc), 'utf8')
  return [...text.matchAll(/^```tsx\n([\s\S]*?)^```$/gm)].map((m) => ({ doc, line: text.slice(0, m.index).split('\n').length + 1, code: m[1]! }))
}

/** What an example takes from the app's own code. */
const PRELUDE = `
declare const READ_TOKEN: string
declare const model: string
`

t.test('the docs\' React examples compile (strict, exactOptionalPropertyTypes, JSX)', async (t) => {
  const found = ['README.md', 'docs/integration.md', 'packages/react/README.md'].flatMap(blocks)
  t.same([...new Set(found.map((b) => b.doc))], ['README.md', 'docs/integration.md', 'packages/react/README.md'], `examples found: ${found.length}`)
  t.ok(found.every((b) => b.code.includes('@llm-gateway-metrics/react')), 'each imports the package')

  const tmp = mkdtempSync(join(tmpdir(), 'metrics-react-docs-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })
  // React's types and eventsource-parser as the repository has them.
  symlinkSync(join(ROOT, 'node_modules'), join(tmp, 'node_modules'), 'dir')
  writeFileSync(join(tmp, 'prelude.d.ts'), PRELUDE)
  const files = found.map(({ code }, i) => {
    writeFileSync(join(tmp, `example${i}.tsx`), `${code}\nexport {}\n`)
    return `example${i}.tsx`
  })
  writeFileSync(join(tmp, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      module: 'esnext',
      moduleResolution: 'bundler',
      jsx: 'react-jsx',
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      noEmit: true,
      types: [],
      paths: {
        '@llm-gateway-metrics/react': [join(ROOT, 'packages/react/src/index.ts')],
        '@llm-gateway-metrics/client/*': [join(ROOT, 'packages/client/src/*.ts')]
      }
    },
    files: ['prelude.d.ts', ...files]
  }))
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.NODE_OPTIONS
  const out = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: tmp, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })
    .then((r) => r.stdout, (err: { stdout?: string }) => err.stdout ?? String(err))
  // "example2.tsx(4,7): error …" becomes "docs/integration.md:410:7 error …": the line in the document.
  const errors = out.split('\n').filter((l) => l.includes('error TS')).map((l) => l.replace(/^example(\d+)\.tsx\((\d+),(\d+)\):/, (_m, i: string, line: string, col: string) => {
    const b = found[Number(i)]!
    return `${b.doc}:${b.line + Number(line) - 1}:${col}`
  }))
  t.same(errors, [], `${files.length} examples, no error`)
})
