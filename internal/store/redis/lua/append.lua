-- ARGV: mailbox, now, date, size, flags, header, body. One atomic commit:
-- UID allocation, message, counters, quota usage and the event.
needAcct()
local mbid = mbId(ARGV[1])
local size = tonumber(ARGV[4])
local quota = tonumber(redis.call('HGET', A, 'quota'))
local used = tonumber(redis.call('HGET', A, 'used'))
if quota > 0 and used + size > quota then fail('QUOTA') end
local k = mbKey(mbid)
local msgid = redis.call('HINCRBY', A, 'nmsg', 1)
local uid = redis.call('HINCRBY', k, 'uidnext', 1) - 1
local modseq = redis.call('HINCRBY', k, 'hms', 1)
redis.call('HSET', msgKey(msgid), 'mb', mbid, 'uid', uid, 'flags', ARGV[5],
  'date', ARGV[3], 'size', ARGV[4], 'modseq', modseq,
  'hlen', #ARGV[6], 'blen', #ARGV[7], 'h', ARGV[6], 'b', ARGV[7])
putMeta(msgid)
redis.call('ZADD', mxKey(mbid), uid, msgid)
mbCount(mbid, 1, size, ARGV[5])
redis.call('HINCRBY', A, 'used', size)
event(ARGV[2], 1, ARGV[1], '', mbid, uid, msgid, ARGV[5], modseq, 0)
publish()
return {msgid, uid, modseq, mbid}
