-- ARGV: old, new, now. Renames the mailbox and its children, keeping ids.
needAcct()
local old, new, now = ARGV[1], ARGV[2], ARGV[3]
if old == 'INBOX' then fail('PROTECTED') end
local id = mbId(old)
if old == new then fail('MBEXISTS') end
local N = P .. 'mbn'
if string.sub(new, 1, #old + 1) == old .. '/' then fail('INVALID') end
local moves = {{old, new, id}}
local all = redis.call('HGETALL', N)
for i = 1, #all, 2 do
  local name = all[i]
  if string.sub(name, 1, #old + 1) == old .. '/' then
    table.insert(moves, {name, new .. string.sub(name, #old + 1), all[i + 1]})
  end
end
for _, m in ipairs(moves) do
  if redis.call('HEXISTS', N, m[2]) == 1 then fail('MBEXISTS') end
end
for _, m in ipairs(moves) do redis.call('HDEL', N, m[1]) end
for _, m in ipairs(moves) do
  redis.call('HSET', N, m[2], m[3])
  redis.call('HSET', mbKey(m[3]), 'name', m[2])
  event(now, 5, m[2], m[1], m[3], 0, 0, '', 0, 0)
end
publish()
return 1
