-- ARGV: op, ... add: record (allocates the id, returns it); drop: devid;
-- revoke: devid; get: devid; list.
needAcct()
local D = P .. 'devs'
local op = ARGV[1]
if op == 'add' then
  local id = tostring(redis.call('HINCRBY', A, 'ndev', 1))
  redis.call('HSET', D, id, ARGV[2])
  return id
elseif op == 'drop' then
  redis.call('HDEL', D, ARGV[2])
  return 1
elseif op == 'revoke' then
  if redis.call('HEXISTS', D, ARGV[2]) == 0 then fail('NODEV') end
  redis.call('HSET', D, 'r:' .. ARGV[2], 1)
  return 1
elseif op == 'get' then
  local r = redis.call('HMGET', D, ARGV[2], 'r:' .. ARGV[2])
  if not r[1] then fail('NODEV') end
  return {r[1], r[2] and '1' or '0'}
end
return redis.call('HGETALL', D)
