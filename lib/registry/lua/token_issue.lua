-- token_issue: record a certificate just issued to a requester and the hash
-- of its ownership token, both expiring, in one step (docs/registry.md).
-- The token itself never reaches Redis: KEYS[1] is named by its SHA-256.
--
-- KEYS[1] onb:tok:<sha256(token)>   KEYS[2] onb:pending:<cert fp>
-- KEYS[3] onb:fp:<cert fp>
-- ARGV[1] certificate fingerprint   ARGV[2] certificate serial (hex)
-- ARGV[3] not_after (s)             ARGV[4] requester client id
-- ARGV[5] requester class           ARGV[6] requester certificate fingerprint
-- ARGV[7] now (ms, from the caller) ARGV[8] time to live (ms)
-- ARGV[9] sha256(token) hex (the name of KEYS[1], no secret)
-- With KEYS[4] (onb:audit): ARGV[10] the audit retention's MINID, ARGV[11..]
-- the field/value pairs of the entry to append when the token is recorded
-- (claimsvc's "certificate issued"; one round trip instead of two).
--
-- Returns {'ok'} after writing both keys with PEXPIRE (and the audit entry);
-- otherwise writes nothing and returns {'exists'} (token hash already
-- recorded), {'pending'} (this certificate already has a token) or
-- {'bound', device}.
local tok, pending, fpkey = KEYS[1], KEYS[2], KEYS[3]
local fp, serial, not_after = ARGV[1], ARGV[2], ARGV[3]
local client_id, idclass, requester_fp = ARGV[4], ARGV[5], ARGV[6]
local now, ttl, hash = ARGV[7], ARGV[8], ARGV[9]

if redis.call('EXISTS', tok) == 1 then
  return {'exists'}
end
if redis.call('EXISTS', pending) == 1 then
  return {'pending'}
end
local owner = redis.call('GET', fpkey)
if owner then
  return {'bound', owner}
end

-- the audit entry first: if appending fails, nothing else is written
if KEYS[4] then
  redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[10], '*', unpack(ARGV, 11))
end
redis.call('HSET', tok, 'cert_fp', fp, 'cert_serial', serial, 'not_after', not_after,
  'client_id', client_id, 'idclass', idclass, 'requester_fp', requester_fp, 'created', now)
redis.call('PEXPIRE', tok, ttl)
redis.call('SET', pending, hash, 'PX', ttl)
return {'ok'}
