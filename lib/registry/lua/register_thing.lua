-- register_thing: RegisterThing of fleet provisioning in one step
-- (docs/registry.md): consume an ownership token, check the allowlist, bind
-- the certificate the token was issued with, set the initial state; or, for
-- a device that is already provisioned and a template whose `reprovision`
-- policy lets it come back, re-provision it: the new certificate replaces
-- the old ones in the same step (docs/provisioning.md, "Re-provisioning").
--
-- KEYS[1] onb:tok:<sha256(token)>  KEYS[2] onb:pending:<cert fp>
-- KEYS[3] onb:dev:{ID}             KEYS[4] onb:fp:<cert fp>
-- KEYS[5] onb:events               KEYS[6] onb:audit
-- KEYS[7] onb:fp:<device's cert fp as C read it>      (KEYS[3] again when none)
-- KEYS[8] onb:fp:<device's cert fp next as C read it> (KEYS[3] again when none)
-- KEYS[9] onb:cc:<device's claim code as C read it>   (KEYS[3] again when none)
-- KEYS[10] onb:crl:revoked
-- ARGV[1] device id                ARGV[2] cert fp (read from KEYS[1] by C)
-- ARGV[3] requester client id      ARGV[4] requester class
-- ARGV[5] requester fp             ARGV[6] serial ('' none)
-- ARGV[7] '1' allowlist required   ARGV[8] new state
-- ARGV[9] tenant ('' none)         ARGV[10] policy ('' default)
-- ARGV[11] states that may move to ARGV[8], comma-separated (lib/registry/state.c)
-- ARGV[12] now (ms, from the caller: scripts never read the clock)
-- ARGV[13] actor                   ARGV[14] source ('' none)
-- ARGV[15] events cap              ARGV[16] audit cap
-- ARGV[17] sha256 of the request in canonical form (template + parameters)
-- ARGV[18] the template's reprovision policy: never, same-identity, replace
-- ARGV[19..21] cert_fp, cert_fp_next, claimcode as C read them ('' none)
-- ARGV[22] the request's template ('' none): recorded; replace needs the same
--
-- Returns {'ok', previous state or '', '' or 'reprovision', possible clone
-- '1' or '0'} after marking the token used (by this request, for this
-- device: the record keeps its expiry), deleting the pending entry, writing
-- the device, the index, the events and one audit entry; {'replay'} when the
-- token's own requester sends the request that used it again and the
-- certificate is still bound to that device (one audit entry, result
-- 'replay', nothing else written: the answer to the first was lost);
-- {'refused', reason} (an ONB_RT_* token of lib/provisioning/provreg.h) after writing
-- one audit entry and nothing else; {'retry'} (a re-provisioning whose
-- pointers moved since C read them) writing nothing. A token presented by
-- another requester is left in place for its owner.
local tok, pending, dev, fpkey, events, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local oldkey, nextkey, cc, crlkey = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local id, fp, client_id, idclass, requester_fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local serial, required, state, tenant, policy = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local sources, now, actor, source = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
local events_cap, audit_minid, request = ARGV[15], ARGV[16], ARGV[17]
local mode, oldfp, oldnext, code, template = ARGV[18], ARGV[19], ARGV[20], ARGV[21], ARGV[22]

local function set(v) return v and v ~= '' end

-- set once the device turns out to be provisioned already: refusals then
-- say under which policy, and success is audited as `reprovision`
local reprov = false

local function log(result, fields)
  local action = 'register-thing'
  if reprov and result == 'ok' then action = 'reprovision' end
  local a = {'action', action, 'device', id, 'result', result}
  if reprov then append(a, {'reprovision', mode}) end
  append(a, fields, {'client_id', client_id, 'class', idclass, 'requester_fp', requester_fp})
  append_set(a, 'serial', serial)
  audit_log(audit, audit_minid, actor, source, now, a)
end

local function refuse(reason)
  log('refused', {'reason', reason})
  return {'refused', reason}
end

-- who provisioned the device: kept so that a later `replace` can tell
-- whether the same requester came back
local function requester_fields(f)
  append(f, {'prov_class', idclass, 'prov_fp', requester_fp, 'prov_client_id', client_id,
    'prov_source', source, 'prov_template', template})
end

-- what the template gives a device it provisions: its tenant, its policy,
-- and the claim time when it starts active
local function template_fields(f)
  append_set(f, 'tenant', tenant)
  append_set(f, 'policy', policy)
  if state == 'active' then append(f, {'claimed', now}) end
end

-- The device was provisioned and the policy lets it come back (checked
-- below, before any write; t and cur are the token's and the device's
-- fields): the new certificate replaces the current one and an unused
-- next one at once. same-identity keeps the device's state,
-- tenant, policy and claim code (it proved to be the same device);
-- replace resets it to the template's initial state, as a first
-- provisioning would (the requester is not proven to be the device that
-- was there: the tenant's binding and claim code must not pass to it).
local function reprovision(t, cur)
  local cur_state, cur_tenant, cur_policy = cur[1], cur[5] or '', cur[6] or ''
  local new_state, new_tenant, new_policy = cur_state, cur_tenant, cur_policy
  local clone = '0'
  local fields = {}

  if oldfp ~= '' and redis.call('GET', oldkey) == id then redis.call('DEL', oldkey) end
  if oldnext ~= '' and redis.call('GET', nextkey) == id then redis.call('DEL', nextkey) end
  local serials = {}
  for i = 9, 10 do
    if set(cur[i]) then
      crl_add(crlkey, cur[i], now, 4, id) -- superseded
      table.insert(serials, cur[i])
    end
  end

  local f = {'cert_fp', fp, 'cert_serial', t[2] or '', 'not_after', t[3] or '0', 'updated', now,
    'provisioned', now, 'reprovisioned', now}
  append_set(f, 'serial', serial)
  if mode == 'replace' then
    new_state, new_tenant, new_policy = state, tenant, policy
    append(f, {'state', state})
    -- a different requester than the one that provisioned before (class,
    -- certificate, or address when both are known): maybe a clone
    local pc, pf, ps = cur[11] or '', cur[12] or '', cur[13] or ''
    if pf == '' or pc ~= idclass or pf ~= requester_fp or (ps ~= '' and source ~= '' and ps ~= source) then
      clone = '1'
    end
    local before = 'unknown'
    if pf ~= '' then
      before = pc .. ' ' .. pf
      if ps ~= '' then before = before .. ' from ' .. ps end
    end
    fields = {'possible_clone', clone, 'previous_requester', before}
    if cur_tenant ~= '' then
      append(fields, {'tenant', cur_tenant})
    end
    if code ~= '' then cc_revoke(cc, 'reprovisioned', now) end
    redis.call('HDEL', dev, 'tenant', 'policy', 'claimed', 'claimcode')
    template_fields(f)
  end
  requester_fields(f)
  redis.call('HSET', dev, unpack(f))
  redis.call('HDEL', dev, 'cert_fp_next', 'cert_serial_next', 'not_after_next', 'rotate_deadline',
    'rotate_required', 'reason')
  redis.call('SET', fpkey, id)

  -- `cert` names the only certificate that may connect now: every broker
  -- disconnects a live session on any other (plugin/rotation.c), at once
  redis.call('XADD', events, 'MAXLEN', '~', events_cap, '*',
    'type', 'cert', 'device', id, 'state', new_state, 'tenant', new_tenant, 'policy', new_policy,
    'cert_fp', fp, 'cert_fp_next', '', 'deadline', '0')
  -- after it, so that it finds the old session ended: an offline device's
  -- parked session follows the new state, tenant and policy (replace)
  if new_state ~= cur_state or new_tenant ~= cur_tenant or new_policy ~= cur_policy then
    state_event(events, events_cap, id, new_state, new_tenant, new_policy)
  end

  local a = {'from', cur_state, 'to', new_state, 'cert_fp', fp, 'superseded', oldfp}
  append_set(a, 'superseded_next', oldnext)
  if #serials > 0 then append(a, {'superseded_serials', table.concat(serials, ',')}) end
  append(a, fields)
  local why = 're-provisioned: the same birth certificate'
  if mode == 'replace' then
    why = 're-provisioned, reset to ' .. new_state
    if clone == '1' then
      why = why .. '; possible clone: the requester differs from the one that provisioned before'
    end
  end
  log('ok', append(a, {'reason', why}))
  return {'ok', cur_state, 'reprovision', clone}
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

-- the device: allowlisted when required, not provisioned yet, unless the
-- template's policy lets a provisioned one come back
local cur = redis.call('HMGET', dev, 'state', 'cert_fp', 'birth_fp', 'serial', 'tenant', 'policy',
  'cert_fp_next', 'claimcode', 'cert_serial', 'cert_serial_next', 'prov_class', 'prov_fp', 'prov_source',
  'prov_template')
local exists = redis.call('EXISTS', dev) == 1
local prev = ''
if exists then
  prev = cur[1] or 'invalid'
  if set(cur[2]) or prev ~= 'manufactured' then
    reprov = true
    if mode ~= 'same-identity' and mode ~= 'replace' then
      return refuse('already-provisioned')
    end
    -- quarantine is an operator's hold and revoked is final: neither is
    -- lifted by whoever holds a claim or birth certificate
    if prev ~= 'unclaimed' and prev ~= 'active' then
      return refuse('reprovision-state')
    end
    -- replace trusts nothing but the template's own admission: it must not
    -- let a claim certificate take over devices that another template
    -- (say one with never) or an operator registered under the same name
    if mode == 'replace' and (template == '' or (cur[14] or '') ~= template) then
      return refuse('reprovision-template')
    end
  elseif not listed(sources, prev) then
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
-- same-identity: only the device's own birth certificate (listed, or
-- recorded when it first enrolled) proves it is the same device
if reprov and mode == 'same-identity' and (idclass ~= 'birth' or not set(cur[3])) then
  return refuse('reprovision-identity')
end
if redis.call('EXISTS', fpkey) == 1 then
  return refuse('cert-bound')
end
if reprov and ((cur[2] or '') ~= oldfp or (cur[7] or '') ~= oldnext or (cur[8] or '') ~= code) then
  return {'retry'}
end

redis.call('DEL', pending)
-- used, not deleted: until it expires the record answers a resent request
redis.call('HSET', tok, 'used', now, 'device', id, 'request', request)
if reprov then
  return reprovision(t, cur)
end
if not exists then
  redis.call('HSET', dev, 'created', now)
end
local f = {'state', state, 'cert_fp', fp, 'cert_serial', t[2] or '', 'not_after', t[3] or '0',
  'updated', now, 'provisioned', now}
append_set(f, 'serial', serial)
template_fields(f)
if idclass == 'birth' and not set(cur[3]) then
  -- nothing listed: the first birth certificate is remembered
  append(f, {'birth_fp', requester_fp})
end
requester_fields(f)
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

state_event(events, events_cap, id, state, tenant, policy)
local fields = {'to', state, 'cert_fp', fp}
if prev ~= '' then
  fields = {'from', prev, 'to', state, 'cert_fp', fp}
end
log('ok', fields)
return {'ok', prev, '', '0'}
