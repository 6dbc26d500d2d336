-- device_release: unclaim an active device (docs/claiming.md): back to
-- unclaimed, tenant and explicit policy removed, its claim code invalidated
-- (a new code must be issued before anyone can claim it again).
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:events   KEYS[3] onb:audit
-- KEYS[4] onb:cc:<hash> (only when C read a claim code pointer)
-- ARGV[1] device id      ARGV[2] the pointer C read ('' none)
-- ARGV[3] now (ms)       ARGV[4] actor   ARGV[5] source ('' none)
-- ARGV[6] events cap     ARGV[7] audit cap   ARGV[8] reason ('' none)
--
-- Returns {'ok', former tenant} after the change, one event and one audit
-- entry; {'notfound'} or {'refused', state} after one audit entry;
-- {'retry'} (the pointer moved since C read it) writing nothing.
local dev, events, audit, cc = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, ptr, now, actor, source = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local events_cap, audit_minid, reason = ARGV[6], ARGV[7], ARGV[8]

local function log(result, fields, why)
  local f = append({'action', 'release', 'device', id, 'result', result}, fields)
  audit_log(audit, audit_minid, actor, source, now, append_set(f, 'reason', why or reason))
end

local cur = redis.call('HMGET', dev, 'state', 'tenant', 'claimcode')
if not cur[1] then
  log('error', {}, 'unknown device')
  return {'notfound'}
end
if cur[1] ~= 'active' then
  log('refused', {'from', cur[1], 'to', 'unclaimed'}, 'device is ' .. cur[1])
  return {'refused', cur[1]}
end
if (cur[3] or '') ~= ptr or (ptr ~= '' and not cc) then
  return {'retry'}
end
local tenant = cur[2] or ''
redis.call('HSET', dev, 'state', 'unclaimed', 'updated', now)
redis.call('HDEL', dev, 'tenant', 'policy', 'reason', 'claimed', 'claimcode')
if ptr ~= '' then cc_revoke(cc, 'released', now) end
state_event(events, events_cap, id, 'unclaimed', '', '')
log('ok', {'from', 'active', 'to', 'unclaimed', 'tenant', tenant})
return {'ok', tenant}
