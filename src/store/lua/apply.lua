#!lua
local seq = tonumber(ARGV[1])
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= seq then return 0 end
-- A part after the first lands only right after the one before it (src/store/redis-store.ts).
local part = seq % __PARTS_PER_GROUP__
if part > 0 and (not last or tonumber(last) ~= seq - 1) then
  return redis.error_reply('METRICS_ORDER part ' .. part .. ' waits for the part before it')
end
local FIRST = 3
-- Checked sums are compared exactly, in two halves of at most 10 digits each (doubles are exact
-- only to 2^53): the sum of two digit strings must not pass MAX_SUM.
local function halves(s)
  local n = #s
  if n <= 9 then return 0, tonumber(s) end
  return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
end
local MAX_HI, MAX_LO = halves('__MAX_SUM__')
local function fits(cur, v)
  if #cur > 19 or #v > 19 or not string.find(cur, '^%d+$') or not string.find(v, '^%d+$') then return false end
  local ch, cl = halves(cur)
  local vh, vl = halves(v)
  local hi, lo = ch + vh, cl + vl
  if lo >= 1000000000 then hi, lo = hi + 1, lo - 1000000000 end
  return hi < MAX_HI or (hi == MAX_HI and lo <= MAX_LO)
end
local ops = {}
local a = 3
for k = FIRST, #KEYS do
  local key = KEYS[k]
  local t, n = {}, 0
  for tok in string.gmatch(ARGV[a + 1], '([^\31]*)\31') do
    n = n + 1
    t[n] = tok
  end
  ops[k] = t
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'hash' and kind ~= 'none' then
    return redis.error_reply('METRICS_REFUSED ' .. key .. ' holds a ' .. kind .. ', not a hash')
  end
  for i = 1, n, 3 do
    if t[i] == 's' then
      if not fits(redis.call('HGET', key, t[i + 1]) or '0', t[i + 2]) then
        return redis.error_reply('METRICS_REFUSED ' .. key .. ' ' .. t[i + 1] .. ' would pass the largest storable sum')
      end
    end
  end
  a = a + 3
end
-- A write into a sub-bucket already sealed marks its period late (src/store/layout.ts sealsKey).
local sealed = {}
a = 3
for k = FIRST, #KEYS do
  local period, s = string.match(ARGV[a + 2], '^(.+)|(.)$')
  if period then
    local subs = sealed[period]
    if subs == nil then
      subs = redis.call('HGET', KEYS[2], period) or ''
      sealed[period] = subs
    end
    if subs ~= '' and string.find(subs, s, 1, true) then
      redis.call('HSET', KEYS[2], period .. ':late', 1)
      sealed[period] = ''
    end
  end
  a = a + 3
end
a = 3
for k = FIRST, #KEYS do
  local key = KEYS[k]
  local exp = ARGV[a]
  local t = ops[k]
  a = a + 3
  for i = 1, #t, 3 do
    local op, f, v = t[i], t[i + 1], t[i + 2]
    if op == 'i' or op == 's' then
      redis.call('HINCRBY', key, f, v)
    else
      local cur = redis.call('HGET', key, f)
      if not cur then
        redis.call('HSET', key, f, v)
      elseif op == 'm' then
        if tonumber(v) < tonumber(cur) then redis.call('HSET', key, f, v) end
      elseif op == 'M' then
        if tonumber(v) > tonumber(cur) then redis.call('HSET', key, f, v) end
      elseif op == 'l' then
        if string.sub(v, 1, __TS_DIGITS__) >= string.sub(cur, 1, __TS_DIGITS__) then redis.call('HSET', key, f, v) end
      end
    end
  end
  redis.call('PEXPIREAT', key, exp)
end
redis.call('SET', KEYS[1], seq, 'PX', ARGV[2])
return 1
