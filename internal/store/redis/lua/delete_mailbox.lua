-- ARGV: name, now. Removes the mailbox and its messages, not its children.
needAcct()
local name, now = ARGV[1], ARGV[2]
if name == 'INBOX' then fail('PROTECTED') end
local id = mbId(name)
local freed = 0
local msgs = redis.call('ZRANGE', mxKey(id), 0, -1)
for _, m in ipairs(msgs) do
  freed = freed + tonumber(redis.call('HGET', msgKey(m), 'size') or '0')
  redis.call('DEL', msgKey(m))
end
redis.call('DEL', mbKey(id), mxKey(id), miKey(id))
redis.call('HDEL', P .. 'mbn', name)
if freed > 0 then redis.call('HINCRBY', A, 'used', -freed) end
event(now, 6, name, '', id, 0, 0, '', 0, 0)
publish()
return 1
