-- rotate_promote: a device connected with its next certificate (the one a
-- renewal issued): it becomes the current one and the previous certificate
-- is unbound and put on the CRL (reason superseded), in one step. Called
-- by the broker plugin at CONNECT (docs/provisioning.md "Certificate rotation").
--
-- KEYS[1] onb:dev:{ID}              KEYS[2] onb:fp:<current fp as C read it>
-- KEYS[3] onb:crl:revoked           KEYS[4] onb:events        KEYS[5] onb:audit
-- ARGV[1] device id                 ARGV[2] fp presented (must be cert_fp_next)
-- ARGV[3] current fp as C read it   ARGV[4] now (ms)
-- ARGV[5] actor                     ARGV[6] source ('' none)
-- ARGV[7] events cap                ARGV[8] audit cap
--
-- Returns {'ok'} after the change, one `cert` event and one audit entry;
-- {'notfound'} or {'notnext'} (fp is not, or no longer, the next
-- certificate) writing nothing; {'retry'} (the current certificate changed
-- since C read it) writing nothing.
local dev, oldkey, crlkey, events, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, fp, oldfp, now, actor, source = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local events_cap, audit_minid = ARGV[7], ARGV[8]

local cur = redis.call('HMGET', dev, 'state', 'cert_fp', 'cert_fp_next', 'cert_serial', 'not_after',
  'cert_serial_next', 'not_after_next', 'tenant', 'policy')
if not cur[1] then return {'notfound'} end
if (cur[3] or '') ~= fp or fp == '' then return {'notnext'} end
if (cur[2] or '') ~= oldfp then return {'retry'} end

if oldfp ~= '' and redis.call('GET', oldkey) == id then redis.call('DEL', oldkey) end
local old_serial = cur[4] or ''
crl_add(crlkey, old_serial, now, 4, id) -- superseded
redis.call('HSET', dev, 'cert_fp', fp, 'cert_serial', cur[6] or '', 'not_after', cur[7] or '0',
  'updated', now)
redis.call('HDEL', dev, 'cert_fp_next', 'cert_serial_next', 'not_after_next', 'rotate_deadline',
  'rotate_required')
redis.call('XADD', events, 'MAXLEN', '~', events_cap, '*',
  'type', 'cert', 'device', id, 'state', cur[1], 'tenant', cur[8] or '', 'policy', cur[9] or '',
  'cert_fp', fp, 'cert_fp_next', '', 'deadline', '0')

audit_log(audit, audit_minid, actor, source, now, {'action', 'rotate-promote', 'device', id, 'result', 'ok',
  'cert_fp', fp, 'superseded', oldfp, 'superseded_serial', old_serial})
return {'ok'}
