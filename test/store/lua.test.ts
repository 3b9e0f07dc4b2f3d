/**
 * The Lua scripts' loading (src/store/lua.ts): the files in src/store/lua/ get the TypeScript side's
 * constants in place of their `__NAME__` placeholders, and a placeholder without a value or a value
 * without its placeholder is an error, so neither side can change alone. What the scripts do is the
 * store contract's business (test/helpers/store-contract.ts).
 */
import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { PAIR_DISTS, PAIR_ZERO } from '../../src/metrics/histogram.js'
import { APPLY_LUA, FETCH_LUA, inject, SEAL_LUA } from '../../src/store/lua.js'
import { TS_DIGITS } from '../../src/store/merge.js'
import { MAX_SUM, PARTS_PER_GROUP } from '../../src/store/types.js'

const LUA_DIR = new URL('../../src/store/lua/', import.meta.url)

t.test('inject: every placeholder gets its value, as often as it appears', async (t) => {
  const source = "local n = x % __PARTS__\nlocal s = '__MAX_SUM__' .. __PARTS__ .. __A1_B2__\n"
  t.equal(inject(source, { PARTS: 1024, MAX_SUM: '99', A1_B2: 'z' }, 'x.lua'), "local n = x % 1024\nlocal s = '99' .. 1024 .. z\n")
  t.equal(inject('return 1\n', {}, 'x.lua'), 'return 1\n', 'a script without placeholders takes no values')
})

t.test('inject: Lua names that are not placeholders stay as they are', async (t) => {
  const source = "setmetatable(t, { __index = f, __gc = g }); local _G, __x__ = 1, 2; local v = '__1__'\n"
  t.equal(inject(source, {}, 'x.lua'), source, 'lower case, no closing underscores, or a leading digit')
})

t.test('inject: a value is put in as it is, never read again for placeholders', async (t) => {
  t.equal(inject('a(__X__)', { X: '__Y__' }, 'x.lua'), 'a(__Y__)')
})

t.test('inject: a placeholder without a value is an error naming the file and the placeholder', async (t) => {
  t.throws(() => inject('local a = __MAX_SUM__ + __PARTS__', { MAX_SUM: 1 }, 'apply.lua'),
    { message: 'apply.lua: placeholder __PARTS__ has no value' })
  t.throws(() => inject('local a = __TO_STRING__', Object.create({ TO_STRING: 1 }) as Record<string, number>, 'a.lua'),
    { message: 'a.lua: placeholder __TO_STRING__ has no value' }, 'only the record\'s own values count')
})

t.test('inject: a value that no placeholder uses is an error naming the file and the values', async (t) => {
  t.throws(() => inject('local a = __A__', { A: 1, B: 2, C: 3 }, 'seal.lua'),
    { message: 'seal.lua: no placeholder uses the value given for B, C' })
  t.throws(() => inject('return 1', { A: 1 }, 'fetch.lua'), { message: 'fetch.lua: no placeholder uses the value given for A' })
})

t.test('the scripts: loaded from their files with the constants in place', async (t) => {
  const files = readdirSync(LUA_DIR).sort()
  t.same(files, ['apply.lua', 'fetch.lua', 'seal.lua'], 'one file per script, nothing else')
  const module = readFileSync(new URL('../../src/store/lua.ts', import.meta.url), 'utf8')
  for (const file of files) t.ok(module.includes(`new URL('./lua/${file}', import.meta.url)`), `src/store/lua.ts loads ${file}`)
  for (const [name, script] of Object.entries({ APPLY_LUA, FETCH_LUA, SEAL_LUA })) {
    t.match(script, /^#!lua( flags=no-writes)?\n/, `${name} starts with its shebang`)
    t.notMatch(script, /__[A-Z][A-Z0-9_]*__/, `${name} has no placeholder left`)
  }
  t.match(FETCH_LUA, /^#!lua flags=no-writes\n/, 'FETCH only reads')
  t.equal(FETCH_LUA, readFileSync(new URL('fetch.lua', LUA_DIR), 'utf8'), 'FETCH has no placeholders: its file as it is')
  t.ok(APPLY_LUA.includes(`local part = seq % ${PARTS_PER_GROUP}\n`), 'APPLY: parts per group')
  t.ok(APPLY_LUA.includes(`halves('${MAX_SUM}')`), 'APPLY: the largest storable sum')
  t.ok(APPLY_LUA.includes(`string.sub(v, 1, ${TS_DIGITS}) >= string.sub(cur, 1, ${TS_DIGITS})`), 'APPLY: the event-time prefix of a latest value')
  t.ok(SEAL_LUA.includes(`{ t = ${PAIR_DISTS.ttft}, T = ${PAIR_DISTS.total}, p = ${PAIR_DISTS.tps} }`), 'SEAL: the pair histogram offsets')
  t.ok(SEAL_LUA.includes(`and ${PAIR_ZERO} or`), 'SEAL: the zero bin at a pair offset')
  t.ok(APPLY_LUA.includes("'([^\\31]*)\\31'"), 'Lua escapes are read as Lua reads them: \\31 reaches Redis as written')
})
