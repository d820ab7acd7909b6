-- Outbound queue; every key carries the tag {q}. KEYS: due zset, dead zset,
-- id counter. The due zset scores live entries by their available time in
-- microseconds: the next attempt, or the lease expiry while leased.
-- ARGV[1] is the operation; entry ids are zero-padded so they sort.
local DUE, DEAD, SEQ = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local function ek(id) return '{q}:e:' .. id end
local function fail(code) error({err = code}) end
-- leased checks that owner still holds the entry's lease.
local function leased(id, owner)
  local cur = redis.call('HGET', ek(id), 'owner')
  if not cur or cur == '' or cur ~= owner then fail('LEASELOST') end
end

if op == 'enqueue' then
  -- ARGV: op, due_us, meta, rcpts, payload, next_ns
  local id = string.format('%016x', redis.call('INCR', SEQ))
  redis.call('HSET', ek(id), 'meta', ARGV[3], 'rcpts', ARGV[4], 'payload', ARGV[5],
    'next', ARGV[6], 'attempts', 0, 'lasterr', '', 'dead', 0, 'owner', '', 'until', 0)
  redis.call('ZADD', DUE, ARGV[2], id)
  return id
elseif op == 'lease' then
  -- ARGV: op, now_us, until_us, owner, until_ns
  local r = redis.call('ZRANGEBYSCORE', DUE, '-inf', ARGV[2], 'LIMIT', 0, 1)
  if not r[1] then fail('EMPTY') end
  redis.call('ZADD', DUE, ARGV[3], r[1])
  redis.call('HSET', ek(r[1]), 'owner', ARGV[4], 'until', ARGV[5])
  return {r[1], redis.call('HGETALL', ek(r[1]))}
elseif op == 'update' then
  -- ARGV: op, id, owner, rcpts
  leased(ARGV[2], ARGV[3])
  redis.call('HSET', ek(ARGV[2]), 'rcpts', ARGV[4])
elseif op == 'complete' then
  leased(ARGV[2], ARGV[3])
  redis.call('DEL', ek(ARGV[2]))
  redis.call('ZREM', DUE, ARGV[2])
elseif op == 'reschedule' then
  -- ARGV: op, id, owner, next_us, next_ns, lasterr
  leased(ARGV[2], ARGV[3])
  local k = ek(ARGV[2])
  redis.call('HINCRBY', k, 'attempts', 1)
  redis.call('HSET', k, 'next', ARGV[5], 'lasterr', ARGV[6], 'owner', '', 'until', 0)
  redis.call('ZADD', DUE, ARGV[4], ARGV[2])
elseif op == 'dead' then
  -- ARGV: op, id, owner, reason
  leased(ARGV[2], ARGV[3])
  redis.call('HSET', ek(ARGV[2]), 'dead', 1, 'lasterr', ARGV[4], 'owner', '', 'until', 0)
  redis.call('ZREM', DUE, ARGV[2])
  redis.call('ZADD', DEAD, 0, ARGV[2])
elseif op == 'retry' then
  -- ARGV: op, id, now_us, now_ns
  local k = ek(ARGV[2])
  if redis.call('EXISTS', k) == 0 then fail('NOTFOUND') end
  redis.call('HSET', k, 'dead', 0, 'next', ARGV[4], 'owner', '', 'until', 0)
  redis.call('ZREM', DEAD, ARGV[2])
  redis.call('ZADD', DUE, ARGV[3], ARGV[2])
elseif op == 'drop' then
  if redis.call('DEL', ek(ARGV[2])) == 0 then fail('NOTFOUND') end
  redis.call('ZREM', DUE, ARGV[2])
  redis.call('ZREM', DEAD, ARGV[2])
elseif op == 'get' then
  local v = redis.call('HGETALL', ek(ARGV[2]))
  if #v == 0 then fail('NOTFOUND') end
  return v
elseif op == 'list' then
  -- ARGV: op, "dead"|"live". Entries without payload, flat field lists.
  local ids = redis.call('ZRANGE', ARGV[2] == 'dead' and DEAD or DUE, 0, -1)
  local out = {}
  for _, id in ipairs(ids) do
    local v = redis.call('HMGET', ek(id), 'meta', 'rcpts', 'next', 'attempts',
      'lasterr', 'dead', 'owner', 'until')
    table.insert(out, id)
    for i = 1, 8 do table.insert(out, v[i] or '') end
  end
  return out
else
  fail('INVALID')
end
return 1
