/**
 * @llm-gateway-metrics/client: record chat completions and model-list fetches for
 * llm-gateway-metrics. No runtime dependency.
 *
 *   import { createMetricsClient, createMetricsService } from '@llm-gateway-metrics/client'
 */
export * from './client.js'
export * from './service.js'
export { determineErrorType } from './errors.js'
export type { ChatErrorType } from './errors.js'
export { extractProvider } from './provider.js'
export type { components, paths } from './api-types.js'
