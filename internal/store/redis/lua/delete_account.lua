-- Removes every key of the account. ARGV[1] = "mark" only flags the account
-- as being deleted (first step of DeleteAccount) and returns its addresses
-- and device keys so the directory entries can be released.
if redis.call('EXISTS', A) == 0 then fail('NOACCT') end
if ARGV[1] == 'mark' then
  redis.call('HSET', A, 'deleting', 1)
  local out = {redis.call('HGET', A, 'addrs')}
  local devs = redis.call('HGETALL', P .. 'devs')
  for i = 1, #devs, 2 do
    if string.sub(devs[i], 1, 2) ~= 'r:' then table.insert(out, string.match(devs[i + 1], '^[^\t]*') .. '\t' .. devs[i]) end
  end
  return out
end
local mbs = redis.call('HVALS', P .. 'mbn')
for _, id in ipairs(mbs) do
  local msgs = redis.call('ZRANGE', mxKey(id), 0, -1)
  for _, m in ipairs(msgs) do redis.call('DEL', msgKey(m)) end
  redis.call('DEL', mbKey(id), mxKey(id), miKey(id))
end
redis.call('DEL', P .. 'mbn', P .. 'ev', P .. 'devs', P .. 'key', A)
return 1
