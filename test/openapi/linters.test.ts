/**
 * openapi.yaml as third-party tools read it: Redocly CLI (recommended ruleset) and Spectral
 * (spectral:oas) report no error. Warnings are allowed (each tool prints them in the test output).
 */
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const spec = join(root, 'openapi.yaml')
const bin = (name: string) => join(root, 'node_modules', '.bin', name)

/** Runs a linter; its exit code is not trusted alone, the JSON report is read. */
async function lint (file: string, args: string[]): Promise<{ stdout: string, stderr: string, code: number }> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd: root, timeout: 60_000, maxBuffer: 16 << 20, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } })
    return { stdout, stderr, code: 0 }
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string, code?: number | string }
    if (typeof e.code !== 'number') throw err
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code }
  }
}

t.test('Redocly CLI (recommended) reports no error', async (t) => {
  const { stdout, code } = await lint(bin('redocly'), ['lint', '--extends=recommended', '--format=json', spec])
  const report = JSON.parse(stdout) as { totals: { errors: number, warnings: number }, problems: Array<{ ruleId: string, severity: string, message: string, location: Array<{ pointer: string }> }> }
  const errors = report.problems.filter((p) => p.severity === 'error')
  t.same(errors.map((p) => `${p.ruleId} at ${p.location[0]?.pointer ?? '?'}: ${p.message}`), [], 'no error')
  t.equal(report.totals.errors, 0, 'totals: no error')
  t.equal(code, 0, 'exit code 0')
  for (const p of report.problems.filter((p) => p.severity !== 'error')) t.comment(`redocly ${p.severity}: ${p.ruleId} at ${p.location[0]?.pointer ?? '?'}`)
})

t.test('Spectral (spectral:oas) reports no error', async (t) => {
  const dir = t.testdir({ '.spectral.yaml': 'extends: ["spectral:oas"]\n' })
  const { stdout, stderr } = await lint(bin('spectral'), ['lint', '--ruleset', join(dir, '.spectral.yaml'), '--format', 'json', '--fail-severity', 'error', spec])
  const problems = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ code: string, severity: number, message: string, path: string[] }>
  // Spectral severities: 0 error, 1 warning, 2 information, 3 hint.
  t.same(problems.filter((p) => p.severity === 0).map((p) => `${p.code} at ${p.path.join('.')}: ${p.message}`), [], stderr || 'no error')
  for (const p of problems.filter((p) => p.severity !== 0)) t.comment(`spectral ${p.code} at ${p.path.join('.')}`)
})

t.test('a lint error fails the lint (the linters are really consulted)', async (t) => {
  const dir = t.testdir({ '.spectral.yaml': 'extends: ["spectral:oas"]\n' })
  const broken = join(dir, 'broken.yaml')
  writeFileSync(broken, 'openapi: 3.1.0\ninfo: {title: x, version: "1"}\npaths:\n  /a:\n    get:\n      responses:\n        "200": {description: ok}\n      parameters:\n        - {name: q, in: query, schema: {type: string}, required: "yes"}\n')
  const redocly = JSON.parse((await lint(bin('redocly'), ['lint', '--extends=recommended', '--format=json', broken])).stdout) as { totals: { errors: number } }
  t.ok(redocly.totals.errors > 0, 'redocly reports an error')
  const spectral = await lint(bin('spectral'), ['lint', '--ruleset', join(dir, '.spectral.yaml'), '--format', 'json', '--fail-severity', 'error', broken])
  const problems = JSON.parse(spectral.stdout.slice(spectral.stdout.indexOf('['))) as Array<{ severity: number }>
  t.ok(problems.some((p) => p.severity === 0), 'spectral reports an error')
})
