-- allow_add: put one device on the allowlist as a `manufactured` record,
-- unless the device exists (docs/registry.md). Called once per device,
-- pipelined; the caller writes one audit entry per batch.
--
-- KEYS[1] onb:dev:{ID}
-- ARGV[1] serial ('' none)   ARGV[2] birth certificate fingerprint ('' none)
-- ARGV[3] batch ('' none)    ARGV[4] now (ms, from the caller)
--
-- Returns 1 after creating the record, 0 (nothing written) when the device
-- already exists, whatever its state.
local dev = KEYS[1]
local serial, birth_fp, batch, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', dev) == 1 then
  return 0
end
local f = {'state', 'manufactured', 'created', now, 'updated', now}
append_set(f, 'serial', serial)
append_set(f, 'birth_fp', birth_fp)
append_set(f, 'batch', batch)
redis.call('HSET', dev, unpack(f))
return 1
