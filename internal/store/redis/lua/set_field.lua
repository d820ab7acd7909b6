-- ARGV: what ("quota" or "key"), value.
needAcct()
if ARGV[1] == 'quota' then
  redis.call('HSET', A, 'quota', ARGV[2])
elseif ARGV[1] == 'key' then
  redis.call('SET', P .. 'key', ARGV[2])
else
  fail('INVALID')
end
return 1
