import neostandard from 'neostandard'
import globals from 'globals'

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
  {
    // The dashboard's scripts run in the browser.
    files: ['public/**/*.js'],
    languageOptions: { globals: globals.browser }
  }
]
