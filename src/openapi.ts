import { stringify } from 'yaml'
import { buildApp } from './app.js'
import { defaultConfig } from './config.js'
import { MemoryStore } from './store/memory-store.js'

/** The OpenAPI document of the app as the route schemas define it (the source of truth). */
export async function buildSpec (): Promise<Record<string, unknown>> {
  const store = new MemoryStore()
  const app = await buildApp({ config: defaultConfig(), store, logger: false })
  try {
    await app.ready()
    return JSON.parse(JSON.stringify(app.swagger())) as Record<string, unknown>
  } finally {
    await app.close()
    await store.close()
  }
}

export function specYaml (spec: Record<string, unknown>): string {
  return '# Generated from the route schemas by `npm run openapi`; a test fails when it drifts.\n' + stringify(spec, { lineWidth: 0 })
}
