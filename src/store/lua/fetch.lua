#!lua flags=no-writes
local out, indexes, raws = {}, {}, {}
local n = #KEYS
for k = 1, n do
  if string.byte(ARGV[k]) == 120 then
    local kv, t = redis.call('HGETALL', KEYS[k]), {}
    for j = 1, #kv, 2 do t[kv[j]] = kv[j + 1] end
    indexes[k] = t
    raws[k] = kv
  end
end
local function sealed(t, period, s)
  local subs = t[period]
  return subs ~= nil and t[period .. ':late'] == nil and string.find(subs, s, 1, true) ~= nil
end
for i = n + 1, #ARGV do
  local x, period, subs = string.match(ARGV[i], '^a(%d+)|(.+)|(.+)$')
  local t = x and indexes[tonumber(x)]
  local holds = t ~= nil
  if holds then
    for j = 1, #subs do
      if not sealed(t, period, string.sub(subs, j, j)) then holds = false break end
    end
  end
  if not holds then
    for k = 1, n do out[k] = raws[k] and table.concat(raws[k], '\0') or '' end
    out[n + 1] = '!'
    return out
  end
end
local function skip(a)
  local i, period, s = string.match(a, '^h(%d+)|(.+)|(.)$')
  if not i then return false end
  return sealed(indexes[tonumber(i)], period, s)
end
for k = 1, n do
  local a = ARGV[k]
  local b = string.byte(a)
  if b == 115 then
    -- 's<length>': the service holds this block at that length; blocks only grow, so the same
    -- length is the same block, answered '=' (no block is one byte).
    local held = tonumber(string.sub(a, 2))
    if held and redis.call('STRLEN', KEYS[k]) == held then
      out[k] = '='
    else
      out[k] = redis.call('GET', KEYS[k]) or ''
    end
  elseif b == 120 then
    out[k] = a == 'xr' and table.concat(raws[k], '\0') or ''
  elseif skip(a) then
    out[k] = ''
  else
    out[k] = table.concat(redis.call('HGETALL', KEYS[k]), '\0')
  end
end
return out
