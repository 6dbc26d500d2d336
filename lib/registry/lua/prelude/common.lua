-- The prelude: helpers every script of lib/registry/lua/ shares, put in front of
-- each one at build time (cmake/EmbedLua.cmake). Only local functions, and
-- nothing read from KEYS or ARGV, so each script's KEYS/ARGV positions are
-- its own. The whole scripts, as Redis runs them, are written to
-- build/lib/registry/lua/ for redis-cli (docs/registry.md, "Scripts").

-- true when s is one of the comma-separated names in list (the allowed
-- source states of a transition, from lib/registry/state.c)
local function listed(list, s)
  for x in string.gmatch(list, '[^,]+') do
    if x == s then return true end
  end
  return false
end

-- appends the values of each list given to t, in order; returns t
local function append(t, ...)
  for _, more in ipairs({...}) do
    for _, v in ipairs(more) do table.insert(t, v) end
  end
  return t
end

-- appends the pair name, value to t unless value is '' or nil; returns t
local function append_set(t, name, value)
  if value and value ~= '' then append(t, {name, value}) end
  return t
end

-- appends one entry to the audit stream `key`, trimming entries older than
-- the MINID `minid`: actor, source (unless ''), the name/value pairs of
-- fields, then ts (the fields of docs/registry.md, in this order)
local function audit_log(key, minid, actor, source, now, fields)
  local a = {'actor', actor}
  if source ~= '' then append(a, {'source', source}) end
  append(a, fields, {'ts', now})
  redis.call('XADD', key, 'MINID', '~', minid, '*', unpack(a))
end

-- announces a device's state, tenant and policy on the event stream `key`
-- (capped at about `cap` entries): every broker re-reads the device
local function state_event(key, cap, id, state, tenant, policy)
  redis.call('XADD', key, 'MAXLEN', '~', cap, '*',
    'type', 'state', 'device', id, 'state', state, 'tenant', tenant, 'policy', policy)
end

-- records serial on the CRL hash `key` (onb:crl:revoked, lib/pki/crl.h:
-- field = serial without leading zeros, value "<ms> <RFC 5280 reason>
-- <device>"); HSETNX keeps the first revocation
local function crl_add(key, serial, now, reason, id)
  local s = serial and string.gsub(serial, '^0+', '') or ''
  if s ~= '' then redis.call('HSETNX', key, s, now .. ' ' .. reason .. ' ' .. id) end
end

-- revokes the claim code record `key` if it is still issued
local function cc_revoke(key, why, now)
  if redis.call('HGET', key, 'status') == 'issued' then
    redis.call('HSET', key, 'status', 'revoked', 'reason', why, 'revoked', now)
  end
end
