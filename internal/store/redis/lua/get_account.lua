needAcct()
return redis.call('HMGET', A, 'primary', 'addrs', 'created', 'quota', 'used')
