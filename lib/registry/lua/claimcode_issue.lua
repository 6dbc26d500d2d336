-- claimcode_issue: record a new claim code for one device, by its hash only,
-- and revoke the device's previous code, in one step (docs/claiming.md).
-- The code itself never reaches Redis: KEYS[2] is named by its SHA-256.
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:cc:<sha256(new code)>   KEYS[3] onb:audit
-- KEYS[4] onb:cc:<previous hash> (only when C read a previous pointer)
-- ARGV[1] device id      ARGV[2] new hash      ARGV[3] previous hash ('' none)
-- ARGV[4] expires (ms)   ARGV[5] grace (ms): the record lives until expires + grace
-- ARGV[6] states a code may be issued in, comma-separated (lib/claim/claimreg.c)
-- ARGV[7] now (ms, from the caller: scripts never read the clock)
-- ARGV[8] actor          ARGV[9] source ('' none)   ARGV[10] audit cap
--
-- Returns {'ok'} after writing the record (PEXPIREAT), the device's pointer,
-- revoking the previous code if it was still issued, and one audit entry;
-- {'notfound'} or {'refused', state, tenant} after one audit entry;
-- {'retry'} (the pointer moved since C read it) or {'exists'} (hash
-- collision) writing nothing.
local dev, cc, audit, oldcc = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, hash, old, expires, grace = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local states, now, actor, source, audit_minid = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]

local function log(result, fields)
  audit_log(audit, audit_minid, actor, source, now,
    append({'action', 'claimcode-issue', 'device', id, 'result', result}, fields))
end

local cur = redis.call('HMGET', dev, 'state', 'tenant', 'claimcode')
if not cur[1] then
  log('error', {'reason', 'unknown device'})
  return {'notfound'}
end
local tenant = cur[2] or ''
if not listed(states, cur[1]) or tenant ~= '' then
  log('refused', {'reason', 'device is ' .. cur[1] .. (tenant ~= '' and (' for tenant ' .. tenant) or '')})
  return {'refused', cur[1], tenant}
end
if (cur[3] or '') ~= old or (old ~= '' and not oldcc) then
  return {'retry'}
end
if redis.call('EXISTS', cc) == 1 then
  return {'exists'}
end

local fields = {'code', string.sub(hash, 1, 16), 'expires', expires}
if old ~= '' then
  cc_revoke(oldcc, 'superseded', now)
  append(fields, {'superseded', string.sub(old, 1, 16)})
end
redis.call('HSET', cc, 'device', id, 'status', 'issued', 'expires', expires, 'created', now)
redis.call('PEXPIREAT', cc, tonumber(expires) + tonumber(grace))
redis.call('HSET', dev, 'claimcode', hash)
log('ok', fields)
return {'ok'}
