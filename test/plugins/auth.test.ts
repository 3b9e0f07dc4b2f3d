import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import authPlugin from '../../src/plugins/auth.js'
import storePlugin from '../../src/plugins/store.js'
import { defaultConfig } from '../../src/config.js'

const INGEST = 'ingest-token-aaaaaaaaaaaa'
const READ = 'read-token-cccccccccccccc'

/** The rate-limit key of a token: the start of its SHA-256, never the token itself. */
const idOf = (token: string): string => createHash('sha256').update(token).digest('base64url').slice(0, 16)

/** A bare app with the auth plugin and one route per scope answering the request's token id. */
async function app (t: Test, ingestTokens: string[], readTokens: string[] = []) {
  const fastify = Fastify()
  const config = defaultConfig({ ingestTokens, readTokens })
  // The store (the embedded one) counts refusals per address across instances.
  await fastify.register(storePlugin, { config })
  await fastify.register(authPlugin, { config })
  fastify.post('/in', { config: { auth: 'ingest' } }, async (request) => ({ tokenId: request.tokenId }))
  fastify.get('/out', { config: { auth: 'read' } }, async (request) => ({ tokenId: request.tokenId }))
  fastify.get('/open', async (request) => ({ tokenId: request.tokenId ?? null }))
  await fastify.ready()
  t.teardown(async () => { await fastify.close() })
  const call = async (url: string, token?: string) => {
    const res = await fastify.inject({ method: url === '/in' ? 'POST' : 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    return { status: res.statusCode, body: res.json(), auth: res.headers['www-authenticate'] }
  }
  return call
}

t.test('a token is accepted on every request with the same id, and only its exact string is', async (t) => {
  const call = await app(t, [INGEST], [READ])
  for (let i = 0; i < 3; i++) t.same(await call('/in', INGEST), { status: 200, body: { tokenId: idOf(INGEST) }, auth: undefined }, `request ${i + 1}`)
  for (const wrong of [INGEST.slice(0, -1), `${INGEST}a`, INGEST.toUpperCase(), READ, '']) {
    const res = await call('/in', wrong)
    t.equal(res.status, 401, `after the token was accepted, ${JSON.stringify(wrong)} is still refused`)
    t.equal(res.auth, 'Bearer')
    t.match(res.body, { code: 'METRICS_UNAUTHORIZED', message: /METRICS_INGEST_TOKEN/ })
  }
  t.same(await call('/out', READ), { status: 200, body: { tokenId: idOf(READ) }, auth: undefined }, 'the read token on a read route')
  t.match(await call('/out', INGEST), { status: 401, body: { message: /METRICS_READ_TOKEN/ } }, 'an accepted ingest token does not open the read routes')
  t.equal((await call('/in', READ)).status, 401, 'nor an accepted read token the recording routes')
  t.same(await call('/open', INGEST), { status: 200, body: { tokenId: null }, auth: undefined }, 'routes without a scope never look at the token')
})

t.test('many configured tokens (more than are remembered) all keep working', async (t) => {
  const tokens = Array.from({ length: 70 }, (_, i) => `token-${String(i).padStart(3, '0')}-xxxxxxxxxxxx`)
  const call = await app(t, tokens)
  for (let round = 0; round < 2; round++) {
    const ids = new Set<string>()
    for (const token of tokens) {
      const res = await call('/in', token)
      if (res.status !== 200 || res.body.tokenId !== idOf(token)) t.fail(`round ${round + 1}: ${token} answered ${res.status}`)
      ids.add(res.body.tokenId)
    }
    t.equal(ids.size, tokens.length, `round ${round + 1}: every token accepted with its own id`)
  }
  t.equal((await call('/in', 'token-070-xxxxxxxxxxxx')).status, 401, 'an unconfigured one is still refused')
})
