-- rotate_require: an operator forces a rotation (`onboardctl device rotate`):
-- the current certificate stops connecting at ARGV[2], and the device is told
-- to renew (by the plugin, on its live session or at its next CONNECT), in
-- one step (docs/provisioning.md "Certificate rotation").
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:events   KEYS[3] onb:audit
-- ARGV[1] device id      ARGV[2] deadline (ms)   ARGV[3] reason ('' none)
-- ARGV[4] now (ms)       ARGV[5] actor   ARGV[6] source ('' none)
-- ARGV[7] events cap     ARGV[8] audit cap
--
-- Returns {'ok'} after setting rotate_deadline and rotate_required, one
-- `cert` event and one audit entry; {'notfound'} or {'refused', state} (no
-- operational certificate, or a state that may not connect) after one audit
-- entry.
local dev, events, audit = KEYS[1], KEYS[2], KEYS[3]
local id, deadline, reason, now, actor, source = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local events_cap, audit_minid = ARGV[7], ARGV[8]

local function log(result, fields)
  audit_log(audit, audit_minid, actor, source, now,
    append({'action', 'rotate-require', 'device', id, 'result', result}, fields))
end

local cur = redis.call('HMGET', dev, 'state', 'cert_fp', 'cert_fp_next', 'tenant', 'policy')
if not cur[1] then
  log('error', {'reason', 'unknown device'})
  return {'notfound'}
end
local state = cur[1]
if (state ~= 'unclaimed' and state ~= 'active' and state ~= 'quarantined') or not cur[2] or cur[2] == '' then
  log('refused', {'reason', 'device is ' .. state .. ' without a usable certificate'})
  return {'refused', state}
end
redis.call('HSET', dev, 'rotate_deadline', deadline, 'rotate_required', '1', 'updated', now)
redis.call('XADD', events, 'MAXLEN', '~', events_cap, '*',
  'type', 'cert', 'device', id, 'state', state, 'tenant', cur[4] or '', 'policy', cur[5] or '',
  'cert_fp', cur[2], 'cert_fp_next', cur[3] or '', 'deadline', deadline, 'rotate', 'required')
local fields = {'deadline', deadline}
append_set(fields, 'reason', reason)
log('ok', fields)
return {'ok'}
