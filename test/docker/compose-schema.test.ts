/**
 * docker-compose.yml against the Compose Specification's own JSON schema (test/docker/compose-spec.json,
 * its commit in compose-spec.md): the whole file, and the project each profile makes of it, as
 * `docker compose --profile P` resolves it (services without profiles, plus those listing P).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject } from 'ajv'
import { parse } from 'yaml'

const ROOT = new URL('../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8')

interface Service { profiles?: string[], depends_on?: string[] | Record<string, unknown>, volumes?: Array<string | { type?: string, source?: string }>, [key: string]: unknown }
interface ComposeFile { services: Record<string, Service>, volumes?: Record<string, unknown>, [key: string]: unknown }

const spec = JSON.parse(read('test/docker/compose-spec.json')) as Record<string, unknown>
// The schema names its meta-schema by a URL ajv does not know ("https://…/draft-07/schema", no "#"); it
// is draft-07, which ajv's default class implements. Formats are only the schema's own annotations.
const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false, validateFormats: false })
const validate = ajv.compile(spec)

const describe = (errors: ErrorObject[] | null | undefined): string =>
  (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n')

const compose = parse(read('docker-compose.yml')) as ComposeFile
const profiles = [...new Set(Object.values(compose.services).flatMap((s) => s.profiles ?? []))].sort()

/** The file as compose runs it with these profiles active: the services they enable, nothing else. */
function resolve (active: string[]): ComposeFile {
  const services = Object.fromEntries(Object.entries(compose.services)
    .filter(([, s]) => s.profiles === undefined || s.profiles.some((p) => active.includes(p))))
  return { ...compose, services }
}

const dependencies = (s: Service): string[] => s.depends_on === undefined ? [] : Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on)
const namedVolumes = (s: Service): string[] => (s.volumes ?? []).flatMap((v) => {
  const source = typeof v === 'string' ? v.split(':')[0]! : (v.type === undefined || v.type === 'volume' ? v.source : undefined)
  return source !== undefined && source !== '' && !/^[./~]/.test(source) ? [source] : []
})

t.test('the vendored schema is the Compose Specification, draft-07, with its commit noted', async (t) => {
  t.equal(spec.title, 'Compose Specification')
  t.match(String(spec.$schema), /draft-07/)
  t.match(read('test/docker/compose-spec.md'), /compose-spec\/compose-spec[\s\S]*commit\s+`[0-9a-f]{40}`/, 'source and commit are noted beside it')
})

t.test('the schema is not vacuous: it refuses what compose refuses', async (t) => {
  const clone = (): ComposeFile => structuredClone(compose)
  const typo = clone()
  ;(typo.services.metrics as Record<string, unknown>).restart_polcy = 'always'
  t.notOk(validate(typo), 'an unknown service key')
  const badEnv = clone()
  badEnv.services.metrics!.environment = 'HOST=0.0.0.0'
  t.notOk(validate(badEnv), 'environment as a string rather than a list or a map')
  const badDepends = clone()
  badDepends.services.metrics!.depends_on = { redis: { condition: 'service_ready' } }
  t.notOk(validate(badDepends), 'a depends_on condition compose does not know')
  t.notOk(validate({ ...clone(), servics: {} }), 'an unknown top-level key')
})

t.test('docker-compose.yml is valid against the Compose Specification', async (t) => {
  t.ok(validate(compose), describe(validate.errors))
})

t.test('every profile: the services it runs are a valid project on their own', async (t) => {
  t.ok(profiles.length > 0, `profiles found: ${profiles.join(', ')}`)
  for (const active of [[], ...profiles.map((p) => [p]), profiles]) {
    const name = active.length === 0 ? 'no profile' : `--profile ${active.join(' --profile ')}`
    const project = resolve(active)
    t.ok(validate(project), `${name}: ${describe(validate.errors)}`)
    for (const [id, s] of Object.entries(project.services)) {
      for (const dep of dependencies(s)) t.ok(dep in project.services, `${name}: ${id} depends on ${dep}, which runs too`)
      for (const v of namedVolumes(s)) t.ok(compose.volumes !== undefined && v in compose.volumes, `${name}: ${id} mounts the declared volume ${v}`)
    }
  }
})

t.test('each profile enables services of its own', async (t) => {
  const base = Object.keys(resolve([]).services)
  for (const p of profiles) {
    const added = Object.keys(resolve([p]).services).filter((id) => !base.includes(id))
    t.ok(added.length > 0, `--profile ${p} adds ${added.join(', ')}`)
  }
})
