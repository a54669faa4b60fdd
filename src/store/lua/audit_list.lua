-- KEYS: the hash, then one or two indexes, merged newest first. ARGV: the upper bound (a
-- ZREVRANGEBYLEX max), the lower, the page size, the types (space-separated, "": any), the
-- client and the person ("": any), the scan budget. Reply: the next page's token ("": none),
-- then the events' JSON.
local lo, page, budget = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[7])
local types, anytype = {}, ARGV[4] == ''
for t in string.gmatch(ARGV[4], '%S+') do types[t] = true end
local client, user = ARGV[5], ARGV[6]
local heads = {}
for i = 2, #KEYS do
  heads[#heads + 1] = {key = KEYS[i], hi = ARGV[1], buf = {}, pos = 1, done = false}
end
local function peek(h)
  if h.pos > #h.buf then
    if h.done then return nil end
    h.buf = redis.call('ZREVRANGEBYLEX', h.key, h.hi, lo, 'LIMIT', 0, 100)
    h.pos = 1
    if #h.buf < 100 then h.done = true end
    if #h.buf == 0 then return nil end
    h.hi = '(' .. h.buf[#h.buf]
  end
  return h.buf[h.pos]
end
local out, scanned, last = {''}, 0, nil
while #out - 1 < page and scanned < budget do
  local best, bh = nil, nil
  for _, h in ipairs(heads) do
    local v = peek(h)
    if v and (best == nil or v > best) then best, bh = v, h end
  end
  if best == nil then last = nil break end
  bh.pos = bh.pos + 1
  scanned = scanned + 1
  last = best
  local j = redis.call('HGET', KEYS[1], best)
  if j then
    local ok = true
    if not anytype or client ~= '' or user ~= '' then
      local e = cjson.decode(j)
      if not anytype and not types[e.type] then ok = false end
      if client ~= '' and e.client_id ~= client then ok = false end
      if user ~= '' and e.user_id ~= user then ok = false end
    end
    if ok then out[#out + 1] = j end
  end
end
if last then
  for _, h in ipairs(heads) do
    if peek(h) then out[1] = last break end
  end
end
return out
