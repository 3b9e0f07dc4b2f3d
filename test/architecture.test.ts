import t from 'tap'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'

/**
 * The dependency direction of src/ (docs/design.md, "Architecture"), as eslint.config.js enforces
 * it: an import from a layer above is an error, one from the same layer or below is not. `npm run
 * lint` runs the same rule over the whole tree in CI.
 */
const eslint = new ESLint({ cwd: fileURLToPath(new URL('../', import.meta.url)) })

async function layerErrors (filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

const against: Array<[string, string]> = [
  ['src/metrics/x.ts', "import { MemoryStore } from '../store/memory-store.js'"],
  ['src/metrics/x.ts', "import { app } from '../app.js'"],
  ['src/schemas/x.ts', "import { readLeaderboard } from '../read/leaderboard.js'"],
  ['src/store/x.ts', "import { Flusher } from '../ingest/flusher.js'"],
  ['src/store/x.ts', "import { ChatEventSchema } from '../schemas/ingest.js'"],
  ['src/read/x.ts', "import { READ_MAX_WAIT_MS } from '../plugins/read-cache.js'"],
  ['src/stream/x.ts', "import { replyCached } from '../routes/cached-reply.js'"],
  ['src/observability/x.ts', "import { main } from '../cli/main.js'"],
  ['src/ingest/x.ts', "import { installShutdown } from '../shutdown.js'"],
  ['src/plugins/x.ts', "import routes from '../routes/leaderboard.js'"],
  ['src/routes/x.ts', "import { main } from '../cli/main.js'"],
  ['src/store/x.ts', "import { Sealer } from '../jobs/sealer.js'"],
  ['src/schemas/x.ts', "import { SharedRateLimit } from '../limits/shared-rate-limit.js'"],
  ['src/jobs/x.ts', "import { READ_MAX_WAIT_MS } from '../plugins/read-cache.js'"],
  ['src/limits/x.ts', "import { main } from '../cli/main.js'"]
]
const along: Array<[string, string]> = [
  ['src/read/x.ts', "import { percentile } from '../metrics/histogram.js'"],
  ['src/read/x.ts', "import { fetchAll } from '../store/fetch.js'"],
  ['src/stream/x.ts', "import { readLeaderboard } from '../read/leaderboard.js'"],
  ['src/plugins/x.ts', "import { Flusher } from '../ingest/flusher.js'"],
  ['src/routes/x.ts', "import plugin from '../plugins/read-cache.js'"],
  ['src/cli/x.ts', "import { app } from '../app.js'"],
  ['src/jobs/x.ts', "import { readIndex } from '../read/activity.js'"],
  ['src/plugins/x.ts', "import { Sealer } from '../jobs/sealer.js'"],
  ['src/plugins/x.ts', "import { SharedRateLimit } from '../limits/shared-rate-limit.js'"]
]

t.test('an import against the direction is an error', async (t) => {
  for (const [file, code] of against) t.equal((await layerErrors(file, `${code}\nexport const x = 1\n`)).length, 1, `${file}: ${code}`)
})

t.test('an import along it is not', async (t) => {
  for (const [file, code] of along) t.same(await layerErrors(file, `${code}\nexport const x = 1\n`), [], `${file}: ${code}`)
})

t.test('src/ has no import against it', async (t) => {
  const results = await eslint.lintFiles(['src'])
  const found = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${r.filePath}:${m.line}`))
  t.same(found, [])
})
