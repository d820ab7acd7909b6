needAcct()
local k = redis.call('GET', P .. 'key')
if not k then fail('NOTFOUND') end
return k
