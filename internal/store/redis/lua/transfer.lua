-- ARGV: op (copy|move), src, dst, now, uids... (ascending). Returns
-- src/dst UID pairs, flat.
needAcct()
local op, src, dst, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local sid, did = mbId(src), mbId(dst)
local todo, total = {}, 0
for i = 5, #ARGV do
  local m = msgAt(sid, ARGV[i])
  if m then
    table.insert(todo, {ARGV[i], m})
    total = total + tonumber(redis.call('HGET', msgKey(m), 'size'))
  end
end
if op == 'copy' then
  local quota = tonumber(redis.call('HGET', A, 'quota'))
  local used = tonumber(redis.call('HGET', A, 'used'))
  if quota > 0 and total > 0 and used + total > quota then fail('QUOTA') end
  redis.call('HINCRBY', A, 'used', total)
end
local dk, out = mbKey(did), {}
for _, t in ipairs(todo) do
  local uid, m = t[1], t[2]
  local mk = msgKey(m)
  local flags = redis.call('HGET', mk, 'flags')
  local size = tonumber(redis.call('HGET', mk, 'size'))
  local nuid = redis.call('HINCRBY', dk, 'uidnext', 1) - 1
  local modseq = redis.call('HINCRBY', dk, 'hms', 1)
  local nid = m
  if op == 'copy' then
    nid = redis.call('HINCRBY', A, 'nmsg', 1)
    redis.call('COPY', mk, msgKey(nid))
  else
    local sms = redis.call('HINCRBY', mbKey(sid), 'hms', 1)
    redis.call('ZREM', mxKey(sid), m)
    redis.call('HDEL', miKey(sid), m)
    mbCount(sid, -1, size, flags)
    event(now, 3, src, '', sid, uid, m, '', sms, 0)
  end
  redis.call('HSET', msgKey(nid), 'mb', did, 'uid', nuid, 'modseq', modseq)
  putMeta(nid)
  redis.call('ZADD', mxKey(did), nuid, nid)
  mbCount(did, 1, size, flags)
  event(now, 1, dst, '', did, nuid, nid, flags, modseq, 0)
  table.insert(out, uid)
  table.insert(out, nuid)
end
publish()
return out
