-- ARGV: mailbox, now, mode ("deleted": every \Deleted message; "uids"),
-- uids... Returns the removed UIDs in ascending order.
needAcct()
local name, now = ARGV[1], ARGV[2]
local mbid = mbId(name)
local todo = {}
if ARGV[3] == 'deleted' then
  local all = redis.call('ZRANGE', mxKey(mbid), 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    if hasFlag(redis.call('HGET', msgKey(all[i]), 'flags'), '\\Deleted') then
      table.insert(todo, {all[i + 1], all[i]})
    end
  end
else
  for i = 4, #ARGV do
    local m = msgAt(mbid, ARGV[i])
    if m then table.insert(todo, {ARGV[i], m}) end
  end
end
local k, out, freed = mbKey(mbid), {}, 0
for _, t in ipairs(todo) do
  local mk = msgKey(t[2])
  local v = redis.call('HMGET', mk, 'flags', 'size')
  local size = tonumber(v[2])
  local modseq = redis.call('HINCRBY', k, 'hms', 1)
  redis.call('ZREM', mxKey(mbid), t[2])
  redis.call('DEL', mk)
  redis.call('HDEL', miKey(mbid), t[2])
  mbCount(mbid, -1, size, v[1])
  freed = freed + size
  event(now, 3, name, '', mbid, t[1], t[2], '', modseq, 0)
  table.insert(out, t[1])
end
if freed > 0 then redis.call('HINCRBY', A, 'used', -freed) end
publish()
return out
