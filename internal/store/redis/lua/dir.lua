-- Directory changes; every key carries the tag {d}. ARGV: op, value.
-- create: KEYS = addr, accounts. Claims the address and lists the account.
-- claim: KEYS = entry. Returns 1 if claimed, 2 if already ours, 0 if taken.
-- release: KEYS = entry. Deletes it only if it still holds value.
-- forget: KEYS = accounts. Removes the account from the list.
local op, v = ARGV[1], ARGV[2]
if op == 'create' then
  if not redis.call('SET', KEYS[1], v, 'NX') then return 0 end
  redis.call('SADD', KEYS[2], v)
  return 1
elseif op == 'claim' then
  local cur = redis.call('GET', KEYS[1])
  if not cur then
    redis.call('SET', KEYS[1], v)
    return 1
  end
  if cur == v then return 2 end
  return 0
elseif op == 'release' then
  if redis.call('GET', KEYS[1]) == v then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
elseif op == 'forget' then
  return redis.call('SREM', KEYS[1], v)
end
return redis.error_reply('INVALID')
