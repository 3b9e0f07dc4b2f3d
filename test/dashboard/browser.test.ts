/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against the service
 * on a real Redis, seeded with events: the leaderboard order, a model card's figures, the trend
 * chart, a new event arriving through the stream, the read token. Leaves a screenshot in
 * test/.output/dashboard.png.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { listenApp } from '../helpers/live.js'
import { bucketName } from '../../src/metrics/buckets.js'
import { MAX_SUM } from '../../src/store/types.js'
import { startRedis } from '../helpers/redis.js'

const CHROMIUM = '/usr/bin/chromium'
const OUTPUT = fileURLToPath(new URL('../.output/', import.meta.url))
const READ = 'dashboard-read-token-0123456789'
const HOUR = 3_600_000

/** health_score as docs/api.md defines it: 100 × the Wilson lower bound (z = 1.96), 2 decimals. */
function wilson (ok: number, n: number): number {
  const z = 1.96
  const p = ok / n
  const centre = p + (z * z) / (2 * n)
  const margin = z * Math.sqrt((p * (1 - p) + (z * z) / (4 * n)) / n)
  return Math.round((10_000 * (centre - margin)) / (1 + (z * z) / n)) / 100
}

/** The nearest-rank percentile: the sample of rank ceil(p/100 × n). */
function nearestRank (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.ceil((p / 100) * sorted.length) - 1]!
}

/** The number a cell shows ("1,234 ms", "75.0 %"). */
const shown = (text: string): number => Number(text.replace(/[^0-9.]/g, ''))

interface Model { id: string, ok: number, n: number, errors: Array<'timeout' | 'rate_limit' | 'network'> }

const ERRORS: Model['errors'] = ['timeout', 'timeout', 'timeout', 'timeout', 'timeout', 'rate_limit', 'rate_limit', 'rate_limit', 'network', 'network']
const MODELS: Model[] = [
  { id: 'acme/steady', ok: 40, n: 40, errors: [] },
  { id: 'acme/flaky', ok: 30, n: 40, errors: ERRORS },
  { id: 'beta/new', ok: 3, n: 3, errors: [] },
  { id: 'beta/broken', ok: 5, n: 20, errors: Array.from({ length: 15 }, () => 'timeout' as const) }
]

t.test('the dashboard in chromium against Redis', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing, and CI=true: the browser test must run in CI (.ci/run installs chromium)`)
    t.comment(`SKIP: ${CHROMIUM} is not installed (apt-get install chromium; under CI=true this fails)`)
    return
  }
  const redis = await startRedis(t)
  if (redis === null) return
  const { base, post, app } = await listenApp(t, {
    config: { redis: { url: redis.url }, readTokens: [READ], stream: { intervalMs: 250, heartbeatMs: 15_000, maxSubscribers: 50 } }
  })

  // Seed: the last minute for the leaderboard; two earlier hours of acme/flaky for its trend.
  const now = Date.now()
  const flakyTtft: number[] = []
  const flakyTotal: number[] = []
  const flakyTps: number[] = []
  const events: unknown[] = []
  for (const m of MODELS) {
    for (let i = 0; i < m.n; i++) {
      const ttft = 100 + 10 * i
      const total = ttft + 1000 + 20 * i
      const success = i < m.ok
      if (m.id === 'acme/flaky') {
        flakyTtft.push(ttft)
        flakyTotal.push(total)
        flakyTps.push(200 / ((total - ttft) / 1000))
      }
      events.push({
        model: m.id,
        gateway: i % 2 === 0 ? 'gw-a' : 'gw-b',
        success,
        ...(success ? {} : { error_type: m.errors[i - m.ok] }),
        ttft_ms: ttft,
        total_time_ms: total,
        output_tokens: 200,
        timestamp: now - 1000
      })
    }
  }
  const older = [2, 4].flatMap((h) => Array.from({ length: 5 }, () => ({ model: 'acme/flaky', success: true, ttft_ms: 900 + 100 * h, timestamp: now - h * HOUR })))
  await post('/api/metrics/chat', [...events, ...older])
  await post('/api/metrics/gateway/fetch', [
    { gateway: 'gw-a', status: 'success', model_count: 150, response_time_ms: 120 },
    { gateway: 'gw-a', status: 'success', model_count: 151, response_time_ms: 140 },
    { gateway: 'gw-b', status: 'error', error_type: 'timeout', response_time_ms: 5000 }
  ])

  mkdirSync(OUTPUT, { recursive: true })
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
  t.teardown(async () => { await browser.close() })
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } })
  const page: Page = await context.newPage()
  page.setDefaultTimeout(10_000)
  const problems: string[] = []
  const elsewhere: string[] = []
  page.on('pageerror', (e) => { problems.push(`page error: ${e.message}`) })
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`) })
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) elsewhere.push(r.url()) })

  await t.test('the token from the URL fragment is kept in the session and leaves the URL', async (t) => {
    await page.goto(`${base}/#token=${READ}`)
    await page.waitForSelector('#status[data-state="live"]')
    t.equal(new URL(page.url()).hash, '', 'the fragment is gone from the address')
    t.equal(await page.evaluate(() => sessionStorage.getItem('llm-gateway-metrics.read-token')), READ)
  })

  const expectedOrder = [...MODELS].sort((a, b) => wilson(b.ok, b.n) - wilson(a.ok, a.n)).map((m) => m.id)
  await t.test('the leaderboard shows the seeded models, healthiest first', async (t) => {
    await page.waitForFunction((n) => document.querySelectorAll('#leaderboard tbody tr[data-model]').length === n, MODELS.length)
    const rows = await page.$$eval('#leaderboard tbody tr[data-model]', (trs) => trs.map((tr) => ({
      model: tr.getAttribute('data-model'),
      health: tr.querySelector('[data-k="health_score"]')!.textContent,
      requests: tr.querySelector('[data-k="requests"]')!.textContent,
      success: tr.querySelector('[data-k="success_rate"]')!.textContent
    })))
    t.same(rows.map((r) => r.model), expectedOrder, `order by health score: ${expectedOrder.join(', ')}`)
    for (const r of rows) {
      const m = MODELS.find((x) => x.id === r.model)!
      t.equal(r.health, wilson(m.ok, m.n).toFixed(1), `${m.id}: health score`)
      t.equal(shown(r.requests!), m.n, `${m.id}: requests`)
      t.equal(r.success, `${((100 * m.ok) / m.n).toFixed(1)} %`, `${m.id}: success rate`)
    }
    t.equal(await page.locator('#leaderboard tbody tr[data-model] svg.spark').count(), MODELS.length, 'a sparkline per row')
    const api = await (await fetch(`${base}/api/metrics/health/leaderboard?window=1h&limit=100`, { headers: { authorization: `Bearer ${READ}` } })).json() as { entries: Array<{ model: string, status: string }> }
    const badges = await page.$$eval('#leaderboard tbody tr[data-model]', (trs) => trs.map((tr) => [tr.getAttribute('data-model'), tr.querySelector('[data-k="status"]')!.textContent]))
    t.same(badges, api.entries.map((e) => [e.model, e.status]), 'each row shows the health state the API answers')
  })

  await t.test('clicking a row opens its card with its figures and its TTFT trend', async (t) => {
    await page.click('#leaderboard tbody tr[data-model="acme/flaky"]')
    await page.waitForFunction(() => document.querySelector('#card [data-k="requests"]')?.textContent === '40')
    const card = Object.fromEntries(await page.$$eval('#card [data-k]', (els) => els.map((e) => [e.getAttribute('data-k'), e.textContent])))
    t.equal(await page.textContent('#card-title'), 'acme/flaky')
    t.equal(card.success_rate, '75.0 %')
    t.equal(card.failures, '10')
    t.same([card.errors_timeout, card.errors_rate_limit, card.errors_network, card.errors_other], ['5', '3', '2', '0'], 'errors by type')
    t.equal(card.health_score, wilson(30, 40).toFixed(1))
    const close = (key: string, expected: number) => {
      const v = shown(card[key]!)
      t.ok(Math.abs(v - expected) <= expected * 0.02 + 0.5, `${key}: ${card[key]} is the nearest-rank ${expected.toFixed(1)} within 2 %`)
    }
    for (const p of [50, 95, 99]) {
      close(`ttft_p${p}`, nearestRank(flakyTtft, p))
      close(`total_p${p}`, nearestRank(flakyTotal, p))
      close(`tps_p${p}`, nearestRank(flakyTps, p))
    }

    await page.waitForSelector('#ttft-chart canvas')
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#ttft-chart')?.dataset.points === '3')
    const size = await page.$eval('#ttft-chart canvas', (c) => ({ w: (c as HTMLCanvasElement).width, h: (c as HTMLCanvasElement).height }))
    t.ok(size.w > 200 && size.h > 100, `the chart is drawn on a ${size.w}×${size.h} canvas`)
    t.equal(await page.$eval('#ttft-chart', (e) => (e as HTMLElement).dataset.points), '3', 'three hours with samples: 4 h ago, 2 h ago, this hour')
    t.equal(await page.locator('#ttft-chart .u-legend').count(), 1, 'a uPlot chart with its legend')
  })

  await t.test('providers and the gateways\' model-list fetches', async (t) => {
    const providers = await page.$$eval('#providers tbody tr[data-provider]', (trs) => trs.map((tr) => [tr.getAttribute('data-provider'), tr.querySelector('[data-k="requests"]')!.textContent]))
    t.same(providers, [['acme', '80'], ['beta', '23']], 'by requests, over the last hour only')
    const gateways = await page.$$eval('#gateways tbody tr[data-gateway]', (trs) => trs.map((tr) => [tr.getAttribute('data-gateway'), tr.querySelector('[data-k="fetch_health"]')!.textContent]))
    t.same(gateways, [['gw-a', 'all succeeded'], ['gw-b', '100 % failed']])
  })

  await t.test('a new event shows up through the stream, without a reload', async (t) => {
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 1 })
    await post('/api/metrics/chat', Array.from({ length: 5 }, () => ({ model: 'beta/new', success: true, ttft_ms: 150 })))
    await page.waitForFunction(() => document.querySelector('#leaderboard tr[data-model="beta/new"] [data-k="requests"]')?.textContent === '8')
    t.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 1, 'the same page')
    await page.screenshot({ path: `${OUTPUT}dashboard.png`, fullPage: true })
  })

  await t.test('the least healthy first', async (t) => {
    await page.click('#order-select button[data-order="asc"]')
    await page.waitForFunction(() => document.querySelector('#leaderboard tbody tr[data-model]')?.getAttribute('data-model') === 'beta/broken')
    t.pass('beta/broken leads')
  })

  t.same(problems, [], 'no page error, no console error or warning (nothing blocked by the content security policy)')
  t.same(elsewhere, [], 'every request went to the service itself')

  await t.test('without a token the page asks for one, once, and keeps it for the tab', async (t) => {
    const fresh = await browser.newContext()
    const p = await fresh.newPage()
    p.setDefaultTimeout(10_000)
    await p.goto(`${base}/`)
    await p.waitForSelector('#token-dialog[open]')
    t.equal(await p.getAttribute('#status', 'data-state'), 'unauthorized')
    await p.fill('#token-input', 'not-the-read-token-xxxxxxx')
    await p.click('#token-dialog button[type="submit"]')
    await p.waitForSelector('#token-error:not([hidden])')
    t.pass('a wrong token is refused and said so')
    await p.fill('#token-input', READ)
    await p.click('#token-dialog button[type="submit"]')
    await p.waitForSelector('#status[data-state="live"]')
    await p.waitForSelector('#leaderboard tbody tr[data-model]')
    await p.reload()
    await p.waitForSelector('#leaderboard tbody tr[data-model]')
    t.equal(await p.locator('#token-dialog[open]').count(), 0, 'not asked again after a reload')
    await fresh.close()
  })

  await t.test('a degraded service says so in the banner', async (t) => {
    // A sum already at the largest storable value: the next group for it is set aside.
    const key = `metrics:model:{deg/full}:stats:${bucketName('hour', Date.now())}`
    await redis.client.hset(key, 'n', '1', 'ttft:sum', MAX_SUM)
    await redis.client.pexpire(key, HOUR)
    await post('/api/metrics/chat', [{ model: 'deg/full', success: true, ttft_ms: 5 }])
    await app.flusher.flush()
    t.equal(app.flusher.setAsideGroups, 1)
    const p = await context.newPage()
    p.setDefaultTimeout(10_000)
    await p.goto(`${base}/`)
    await p.waitForFunction(() => document.querySelector('#banner')?.textContent?.includes('Service degraded') === true)
    t.match(await p.textContent('#banner'), /refused 1 group/)
    await p.close()
  })
})
