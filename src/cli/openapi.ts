import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { buildSpec, specYaml } from '../openapi.js'

/** `npm run openapi`: regenerates openapi.yaml at the repository root from the live app. */
const target = fileURLToPath(new URL('../../openapi.yaml', import.meta.url))
writeFileSync(target, specYaml(await buildSpec()))
process.stdout.write(`wrote ${target}\n`)
