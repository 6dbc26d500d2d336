-- register_thing: RegisterThing of fleet provisioning in one step
-- (docs/registry.md): consume an ownership token, check the allowlist, bind
-- the certificate the token was issued with, set the initial state.
--
-- KEYS[1] onb:tok:<sha256(token)>  KEYS[2] onb:pending:<cert fp>
-- KEYS[3] onb:dev:{ID}             KEYS[4] onb:fp:<cert fp>
-- KEYS[5] onb:events               KEYS[6] onb:audit
-- ARGV[1] device id                ARGV[2] cert fp (read from KEYS[1] by C)
-- ARGV[3] requester client id      ARGV[4] requester class
-- ARGV[5] requester fp             ARGV[6] serial ('' none)
-- ARGV[7] '1' allowlist required   ARGV[8] new state
-- ARGV[9] tenant ('' none)         ARGV[10] policy ('' default)
-- ARGV[11] states that may move to ARGV[8], comma-separated (lib/state.c)
-- ARGV[12] now (ms, from the caller: scripts never read the clock)
-- ARGV[13] actor                   ARGV[14] source ('' none)
-- ARGV[15] events cap              ARGV[16] audit cap
-- ARGV[17] sha256 of the request in canonical form (template + parameters)
--
-- Returns {'ok', previous state or ''} after marking the token used (by this
-- request, for this device: the record keeps its expiry), deleting the
-- pending entry, writing the device, the index, one event and one audit
-- entry; {'replay'} when the token's own requester sends the request that
-- used it again and the certificate is still bound to that device (one audit
-- entry, result 'replay', nothing else written: the answer to the first was
-- lost); or {'refused', reason} (an ONB_RT_* token of lib/onb/provreg.h)
-- after writing one audit entry and nothing else. A token presented by
-- another requester is left in place for its owner.
local tok, pending, dev, fpkey, events, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, fp, client_id, idclass, requester_fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local serial, required, state, tenant, policy = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local sources, now, actor, source = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
local events_cap, audit_minid, request = ARGV[15], ARGV[16], ARGV[17]

local function allowed(from)
  for s in string.gmatch(sources, '[^,]+') do
    if s == from then return true end
  end
  return false
end

local function set(v) return v and v ~= '' end

local function log(result, fields)
  local a = {'actor', actor}
  if source ~= '' then
    table.insert(a, 'source'); table.insert(a, source)
  end
  for _, v in ipairs({'action', 'register-thing', 'device', id, 'result', result}) do table.insert(a, v) end
  for _, v in ipairs(fields) do table.insert(a, v) end
  for _, v in ipairs({'client_id', client_id, 'class', idclass, 'requester_fp', requester_fp}) do
    table.insert(a, v)
  end
  if serial ~= '' then
    table.insert(a, 'serial'); table.insert(a, serial)
  end
  table.insert(a, 'ts'); table.insert(a, now)
  redis.call('XADD', audit, 'MINID', '~', audit_minid, '*', unpack(a))
end

local function refuse(reason)
  log('refused', {'reason', reason})
  return {'refused', reason}
end

-- the token: present (so unexpired), for this certificate
local t = redis.call('HMGET', tok, 'cert_fp', 'cert_serial', 'not_after', 'client_id', 'idclass', 'requester_fp',
  'used', 'device', 'request')
if not t[1] or t[1] ~= fp then
  return refuse('token-invalid')
end
local mine = t[4] == client_id and t[5] == idclass and t[6] == requester_fp
-- used: it never registers anything again; only the request that used it,
-- from its requester, is told again that it succeeded, while it still holds
if t[7] then
  if not mine or t[8] ~= id or t[9] ~= request or redis.call('GET', fpkey) ~= id then
    return refuse('token-used')
  end
  log('replay', {'reason', 'the same request again: already registered, nothing changed', 'cert_fp', fp})
  return {'replay'}
end
-- issued to this very connection: same client id, class and certificate
if not mine then
  return refuse('token-foreign')
end

-- the device: allowlisted when required, not provisioned yet
local cur = redis.call('HMGET', dev, 'state', 'cert_fp', 'birth_fp', 'serial')
local exists = redis.call('EXISTS', dev) == 1
local prev = ''
if exists then
  prev = cur[1] or 'invalid'
  if set(cur[2]) or prev ~= 'manufactured' or not allowed(prev) then
    return refuse('already-provisioned')
  end
  if serial ~= '' and set(cur[4]) and cur[4] ~= serial then
    return refuse('not-allowlisted')
  end
elseif required == '1' then
  return refuse('not-allowlisted')
end
-- birth mode: the birth certificate listed for this device, if any
if idclass == 'birth' and set(cur[3]) and cur[3] ~= requester_fp then
  return refuse('birth-mismatch')
end
if redis.call('EXISTS', fpkey) == 1 then
  return refuse('cert-bound')
end

redis.call('DEL', pending)
-- used, not deleted: until it expires the record answers a resent request
redis.call('HSET', tok, 'used', now, 'device', id, 'request', request)
if not exists then
  redis.call('HSET', dev, 'created', now)
end
local f = {'state', state, 'cert_fp', fp, 'cert_serial', t[2] or '', 'not_after', t[3] or '0',
  'updated', now, 'provisioned', now}
if serial ~= '' then
  table.insert(f, 'serial'); table.insert(f, serial)
end
if tenant ~= '' then
  table.insert(f, 'tenant'); table.insert(f, tenant)
end
if policy ~= '' then
  table.insert(f, 'policy'); table.insert(f, policy)
end
if state == 'active' then
  table.insert(f, 'claimed'); table.insert(f, now)
end
if idclass == 'birth' and not set(cur[3]) then
  -- nothing listed: the first birth certificate is remembered
  table.insert(f, 'birth_fp'); table.insert(f, requester_fp)
end
redis.call('HSET', dev, unpack(f))
redis.call('HDEL', dev, 'cert_fp_next', 'cert_serial_next', 'not_after_next', 'rotate_deadline',
  'rotate_required', 'reason')
if tenant == '' then
  redis.call('HDEL', dev, 'tenant')
end
if policy == '' then
  redis.call('HDEL', dev, 'policy')
end
redis.call('SET', fpkey, id)

redis.call('XADD', events, 'MAXLEN', '~', events_cap, '*',
  'type', 'state', 'device', id, 'state', state, 'tenant', tenant, 'policy', policy)
local fields = {'to', state, 'cert_fp', fp}
if prev ~= '' then
  fields = {'from', prev, 'to', state, 'cert_fp', fp}
end
log('ok', fields)
return {'ok', prev}
