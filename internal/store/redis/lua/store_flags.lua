-- ARGV: mailbox, now, op (set|add|remove), flags (space-separated), uids...
needAcct()
local mbid = mbId(ARGV[1])
local now, op = ARGV[2], ARGV[3]
local given = {}
for f in string.gmatch(ARGV[4], '%S+') do given[f] = true end
local out = {}
for i = 5, #ARGV do
  local msgid = msgAt(mbid, ARGV[i])
  if msgid then
    local cur = redis.call('HGET', msgKey(msgid), 'flags')
    local set = {}
    if op ~= 'set' then
      for f in string.gmatch(cur, '%S+') do set[f] = true end
    end
    for f in pairs(given) do
      if op == 'remove' then set[f] = nil else set[f] = true end
    end
    local list = {}
    for f in pairs(set) do table.insert(list, f) end
    table.sort(list)
    local nf = table.concat(list, ' ')
    local old = {}
    for f in string.gmatch(cur, '%S+') do table.insert(old, f) end
    table.sort(old)
    if table.concat(old, ' ') ~= nf then
      local k = mbKey(mbid)
      local modseq = redis.call('HINCRBY', k, 'hms', 1)
      redis.call('HSET', msgKey(msgid), 'flags', nf, 'modseq', modseq)
      local was, is = hasFlag(cur, '\\Seen'), hasFlag(nf, '\\Seen')
      if was and not is then redis.call('HINCRBY', k, 'unseen', 1) end
      if is and not was then redis.call('HINCRBY', k, 'unseen', -1) end
      event(now, 2, ARGV[1], '', mbid, ARGV[i], msgid, nf, modseq, 0)
      putMeta(msgid)
      meta(out, mbid, msgid)
    end
  end
end
publish()
return out
