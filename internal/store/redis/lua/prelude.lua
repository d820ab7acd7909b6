-- Shared helpers, prepended to every account script. KEYS[1] is the
-- account hash "{a:<id>}:acct"; every other key is built from its prefix so
-- that all keys share the account's hash tag (one Cluster slot).
local A = KEYS[1]
local P = string.sub(A, 1, #A - 4)
local ID = string.sub(P, 4, #P - 2)
local evseq = nil

-- fail aborts the script with an error code the Go side maps to a sentinel.
-- Scripts are not rolled back: every check must run before the first write.
local function fail(code)
  error({err = code})
end

local function needAcct()
  if redis.call('EXISTS', A) == 0 or redis.call('HEXISTS', A, 'deleting') == 1 then
    fail('NOACCT')
  end
end

local function mbId(name)
  local id = redis.call('HGET', P .. 'mbn', name)
  if not id then fail('NOMBOX') end
  return id
end

local function mbKey(id) return P .. 'mb:' .. id end
local function mxKey(id) return P .. 'mx:' .. id end
local function msgKey(id) return P .. 'm:' .. id end

-- int formats a counter as a decimal integer: Lua's own number-to-string
-- conversion switches to exponent notation above 1e14.
local function int(n) return string.format('%d', n) end

-- logEvent writes event number seq, already allocated by the caller, to the
-- log; fields are tab-separated (names and flags never contain control
-- characters: the Go side validates them).
local function logEvent(seq, now, kind, mb, old, mbid, uid, msgid, flags, modseq, sub)
  redis.call('ZADD', P .. 'ev', seq, table.concat({seq, kind, now, mb, old,
    mbid, uid, msgid, flags, modseq, sub}, '\t'))
  evseq = seq
end

-- event allocates the next event number and logs the event.
local function event(now, kind, mb, old, mbid, uid, msgid, flags, modseq, sub)
  local seq = redis.call('HINCRBY', A, 'evseq', 1)
  logEvent(seq, now, kind, mb, old, mbid, uid, msgid, flags, modseq, sub)
end

-- publish wakes WaitEvents callers in every process, once per script.
local function publish()
  if evseq then redis.call('PUBLISH', 'smsg:ev:' .. ID, evseq) end
end

local function hasFlag(flags, f)
  for w in string.gmatch(flags, '%S+') do
    if w == f then return true end
  end
  return false
end

local function newMailbox(name, special)
  local id = redis.call('HINCRBY', A, 'nmb', 1)
  local uidv = redis.call('HINCRBY', A, 'uidv', 1)
  redis.call('HSET', mbKey(id), 'name', name, 'special', special, 'uidv', uidv,
    'uidnext', 1, 'hms', 0, 'sub', 1, 'msgs', 0, 'unseen', 0, 'size', 0)
  redis.call('HSET', P .. 'mbn', name, id)
  return id
end

-- mbCount adjusts a mailbox's counters for a message entering (d=1) or
-- leaving (d=-1) it.
local function mbCount(mbid, d, size, flags)
  local k = mbKey(mbid)
  redis.call('HINCRBY', k, 'msgs', d)
  if size ~= 0 then redis.call('HINCRBY', k, 'size', d * size) end
  if not hasFlag(flags, '\\Seen') then redis.call('HINCRBY', k, 'unseen', d) end
end

-- Each mailbox keeps a hash mi:<mbid> of message id -> packed metadata
-- (id, uid, flags, date, size, modseq, hlen, blen, mailbox id; tab-separated)
-- so that listing 10,000 messages is a few HMGETs, not 10,000 calls.
local function miKey(id) return P .. 'mi:' .. id end

-- putMeta refreshes a message's packed metadata after any change to it.
local function putMeta(msgid)
  local v = redis.call('HMGET', msgKey(msgid), 'mb', 'uid', 'flags', 'date', 'size', 'modseq', 'hlen', 'blen')
  redis.call('HSET', miKey(v[1]), msgid, table.concat({msgid, v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[1]}, '\t'))
end

-- meta appends a message's packed metadata to out.
local function meta(out, mbid, msgid)
  table.insert(out, redis.call('HGET', miKey(mbid), msgid))
end

-- msgAt returns the message id at uid in mailbox mbid, or nil.
local function msgAt(mbid, uid)
  local r = redis.call('ZRANGEBYSCORE', mxKey(mbid), uid, uid)
  return r[1]
end
