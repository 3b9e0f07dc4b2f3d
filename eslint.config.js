import neostandard from 'neostandard'
import globals from 'globals'

/**
 * The layers of src/, lowest first (docs/design.md, "Architecture"). A module imports from its own
 * layer and the ones below it, never from one above: `metrics/` is pure figures; `schemas/` (the
 * HTTP shapes of those figures) and `store/` (the stored layout and the stores) stand side by side
 * on it, neither importing the other; the domain (`ingest/`, `read/`, `stream/`, `observability/`,
 * `jobs/`, `limits/`) does the work; `plugins/` make and wire its objects; `routes/` answer HTTP;
 * `cli/` and the entry files (app.ts, server.ts, …) assemble it all.
 */
const LAYERS = [
  { files: ['src/metrics/**'], above: ['schemas', 'store', 'ingest', 'read', 'stream', 'observability', 'jobs', 'limits', 'plugins', 'routes', 'cli'] },
  { files: ['src/schemas/**'], above: ['store', 'ingest', 'read', 'stream', 'observability', 'jobs', 'limits', 'plugins', 'routes', 'cli'] },
  { files: ['src/store/**'], above: ['schemas', 'ingest', 'read', 'stream', 'observability', 'jobs', 'limits', 'plugins', 'routes', 'cli'] },
  { files: ['src/ingest/**', 'src/read/**', 'src/stream/**', 'src/observability/**', 'src/jobs/**', 'src/limits/**'], above: ['plugins', 'routes', 'cli'] },
  { files: ['src/plugins/**'], above: ['routes', 'cli'] },
  { files: ['src/routes/**'], above: ['cli'] }
]
/** The files that assemble the service: nothing but cli/ and each other imports them. */
const ENTRIES = ['app', 'server', 'shutdown', 'openapi']

const layering = LAYERS.map(({ files, above }) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [
        { group: above.map((dir) => `../${dir}/*`), message: 'imports run one way: routes → plugins → domain → store or schemas → metrics (docs/design.md, "Architecture")' },
        { group: ENTRIES.map((name) => `../${name}.js`), message: 'only the entry files import the entry files' }
      ]
    }]
  }
}))

/**
 * neostandard: the style this code (and Fastify's) is written in, with its TypeScript rules. The
 * type checker runs in CI beside it (`npm run typecheck`, strict), so the lint stays syntactic.
 */
export default [
  // Built output, and the API types generated from openapi.yaml (`npm run openapi`).
  { ignores: ['dist/**', 'packages/*/dist/**', 'coverage/**', '.tap/**', 'tmp/**', 'bench/results/**', 'packages/client/src/api-types.ts'] },
  ...neostandard({ ts: true }),
  {
    // A promise left to run on its own is marked `void`: nothing awaits it, on purpose.
    rules: {
      'no-void': ['error', { allowAsStatement: true }],
      // Our loops that wait on a flag end when a timer or an event sets it, which this rule cannot see.
      'no-unmodified-loop-condition': 'off',
      // A variable a callback reads before its one assignment (a server's handler and the server) stays `let`.
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }]
    }
  },
  {
    files: ['src/**/*.ts'],
    rules: { '@stylistic/max-len': ['error', { code: 160, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true }] }
  },
  ...layering,
  {
    // The dashboard's scripts run in the browser.
    files: ['public/**/*.js'],
    languageOptions: { globals: globals.browser }
  }
]
