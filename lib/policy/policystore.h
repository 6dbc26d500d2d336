/* Policy documents in the registry: onb:policy:<name> holds the JSON text.
 * A document is validated (onb_policy_parse) before it is stored, so an
 * invalid one never reaches Redis; every change is announced on onb:events
 * (type "policy") so that brokers recompile the sessions holding it. */
#ifndef ONB_POLICYSTORE_H
#define ONB_POLICYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "registry/registry.h"

#define ONB_KEY_POLICY_FMT "onb:policy:%s"

/* True for [A-Za-z0-9._-]{1,ONB_NAME_MAX}: the one rule for policy names,
 * wherever one is accepted (docs/policies.md). */
bool onb_policy_name_valid(const char *name);

/* Reads a document. *json_out is NUL-terminated heap memory the caller frees
 * with free(). ONB_ENOTFOUND when there is no such policy. */
int onb_policystore_get(redisContext *rc, const char *name, char **json_out, size_t *len_out,
		struct onb_err *err);

/* Validates and stores a document, with a policy event and an audit entry,
 * atomically. An invalid document is refused (ONB_EINVAL, the parser's
 * message) and audited; nothing is stored. */
int onb_policystore_put(redisContext *rc, const char *name, const char *json, size_t len,
		const struct onb_actor *actor, struct onb_err *err);

/* Deletes a document (policy event, audit). ONB_ENOTFOUND when absent. */
int onb_policystore_delete(redisContext *rc, const char *name, const struct onb_actor *actor,
		struct onb_err *err);

/* Calls cb for each stored policy name; stops when cb returns non-zero. */
int onb_policystore_list(redisContext *rc, int (*cb)(const char *name, void *arg), void *arg,
		struct onb_err *err);

/* Sets (or with "" clears) a device's explicit policy: a state event carries
 * the change to live sessions. ONB_ENOTFOUND for an unknown device. */
int onb_registry_set_policy(redisContext *rc, const char *id, const char *policy,
		const struct onb_actor *actor, struct onb_err *err);

#endif
