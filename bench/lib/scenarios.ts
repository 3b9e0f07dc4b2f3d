/** The bench's scenarios, shared by bench/run.ts and bench/profile.ts. */
import autocannon from 'autocannon'
import { modelName } from './seed.js'

export const TOKEN = 'bench-ingest-token-0123456789'

export interface Scenario {
  name: string
  server: 'ours' | 'ceiling' | 'naive'
  env?: Record<string, string>
  connections: number
  request: (url: string) => autocannon.Options
  eventsPerRequest?: number
}

const chatBody = (n: number): string => JSON.stringify(n === 1
  ? { model: 'openai/model-0', success: true, ttft_ms: 412.5, total_time_ms: 2980.1, input_tokens: 900, output_tokens: 310 }
  : Array.from({ length: n }, (_, i) => ({ model: modelName(i % 50), success: i % 17 !== 0, ...(i % 17 === 0 ? { error_type: 'timeout' } : {}), ttft_ms: 200 + (i * 37) % 900, total_time_ms: 2000 + (i * 91) % 3000, output_tokens: 100 + i })))
const post = (body: string, headers: Record<string, string> = {}) => (url: string): autocannon.Options => ({ url: `${url}/api/metrics/chat`, method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })
const get = (path: string) => (url: string): autocannon.Options => ({ url: url + path })

const COLD = { METRICS_CACHE_TTL_MS: '0' }
const NO_LIMIT = { METRICS_RATE_LIMIT_MAX: '0' }
export const scenarios: Scenario[] = [
  { name: 'ceiling: POST, same body schema', server: 'ceiling', connections: 50, request: post(chatBody(1)) },
  { name: 'ingest single event', server: 'ours', env: NO_LIMIT, connections: 50, request: post(chatBody(1)), eventsPerRequest: 1 },
  { name: 'naive: ingest single event', server: 'naive', connections: 50, request: post(chatBody(1)), eventsPerRequest: 1 },
  { name: 'ingest batch of 100', server: 'ours', env: NO_LIMIT, connections: 50, request: post(chatBody(100)), eventsPerRequest: 100 },
  { name: 'ingest single, token + rate limit', server: 'ours', env: { METRICS_INGEST_TOKEN: TOKEN, METRICS_RATE_LIMIT_MAX: '1000000000' }, connections: 50, request: post(chatBody(1), { authorization: `Bearer ${TOKEN}` }), eventsPerRequest: 1 },
  { name: 'ceiling: GET, same response size', server: 'ceiling', connections: 50, request: get('/api/metrics/realtime') },
  { name: 'realtime 1h, cache hot', server: 'ours', env: NO_LIMIT, connections: 50, request: get('/api/metrics/realtime?id=openai/model-0&window=1h') },
  { name: 'realtime 1h, cache off (c=10)', server: 'ours', env: { ...NO_LIMIT, ...COLD }, connections: 10, request: get('/api/metrics/realtime?id=openai/model-0&window=1h') },
  { name: 'naive: realtime 1h (c=10)', server: 'naive', connections: 10, request: get('/api/metrics/realtime?id=openai/model-0&window=1h') },
  { name: 'leaderboard 24h, 300 models, cache off (c=10)', server: 'ours', env: { ...NO_LIMIT, ...COLD }, connections: 10, request: get('/api/metrics/health/leaderboard?window=24h') },
  { name: 'leaderboard 24h limit=100, cache off (c=10)', server: 'ours', env: { ...NO_LIMIT, ...COLD }, connections: 10, request: get('/api/metrics/health/leaderboard?window=24h&limit=100') },
  { name: 'trends 24 h hourly, cache off (c=10)', server: 'ours', env: { ...NO_LIMIT, ...COLD }, connections: 10, request: get('/api/metrics/trends?model=openai/model-0&hours=24') }
]

/** Server entries, relative to bench/lib/procs.ts. */
export const ENTRY = { ours: '../../src/server.ts', ceiling: '../baselines/ceiling.ts', naive: '../baselines/naive.ts' }

export async function cannon (opts: autocannon.Options): Promise<autocannon.Result> {
  return await new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => { if (err !== null && err !== undefined) reject(err); else resolve(result) })
  })
}
