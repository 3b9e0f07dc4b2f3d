#!lua
local sub, find, tonumber = string.sub, string.find, tonumber
local function int(s)
  return #s <= 15 and (s == '0' or find(s, '^%-?[1-9]%d*$') ~= nil)
end
-- Every key is checked before anything is written: a key of another type refuses the whole call.
for k = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[k]).ok
  if kind ~= 'none' and kind ~= (k == 1 and 'string' or 'hash') then
    return redis.error_reply('METRICS_REFUSED ' .. KEYS[k] .. ' holds a ' .. kind .. ', not a ' .. (k == 1 and 'string' or 'hash'))
  end
end
local snap, any, exp = {}, false, redis.call('PEXPIRETIME', KEYS[1])
local period, hours, spans = ARGV[1], ARGV[2], ARGV[3]
for k = 3, #KEYS do
  local kv = redis.call('HGETALL', KEYS[k])
  if #kv > 0 then
    for i = 1, #kv, 2 do
      local f, v = kv[i], kv[i + 1]
      if sub(f, 1, 5) ~= 'last:' then
        if int(v) then kv[i + 1] = tonumber(v) end
        if int(f) then kv[i] = tonumber(f) end
      end
    end
    local s, p = ARGV[2 * k - 2], ARGV[2 * k - 1]
    snap[s] = snap[s] or {}
    snap[s][p] = kv
    any = true
    local e = redis.call('PEXPIRETIME', KEYS[k])
    if e > exp then exp = e end
    redis.call('UNLINK', KEYS[k])
  end
end
-- Nothing live and no block: nothing is sealed, and the index stays as it is.
if exp <= 0 then return 0 end
-- The unit's sub-buckets are sealed from now on, whether or not each held anything; the index
-- expires with the latest block it describes.
local subs = redis.call('HGET', KEYS[2], period) or ''
for k = 3, #KEYS do
  local s = ARGV[2 * k - 2]
  if not string.find(subs, s, 1, true) then subs = subs .. s end
end
redis.call('HSET', KEYS[2], period, subs)
-- Periods past their retention leave the index: hours (13 characters) before ARGV[2], 10-minute
-- periods before ARGV[3] ('': no pruning in this call).
if hours ~= '' then
  local names = redis.call('HKEYS', KEYS[2])
  for i = 1, #names do
    local n = names[i]
    if (sub(n, 14, 14) == '-' and n < spans) or (sub(n, 14, 14) ~= '-' and n < hours) then redis.call('HDEL', KEYS[2], n) end
  end
end
if exp > redis.call('PEXPIRETIME', KEYS[2]) then redis.call('PEXPIREAT', KEYS[2], exp) end
if not any then return 0 end
-- A pair whose figures are exactly its model's in the same bucket (as when every request of the
-- model went through one gateway) is written as 1, each part on its own: its stats when they equal
-- the model's less its latest provider, its histograms when they equal the model's three at the pair
-- offsets (src/store/layout.ts partOf rebuilds both). Equal counts alone would not do: a flush may
-- have applied the model's part and not yet the pair's.
local function asMap(kv, skipLast)
  local m, n = {}, 0
  for i = 1, #kv, 2 do
    if not (skipLast and type(kv[i]) == 'string' and sub(kv[i], 1, 5) == 'last:') then
      m[kv[i]] = kv[i + 1]
      n = n + 1
    end
  end
  return m, n
end
local function equal(kv, m, n)
  if #kv ~= 2 * n then return false end
  for i = 1, #kv, 2 do
    if m[kv[i]] ~= kv[i + 1] then return false end
  end
  return true
end
local OFFSETS = { t = __PAIR_DISTS_TTFT__, T = __PAIR_DISTS_TOTAL__, p = __PAIR_DISTS_TPS__ }
for _, parts in pairs(snap) do
  local ms, ns, md, nd
  if parts['s'] then ms, ns = asMap(parts['s'], true) end
  md, nd = {}, 0
  for code, offset in pairs(OFFSETS) do
    local kv = parts[code]
    if kv then
      for i = 1, #kv, 2 do
        local f = kv[i]
        local bin = offset + (f == '__ZERO_BIN__' and __PAIR_ZERO__ or (tonumber(f) or -1e9))
        if md[bin] == nil then nd = nd + 1 end
        md[bin] = kv[i + 1]
      end
    end
  end
  for p, kv in pairs(parts) do
    local kind = sub(p, 1, 2)
    if (kind == 'g:' or kind == 'p:') and type(kv) == 'table' then
      local last = sub(p, -2)
      if last == ':s' and ms and equal(kv, ms, ns) then parts[p] = 1
      elseif last == ':d' and nd > 0 and equal(kv, md, nd) then parts[p] = 1 end
    end
  end
end
-- Stats field names by number (src/store/layout.ts STAT_NAMES).
local STAT = {}
for i, name in ipairs(cjson.decode('__STAT_NAMES_JSON__')) do STAT[name] = i end
for _, parts in pairs(snap) do
  for p, kv in pairs(parts) do
    if type(kv) == 'table' and (p == 's' or sub(p, -2) == ':s') then
      for i = 1, #kv, 2 do kv[i] = STAT[kv[i]] or kv[i] end
    end
  end
end
-- A hash of integers only (histogram bins) is written sorted by field, each field as its difference
-- from the one before, after a leading true: small differences take one byte.
local function delta(kv)
  local idx = {}
  for i = 1, #kv, 2 do
    if type(kv[i]) ~= 'number' or type(kv[i + 1]) ~= 'number' then return kv end
    idx[#idx + 1] = i
  end
  table.sort(idx, function(a, b) return kv[a] < kv[b] end)
  local out, prev = { true }, 0
  for _, i in ipairs(idx) do
    out[#out + 1] = kv[i] - prev
    out[#out + 1] = kv[i + 1]
    prev = kv[i]
  end
  return out
end
for _, parts in pairs(snap) do
  for p, kv in pairs(parts) do
    if type(kv) == 'table' and #kv >= 4 then parts[p] = delta(kv) end
  end
end
local packed = cmsgpack.pack(snap)
-- SET rather than APPEND: APPEND leaves up to as much free room again in the string.
redis.call('SET', KEYS[1], (redis.call('GET', KEYS[1]) or '') .. packed)
if exp > 0 then redis.call('PEXPIREAT', KEYS[1], exp) end
return #packed
