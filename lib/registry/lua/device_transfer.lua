-- device_transfer: move an active device to another tenant (operator only,
-- docs/claiming.md); its explicit policy is dropped, so it holds the default
-- tenant policy, and live sessions switch at once through the event.
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:events   KEYS[3] onb:audit
-- ARGV[1] device id      ARGV[2] new tenant   ARGV[3] now (ms)
-- ARGV[4] actor          ARGV[5] source ('' none)
-- ARGV[6] events cap     ARGV[7] audit cap    ARGV[8] reason ('' none)
--
-- Returns {'ok', former tenant} after the change, one event and one audit
-- entry; {'notfound'}, {'refused', state} or {'same'} after one audit entry.
local dev, events, audit = KEYS[1], KEYS[2], KEYS[3]
local id, to, now, actor, source = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local events_cap, audit_minid, reason = ARGV[6], ARGV[7], ARGV[8]

local function log(result, fields, why)
  local f = append({'action', 'transfer', 'device', id, 'result', result, 'to_tenant', to}, fields)
  audit_log(audit, audit_minid, actor, source, now, append_set(f, 'reason', why or reason))
end

local cur = redis.call('HMGET', dev, 'state', 'tenant')
if not cur[1] then
  log('error', {}, 'unknown device')
  return {'notfound'}
end
local from = cur[2] or ''
if cur[1] ~= 'active' then
  log('refused', {'from_tenant', from}, 'device is ' .. cur[1])
  return {'refused', cur[1]}
end
if from == to then
  log('refused', {'from_tenant', from}, 'already owned by ' .. to)
  return {'same'}
end
redis.call('HSET', dev, 'tenant', to, 'updated', now)
redis.call('HDEL', dev, 'policy')
state_event(events, events_cap, id, 'active', to, '')
log('ok', {'from_tenant', from})
return {'ok', from}
