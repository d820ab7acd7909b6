-- ARGV: field ("h" or "b"), message ids... Returns the blobs in order.
needAcct()
local out = {}
for i = 2, #ARGV do
  local b = redis.call('HGET', msgKey(ARGV[i]), ARGV[1])
  if not b then fail('NOMSG') end
  out[i - 1] = b
end
return out
