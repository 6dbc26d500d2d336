-- register: create a device, or complete a `manufactured` one, and bind its
-- operational certificate, in one step (docs/registry.md).
--
-- KEYS[1] onb:dev:{ID}   KEYS[2] onb:fp:<FP>   KEYS[3] onb:events   KEYS[4] onb:audit
-- ARGV[1] device id        ARGV[2] certificate fingerprint   ARGV[3] serial (hex)
-- ARGV[4] not_after (s)    ARGV[5] new state                 ARGV[6] tenant ('' none)
-- ARGV[7] states that may move to ARGV[5], comma-separated (lib/registry/state.c)
-- ARGV[8] now (ms, from the caller: scripts never read the clock)
-- ARGV[9] actor            ARGV[10] source ('' none)
-- ARGV[11] events cap      ARGV[12] audit cap
--
-- Returns {'ok', previous state or ''} after writing the hash, the index, one
-- event and one audit entry; otherwise writes nothing and returns
-- {'bound', other device} | {'hascert'} | {'refused', current state}.
local dev, fpkey, events, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, fp, serial, not_after, state, tenant = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local sources, now, actor, source = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local events_cap, audit_minid = ARGV[11], ARGV[12]

local owner = redis.call('GET', fpkey)
if owner and owner ~= id then
  return {'bound', owner}
end

local prev = ''
if redis.call('EXISTS', dev) == 1 then
  local cur = redis.call('HMGET', dev, 'state', 'cert_fp')
  if cur[2] and cur[2] ~= '' then
    return {'hascert'}
  end
  prev = cur[1] or ''
  if not listed(sources, prev) then
    return {'refused', prev}
  end
else
  redis.call('HSET', dev, 'created', now)
end

local f = {'state', state, 'cert_fp', fp, 'cert_serial', serial, 'not_after', not_after,
  'updated', now, 'provisioned', now}
append_set(f, 'tenant', tenant)
if state == 'active' then append(f, {'claimed', now}) end
redis.call('HSET', dev, unpack(f))
-- leftovers of an earlier life of a manufactured record (an operator
-- registered this certificate: no fleet-provisioning requester)
redis.call('HDEL', dev, 'cert_fp_next', 'cert_serial_next', 'not_after_next', 'rotate_deadline',
  'rotate_required', 'reason', 'prov_class', 'prov_fp', 'prov_client_id', 'prov_source', 'prov_template')
if state ~= 'active' then
  redis.call('HDEL', dev, 'tenant')
end
redis.call('SET', fpkey, id)

local cur = redis.call('HMGET', dev, 'tenant', 'policy')
state_event(events, events_cap, id, state, cur[1] or '', cur[2] or '')

local a = {'action', 'register', 'device', id, 'result', 'ok'}
append_set(a, 'from', prev)
audit_log(audit, audit_minid, actor, source, now, append(a, {'to', state, 'cert_fp', fp}))

return {'ok', prev}
