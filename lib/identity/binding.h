/* Which policy document a connection is held to (DESIGN.md s.5: defaults
 * per state and per identity class; an explicit device policy overrides the
 * default of an unclaimed or active device, never quarantine). */
#ifndef ONB_BINDING_H
#define ONB_BINDING_H

#include "identity/identity.h"
#include "registry/state.h"

struct onb_policy_names {
	const char *device;        /* unclaimed and active devices without a tenant */
	const char *device_tenant; /* active devices bound to a tenant */
	const char *quarantine;
	const char *claim;         /* claim and birth identities */
	const char *service;       /* service identities without a tenant (claimsvc) */
	const char *tenant_app;    /* service identities naming a tenant (O=tenant:<id>) */
};

/* "device", "device-tenant", "quarantine", "claim", "service", "tenant-app". */
extern const struct onb_policy_names onb_policy_names_default;

/* The policy name for a connection, or NULL when the identity may hold none
 * (a device in a state that may not connect). explicit_policy and tenant may
 * be NULL or empty. The result is borrowed from names or explicit_policy. */
const char *onb_policy_for(const struct onb_policy_names *names, enum onb_idclass c,
		enum onb_state state, const char *tenant, const char *explicit_policy);

#endif
