#include "identity/binding.h"

#include <stddef.h>

#include "identity/authority.h"

const struct onb_policy_names onb_policy_names_default = {
	.device = "device",
	.device_tenant = "device-tenant",
	.quarantine = "quarantine",
	.claim = "claim",
	.service = "service",
	.tenant_app = "tenant-app",
};

const char *onb_policy_for(const struct onb_policy_names *names, enum onb_idclass c,
		enum onb_state state, const char *tenant, const char *explicit_policy)
{
	/* which slot a role holds: identity/authority.h */
	switch(onb_role_policy(onb_role_of(c, tenant))){
	case ONB_POLICY_CLAIM: return names->claim;
	case ONB_POLICY_SERVICE: return names->service;
	case ONB_POLICY_TENANT_APP: return names->tenant_app;
	case ONB_POLICY_BY_STATE: break;
	default: return NULL;
	}
	if(state == ONB_STATE_QUARANTINED) return names->quarantine;
	if(state != ONB_STATE_UNCLAIMED && state != ONB_STATE_ACTIVE) return NULL;
	if(explicit_policy && *explicit_policy) return explicit_policy;
	if(state == ONB_STATE_ACTIVE && tenant && *tenant) return names->device_tenant;
	return names->device;
}
