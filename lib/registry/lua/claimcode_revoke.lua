-- claimcode_revoke: revoke a device's current claim code (docs/claiming.md).
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:cc:<hash> (the pointer C read)   KEYS[3] onb:audit
-- ARGV[1] device id      ARGV[2] hash (the pointer C read)
-- ARGV[3] now (ms)       ARGV[4] actor   ARGV[5] source ('' none)   ARGV[6] audit cap
--
-- Returns {'ok'} after marking the record revoked and one audit entry;
-- {'notissued', status} ('used', 'revoked', or 'gone' when the record has
-- expired away) after one audit entry; {'retry'} when the pointer moved.
-- The pointer stays, so `claimcode show` reports the revocation.
local dev, cc, audit = KEYS[1], KEYS[2], KEYS[3]
local id, hash, now, actor, source, audit_minid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local function log(result, why)
  local f = {'action', 'claimcode-revoke', 'device', id, 'result', result, 'code', string.sub(hash, 1, 16)}
  append_set(f, 'reason', why)
  audit_log(audit, audit_minid, actor, source, now, f)
end

if redis.call('HGET', dev, 'claimcode') ~= hash then
  return {'retry'}
end
local status = redis.call('HGET', cc, 'status') or 'gone'
if status ~= 'issued' then
  log('refused', 'code is ' .. status)
  return {'notissued', status}
end
redis.call('HSET', cc, 'status', 'revoked', 'reason', 'operator', 'revoked', now)
log('ok', '')
return {'ok'}
