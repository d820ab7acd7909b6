-- ARGV: op ("add" or "remove"), address. Returns 1 when the list changed.
needAcct()
local addrs = {}
for a in string.gmatch(redis.call('HGET', A, 'addrs'), '%S+') do table.insert(addrs, a) end
local at = nil
for i, a in ipairs(addrs) do if a == ARGV[2] then at = i end end
if ARGV[1] == 'add' then
  if at then return 0 end
  table.insert(addrs, ARGV[2])
else
  if at == 1 then fail('INVALID') end
  if not at then return 0 end
  table.remove(addrs, at)
end
redis.call('HSET', A, 'addrs', table.concat(addrs, ' '))
return 1
