-- ARGV: primary, created, quota, then name/special pairs of the defaults.
if redis.call('EXISTS', A) == 1 then fail('TAKEN') end
redis.call('HSET', A, 'primary', ARGV[1], 'addrs', ARGV[1], 'created', ARGV[2],
  'quota', ARGV[3], 'used', 0, 'nmb', 0, 'nmsg', 0, 'uidv', 0, 'ndev', 0, 'evseq', 0)
for i = 4, #ARGV, 2 do newMailbox(ARGV[i], ARGV[i + 1]) end
return 1
