-- claim_redeem: redeem a claim code for a tenant, in one step
-- (docs/claiming.md): lockout check, code check, device check, then bind
-- the device to the tenant, consume the code, and announce the change.
--
-- KEYS[1] onb:cc:<sha256(code)>   KEYS[2] onb:events   KEYS[3] onb:audit
-- KEYS[4] onb:ccfail:tenant:<T>   KEYS[5] onb:cclock:tenant:<T>
-- then, when ARGV[12] is '1': onb:ccfail:source:<T>/<S>, onb:cclock:source:<T>/<S>
--   (the tenant at that source: a source is never locked for every tenant)
-- then, when ARGV[13] is '1': onb:dev:{ID} of the device C read from KEYS[1]
-- ARGV[1] code hash       ARGV[2] tenant     ARGV[3] expected device ('' any)
-- ARGV[4] now (ms, from the caller: scripts never read the clock)
-- ARGV[5] actor           ARGV[6] source ('' none)
-- ARGV[7] events cap      ARGV[8] audit cap
-- ARGV[9] failures that lock an identity out   ARGV[10] their window (ms)
-- ARGV[11] lockout (ms)
-- ARGV[12] '1' when a rate-limit source is given   ARGV[13] '1' with a device key
-- ARGV[14] states that may move to active, comma-separated (lib/registry/state.c)
--
-- Returns, after exactly one audit entry each:
--   {'ok', device}                   device active for the tenant, code used, one event
--   {'locked', which, ms left}       an identity is locked out; the code is not read
--   {'invalid', why, '1'|'0'}        unknown/used/revoked/expired/other device; counted,
--                                    '1' when this failure started a lockout
--   {'notclaimable', device, state}  good code, device not unclaimed; not counted
-- Every refusal changes nothing but the audit stream and the failure counters.
local cc, events, audit, tfail, tlock = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local hash, tenant, want_dev, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local actor, source, events_cap, audit_minid = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local max_fail, window, lockout = tonumber(ARGV[9]), ARGV[10], ARGV[11]
local has_source, has_dev, sources = ARGV[12] == '1', ARGV[13] == '1', ARGV[14]

local sfail, slock, dev = nil, nil, nil
local k = 6
if has_source then sfail, slock = KEYS[6], KEYS[7]; k = 8 end
if has_dev then dev = KEYS[k] end

local function log(result, device, fields)
  local f = {'action', 'claim'}
  append_set(f, 'device', device)
  append(f, {'result', result, 'tenant', tenant, 'code', string.sub(hash, 1, 16)}, fields)
  audit_log(audit, audit_minid, actor, source, now, f)
end

-- 1. a locked-out identity is refused before the code is looked at
for _, l in ipairs({{tlock, 'tenant'}, {slock, 'source'}}) do
  if l[1] then
    local left = redis.call('PTTL', l[1])
    if left > 0 then
      log('refused', '', {'reason', 'locked-out', 'lockout', l[2]})
      return {'locked', l[2], left}
    end
  end
end

-- 2. the code: known, for the expected device, issued, not expired
local c = redis.call('HMGET', cc, 'device', 'status', 'expires', 'reason')
local why = nil
if not c[1] then
  why = 'unknown'
elseif want_dev ~= '' and c[1] ~= want_dev then
  why = 'device-mismatch'
elseif c[2] == 'used' then
  why = 'used'
elseif c[2] == 'revoked' then
  why = (c[4] == 'superseded' or c[4] == 'released') and c[4] or 'revoked'
elseif c[2] ~= 'issued' then
  why = 'corrupt'
elseif tonumber(c[3] or '0') <= tonumber(now) then
  why = 'expired'
elseif not dev or dev ~= 'onb:dev:{' .. c[1] .. '}' then
  why = 'unknown' -- C read another record: cannot happen with an immutable device field
end
if why then
  local locked = {}
  for _, f in ipairs({{tfail, tlock, 'tenant'}, {sfail, slock, 'source'}}) do
    if f[1] then
      local n = redis.call('INCR', f[1])
      if n == 1 then redis.call('PEXPIRE', f[1], window) end
      if n >= max_fail then
        redis.call('SET', f[2], now, 'PX', lockout)
        redis.call('DEL', f[1])
        table.insert(locked, f[3])
      end
    end
  end
  local fields = {'reason', why}
  if want_dev ~= '' and want_dev ~= (c[1] or '') then
    append(fields, {'uri_device', want_dev})
  end
  if #locked > 0 then
    append(fields, {'lockout', table.concat(locked, ',')})
  end
  log('refused', c[1], fields)
  return {'invalid', why, #locked > 0 and '1' or '0'}
end

-- 3. the device: unclaimed (and the transition table agrees)
local id = c[1]
local d = redis.call('HMGET', dev, 'state', 'tenant')
local state = d[1] or 'unknown'
if state ~= 'unclaimed' or not listed(sources, state) then
  log('refused', id, {'reason', 'device-' .. state})
  return {'notclaimable', id, state}
end

-- 4. bind, consume, announce
redis.call('HSET', dev, 'state', 'active', 'tenant', tenant, 'updated', now, 'claimed', now)
redis.call('HDEL', dev, 'policy', 'reason')
redis.call('HSET', cc, 'status', 'used', 'tenant', tenant, 'used', now)
state_event(events, events_cap, id, 'active', tenant, '')
log('ok', id, {'from', 'unclaimed', 'to', 'active'})
return {'ok', id}
