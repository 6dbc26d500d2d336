-- decommission: retire a device's operational identity and return it to
-- `manufactured`, so that its birth identity can enrol it again after a
-- factory reset, in one step (docs/registry.md). The transition is
-- X -> decommissioned -> manufactured, both checked against lib/registry/state.c.
--
-- KEYS[1] onb:dev:{ID}
-- KEYS[2] onb:fp:<cert fp>        (KEYS[1] again when C read none)
-- KEYS[3] onb:fp:<cert fp next>   (KEYS[1] again when C read none)
-- KEYS[4] onb:cc:<claim code>     (KEYS[1] again when C read none)
-- KEYS[5] onb:crl:revoked         KEYS[6] onb:events        KEYS[7] onb:audit
-- ARGV[1] device id     ARGV[2] cert fp C read ('' none)   ARGV[3] next fp C read ('' none)
-- ARGV[4] claim code hash C read ('' none)
-- ARGV[5] states that may move to decommissioned, comma-separated (lib/registry/state.c)
-- ARGV[6] '1' when decommissioned may move to manufactured (lib/registry/state.c)
-- ARGV[7] reason ('' none)   ARGV[8] now (ms)   ARGV[9] actor   ARGV[10] source ('' none)
-- ARGV[11] events cap        ARGV[12] audit cap
--
-- Returns {'ok', previous state, serials revoked (comma-separated)} after
-- the change: certificate bindings removed, serials put on the CRL
-- (reason cessationOfOperation, keyCompromise for a revoked device), claim
-- code revoked, tenant/policy/certificate
-- fields removed (serial, birth_fp, batch, created kept), state
-- manufactured, one `state` event (brokers kick the live session) and one
-- audit entry; {'notfound'} or {'refused', state} after one audit entry;
-- {'retry'} (a pointer moved since C read it) writing nothing.
local dev, fpkey, nextkey, cc = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local crlkey, events, audit = KEYS[5], KEYS[6], KEYS[7]
local id, fp, nextfp, code, sources, back = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local reason, now, actor, source = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local events_cap, audit_minid = ARGV[11], ARGV[12]

local function log(result, fields, why)
  local f = append({'action', 'decommission', 'device', id, 'result', result}, fields)
  audit_log(audit, audit_minid, actor, source, now, append_set(f, 'reason', why or reason))
end

local cur = redis.call('HMGET', dev, 'state', 'cert_fp', 'cert_fp_next', 'claimcode', 'cert_serial',
  'not_after', 'cert_serial_next', 'not_after_next', 'tenant')
if not cur[1] then
  log('error', {}, 'unknown device')
  return {'notfound'}
end
local from = cur[1]
-- a record left in decommissioned (by an older version) only takes the second step
if (from ~= 'decommissioned' and not listed(sources, from)) or back ~= '1' then
  log('refused', {'from', from, 'to', 'manufactured'}, 'illegal transition ' .. from .. ' -> decommissioned')
  return {'refused', from}
end
if (cur[2] or '') ~= fp or (cur[3] or '') ~= nextfp or (cur[4] or '') ~= code then
  return {'retry'}
end

if fp ~= '' and redis.call('GET', fpkey) == id then redis.call('DEL', fpkey) end
if nextfp ~= '' and redis.call('GET', nextkey) == id then redis.call('DEL', nextkey) end
local serials = {}
for i = 5, 7, 2 do
  local s = cur[i]
  if s and s ~= '' then
    crl_add(crlkey, s, now, from == 'revoked' and 1 or 5, id) -- keyCompromise, cessationOfOperation
    table.insert(serials, s)
  end
end
if code ~= '' then cc_revoke(cc, 'decommissioned', now) end
redis.call('HSET', dev, 'state', 'manufactured', 'updated', now, 'decommissioned', now)
if reason ~= '' then
  redis.call('HSET', dev, 'reason', reason)
else
  redis.call('HDEL', dev, 'reason')
end
redis.call('HDEL', dev, 'tenant', 'policy', 'cert_fp', 'cert_fp_next', 'cert_serial', 'not_after',
  'cert_serial_next', 'not_after_next', 'rotate_deadline', 'rotate_required', 'claimcode', 'claimed',
  'provisioned', 'reprovisioned', 'prov_class', 'prov_fp', 'prov_client_id', 'prov_source', 'prov_template')
state_event(events, events_cap, id, 'manufactured', '', '')
local joined = table.concat(serials, ',')
local fields = {'from', from, 'to', 'manufactured'}
append_set(fields, 'cert_fp', fp)
append_set(fields, 'serials', joined)
append_set(fields, 'tenant', cur[9])
log('ok', fields)
return {'ok', from, joined}
