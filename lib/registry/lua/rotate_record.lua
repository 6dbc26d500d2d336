-- rotate_record: a device renewed its certificate over MQTT (claimsvc signed
-- a new one); record it as the device's next certificate, in one step
-- (docs/provisioning.md "Certificate rotation", docs/registry.md).
--
-- KEYS[1] onb:dev:{ID}          KEYS[2] onb:fp:<new fp>
-- KEYS[3] onb:crl:revoked       KEYS[4] onb:events            KEYS[5] onb:audit
-- KEYS[6] onb:fp:<previous next fp> (only when C read one)
-- ARGV[1] device id             ARGV[2] requester fp (the certificate the request came with)
-- ARGV[3] new fp                ARGV[4] new serial (hex)     ARGV[5] new not_after (s)
-- ARGV[6] grace (ms)            ARGV[7] previous next fp as C read it ('' none)
-- ARGV[8] now (ms, from the caller: scripts never read the clock)
-- ARGV[9] actor                 ARGV[10] source ('' none)
-- ARGV[11] events cap           ARGV[12] audit cap
--
-- Returns {'ok', deadline} after writing cert_fp_next, cert_serial_next,
-- not_after_next, rotate_deadline = min(existing deadline, now + grace), the
-- index of the new certificate, one `cert` event and one audit entry (a
-- previous, never used next certificate is unbound and put on the CRL,
-- reason superseded); {'notfound'}, {'state', state}, {'notcurrent'} or
-- {'bound'} after one audit entry; {'retry'} (the next certificate changed
-- since C read it) writing nothing.
local dev, newkey, crlkey, events, audit, oldnextkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, requester, fp, serial, not_after = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local grace, prevnext, now, actor, source = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local events_cap, audit_minid = ARGV[11], ARGV[12]

local function log(result, fields)
  audit_log(audit, audit_minid, actor, source, now,
    append({'action', 'rotate', 'device', id, 'result', result}, fields, {'requester_fp', requester}))
end

local cur = redis.call('HMGET', dev, 'state', 'cert_fp', 'cert_fp_next', 'tenant', 'policy',
  'rotate_deadline', 'cert_serial_next')
if not cur[1] then
  log('error', {'reason', 'unknown device'})
  return {'notfound'}
end
local state = cur[1]
if state ~= 'unclaimed' and state ~= 'active' and state ~= 'quarantined' then
  log('refused', {'reason', 'device is ' .. state})
  return {'state', state}
end
if (cur[2] or '') ~= requester then
  log('refused', {'reason', 'the request did not come with the current certificate'})
  return {'notcurrent'}
end
if (cur[3] or '') ~= prevnext or (prevnext ~= '' and not oldnextkey) then
  return {'retry'}
end
if redis.call('EXISTS', newkey) == 1 then
  log('refused', {'reason', 'certificate already bound', 'cert_fp_next', fp})
  return {'bound'}
end

local fields = {'cert_fp_next', fp, 'serial_next', serial}
if prevnext ~= '' then
  -- a next certificate the device never used (it asked again): unbind it
  if redis.call('GET', oldnextkey) == id then redis.call('DEL', oldnextkey) end
  crl_add(crlkey, cur[7], now, 4, id) -- superseded
  append(fields, {'superseded', prevnext})
end

local deadline = tonumber(now) + tonumber(grace)
local existing = tonumber(cur[6] or '0') or 0
if existing > 0 and existing < deadline then deadline = existing end
deadline = string.format('%d', deadline)
redis.call('HSET', dev, 'cert_fp_next', fp, 'cert_serial_next', serial, 'not_after_next', not_after,
  'rotate_deadline', deadline, 'updated', now)
redis.call('HDEL', dev, 'rotate_required')
redis.call('SET', newkey, id)
redis.call('XADD', events, 'MAXLEN', '~', events_cap, '*',
  'type', 'cert', 'device', id, 'state', state, 'tenant', cur[4] or '', 'policy', cur[5] or '',
  'cert_fp', cur[2], 'cert_fp_next', fp, 'deadline', deadline)
append(fields, {'deadline', deadline})
log('ok', fields)
return {'ok', deadline}
