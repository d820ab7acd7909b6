-- ARGV: mailbox, minUID, maxUID ("+inf" for all). Returns the packed
-- metadata of the mailbox's messages in UID order, in one round trip.
needAcct()
local mbid = mbId(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', mxKey(mbid), ARGV[2], ARGV[3])
local out, mi = {}, miKey(mbid)
-- unpack is bounded by the Lua stack, so ids go to HMGET in chunks.
for i = 1, #ids, 1000 do
  local v = redis.call('HMGET', mi, unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #v do out[#out + 1] = v[j] end
end
return out
