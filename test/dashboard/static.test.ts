import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CONTENT_SECURITY_POLICY, PUBLIC_DIR } from '../../src/routes/dashboard.js'
import { build } from '../helpers/app.js'

const READ = 'read-token-dddddddddddddd'

t.test('GET / serves the dashboard, open whatever the read token', async (t) => {
  const { app } = await build(t, { config: { readTokens: [READ] } })
  const res = await app.inject({ url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.body, /<title>LLM gateway metrics<\/title>/)
  t.equal(res.headers['content-security-policy'], CONTENT_SECURITY_POLICY)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal((await app.inject({ url: '/api/metrics/stream' })).statusCode, 401, 'while the stream needs the token')
})

t.test('every file the page loads is served by the service itself', async (t) => {
  const { app } = await build(t)
  const html = readFileSync(join(PUBLIC_DIR, 'index.html'), 'utf8')
  const referenced = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((u) => !u.startsWith('data:'))
  const imported = readdirSync(PUBLIC_DIR).filter((f) => f.endsWith('.js'))
    .flatMap((f) => [...readFileSync(join(PUBLIC_DIR, f), 'utf8').matchAll(/^import .* from '\.\/([^']+)'$/gm)].map((m) => m[1]!))
  t.ok(referenced.includes('app.js') && imported.includes('vendor/uplot.js') && imported.includes('vendor/eventsource-parser.js'), `found ${[...referenced, ...imported].join(', ')}`)
  for (const url of new Set([...referenced, ...imported])) {
    t.notMatch(url, /^(https?:)?\/\//, `${url} is local`)
    const res = await app.inject({ url: `/${url}` })
    t.equal(res.statusCode, 200, `/${url}`)
    t.match(res.headers['content-type'], url.endsWith('.css') ? /^text\/css/ : /^(application|text)\/javascript/, `/${url}: content type`)
  }
})

t.test('unknown paths stay the service\'s own 404', async (t) => {
  const { app } = await build(t)
  for (const url of ['/vendor/other.js', '/nope.html', '/../package.json', '/api/metrics/nope']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 404, url)
    t.match(res.json(), { statusCode: 404 })
  }
})
