-- policy_write: store or delete one policy document, announce it to every
-- broker and audit it, in one step (docs/registry.md). The document was
-- validated by the caller (onb_policy_parse) before it got here.
--
-- KEYS[1] onb:policy:<name>   KEYS[2] onb:events   KEYS[3] onb:audit
-- ARGV[1] name   ARGV[2] 'put' or 'delete'   ARGV[3] document ('' for delete)
-- ARGV[4] now (ms)   ARGV[5] actor   ARGV[6] source ('' none)
-- ARGV[7] events cap   ARGV[8] audit cap
--
-- Returns 'ok', or 'notfound' (delete of an absent policy, audited as error).
local key, events, audit = KEYS[1], KEYS[2], KEYS[3]
local name, op, doc, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local actor, source, events_cap, audit_minid = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local function log(result, reason)
  local f = {'action', 'policy-' .. op, 'policy', name, 'result', result}
  append_set(f, 'reason', reason)
  audit_log(audit, audit_minid, actor, source, now, f)
end

if op == 'delete' then
  if redis.call('DEL', key) == 0 then
    log('error', 'unknown policy')
    return 'notfound'
  end
else
  redis.call('SET', key, doc)
end
redis.call('XADD', events, 'MAXLEN', '~', events_cap, '*', 'type', 'policy', 'policy', name)
log('ok', '')
return 'ok'
