-- ARGV: op (last|since), after, limit.
needAcct()
if ARGV[1] == 'last' then return redis.call('HGET', A, 'evseq') end
return redis.call('ZRANGEBYSCORE', P .. 'ev', '(' .. ARGV[2], '+inf', 'LIMIT', 0, ARGV[3])
