-- KEYS[2]: the staging hash holding the header and body blobs (fields h and
-- b), written by the same MULTI/EXEC transaction just before this script.
-- ARGV: mailbox, now, date, size, flags, header length, body length. One
-- atomic commit: UID allocation, message, counters, quota usage and the event.
--
-- Append is the hot path; two costs inside a script dominate it, so the
-- script avoids both:
--  * every string entering Lua (argument or reply) is copied and hashed byte
--    by byte, about 18 us for a 10 KB body: the blobs never enter Lua; the
--    staged hash is renamed into place as the message hash instead;
--  * each write call costs far more than its command (per-call checks,
--    propagation to the AOF and replicas): the counters are read with two
--    HMGETs and each hash written once, instead of one HINCRBY per counter.
-- The keys and values are the ones the other scripts expect. The caller's
-- transaction deletes KEYS[2] after this script, so a failed append leaves
-- nothing behind.
local a = redis.call('HMGET', A, 'deleting', 'quota', 'used', 'nmsg', 'evseq')
if a[1] or not a[2] then fail('NOACCT') end
local mbid = mbId(ARGV[1])
local size = tonumber(ARGV[4])
local quota, used = tonumber(a[2]), tonumber(a[3] or 0)
if quota > 0 and used + size > quota then fail('QUOTA') end
local k = mbKey(mbid)
local c = redis.call('HMGET', k, 'uidnext', 'hms', 'msgs', 'size', 'unseen')
local msgid = int(tonumber(a[4] or 0) + 1)
local uid = int(tonumber(c[1]))
local modseq = int(tonumber(c[2] or 0) + 1)
local unseen = tonumber(c[5] or 0)
if not hasFlag(ARGV[5], '\\Seen') then unseen = unseen + 1 end
local mk = msgKey(msgid)
-- The first write: a missing KEYS[2] makes RENAME fail with nothing changed.
redis.call('RENAME', KEYS[2], mk)
redis.call('HSET', mk, 'mb', mbid, 'uid', uid, 'flags', ARGV[5],
  'date', ARGV[3], 'size', ARGV[4], 'modseq', modseq,
  'hlen', ARGV[6], 'blen', ARGV[7])
-- The packed record putMeta would read back from the hash just written.
redis.call('HSET', miKey(mbid), msgid, table.concat({msgid, uid, ARGV[5],
  ARGV[3], ARGV[4], modseq, ARGV[6], ARGV[7], mbid}, '\t'))
redis.call('ZADD', mxKey(mbid), uid, msgid)
redis.call('HSET', k, 'uidnext', int(uid + 1), 'hms', modseq,
  'msgs', int(tonumber(c[3] or 0) + 1), 'size', int(tonumber(c[4] or 0) + size),
  'unseen', int(unseen))
local seq = int(tonumber(a[5] or 0) + 1)
redis.call('HSET', A, 'nmsg', msgid, 'used', int(used + size), 'evseq', seq)
logEvent(seq, ARGV[2], 1, ARGV[1], '', mbid, uid, msgid, ARGV[5], modseq, 0)
publish()
return {msgid, uid, modseq, mbid}
