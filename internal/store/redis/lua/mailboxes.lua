-- ARGV: op, ... list; get name; create name special now;
-- subscribe name 0|1 now.
needAcct()
local op = ARGV[1]
local fields = {'name', 'special', 'uidv', 'uidnext', 'hms', 'sub', 'msgs', 'unseen', 'size'}
local function row(out, id)
  table.insert(out, id)
  local v = redis.call('HMGET', mbKey(id), unpack(fields))
  for i = 1, #fields do table.insert(out, v[i] or '') end
end
local out = {}
if op == 'list' then
  for _, id in ipairs(redis.call('HVALS', P .. 'mbn')) do row(out, id) end
elseif op == 'get' then
  row(out, mbId(ARGV[2]))
elseif op == 'create' then
  if redis.call('HEXISTS', P .. 'mbn', ARGV[2]) == 1 then fail('MBEXISTS') end
  local id = newMailbox(ARGV[2], ARGV[3])
  event(ARGV[4], 4, ARGV[2], '', id, 0, 0, '', 0, 0)
  row(out, id)
elseif op == 'subscribe' then
  local id = mbId(ARGV[2])
  redis.call('HSET', mbKey(id), 'sub', ARGV[3])
  event(ARGV[4], 7, ARGV[2], '', id, 0, 0, '', 0, ARGV[3])
  row(out, id)
else
  fail('INVALID')
end
publish()
return out
