-- set_state: move one device to a new state if the transition table allows
-- it, in one step (docs/registry.md).
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:events   KEYS[3] onb:audit
-- ARGV[1] device id      ARGV[2] new state
-- ARGV[3] states that may move to ARGV[2], comma-separated (lib/registry/state.c)
-- ARGV[4] reason ('' none)
-- ARGV[5] now (ms, from the caller: scripts never read the clock)
-- ARGV[6] actor          ARGV[7] source ('' none)
-- ARGV[8] events cap     ARGV[9] audit cap
--
-- Returns {'ok', previous state} after updating the hash and appending one
-- event and one audit entry; {'refused', current state} or {'notfound'} after
-- appending only an audit entry (result refused / error).
local dev, events, audit = KEYS[1], KEYS[2], KEYS[3]
local id, to, sources, reason, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local actor, source, events_cap, audit_minid = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

local function log(result, why, from)
  local f = {'action', 'state', 'device', id, 'result', result}
  append_set(f, 'reason', why)
  append_set(f, 'from', from)
  audit_log(audit, audit_minid, actor, source, now, append(f, {'to', to}))
end

local cur = redis.call('HMGET', dev, 'state', 'tenant', 'policy')
local from = cur[1]
if not from then
  if redis.call('EXISTS', dev) == 0 then
    log('error', 'unknown device', '')
    return {'notfound'}
  end
  from = 'invalid'
end
if not listed(sources, from) then
  log('refused', 'illegal transition ' .. from .. ' -> ' .. to, from)
  return {'refused', from}
end

redis.call('HSET', dev, 'state', to, 'updated', now)
if reason ~= '' then
  redis.call('HSET', dev, 'reason', reason)
else
  redis.call('HDEL', dev, 'reason')
end
state_event(events, events_cap, id, to, cur[2] or '', cur[3] or '')
log('ok', reason, from)
return {'ok', from}
