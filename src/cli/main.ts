#!/usr/bin/env node
import { describe, main } from './commands.js'

/** The operator's commands (`llm-gateway-metrics check|loadtest|inspect`, README.md). */
main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (e: unknown) => {
  process.stderr.write(describe(e) + '\n')
  process.exitCode = 1
})
