-- set_policy: give one device an explicit policy ('' returns it to the
-- default for its state), announce it and audit it, in one step.
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:events   KEYS[3] onb:audit
-- ARGV[1] device id   ARGV[2] policy name or ''   ARGV[3] now (ms)
-- ARGV[4] actor   ARGV[5] source ('' none)   ARGV[6] events cap   ARGV[7] audit cap
--
-- Returns 'ok' or 'notfound' (audited as error).
local dev, events, audit = KEYS[1], KEYS[2], KEYS[3]
local id, policy, now = ARGV[1], ARGV[2], ARGV[3]
local actor, source, events_cap, audit_minid = ARGV[4], ARGV[5], ARGV[6], ARGV[7]

local function log(result, reason)
  local f = {'action', 'device-policy', 'device', id, 'result', result, 'policy', policy}
  append_set(f, 'reason', reason)
  audit_log(audit, audit_minid, actor, source, now, f)
end

local cur = redis.call('HMGET', dev, 'state', 'tenant')
if not cur[1] then
  log('error', 'unknown device')
  return 'notfound'
end
if policy == '' then
  redis.call('HDEL', dev, 'policy')
else
  redis.call('HSET', dev, 'policy', policy)
end
redis.call('HSET', dev, 'updated', now)
state_event(events, events_cap, id, cur[1], cur[2] or '', policy)
log('ok', '')
return 'ok'
