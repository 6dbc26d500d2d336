/* Private to lib/policy/policy.c (parsing) and lib/policy/policy_eval.c (compile and
 * evaluation): the parsed form of a policy document. */
#ifndef ONB_POLICY_INT_H
#define ONB_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

enum res_type { RES_TOPIC = 0, RES_FILTER = 1, RES_CLIENT = 2 };

enum { VAR_DEVICE = 0, VAR_CLIENT, VAR_TENANT, VAR_CERTFP, VAR_STATE, VAR_COUNT };

struct pres {
	char *text;       /* as written, "topic:devices/${deviceId}/#" (owned) */
	const char *pat;  /* the part after the type prefix, inside text */
	uint8_t type;     /* enum res_type */
	uint8_t vars;     /* bit i: uses variable i */
};

struct pstmt {
	char *sid;        /* owned, NULL when absent */
	uint8_t effect;   /* enum onb_effect */
	uint8_t actions;  /* bit a: action a */
	uint8_t vars;     /* union of its resources' vars */
	uint16_t nres;
	struct pres *res;
};

struct onb_policy {
	char *version;
	size_t nstmt;
	struct pstmt *st;
};

/* Document spelling of variable i ("deviceId"). */
const char *onb_policy_var_name(int i);

/* s starts with "${": the variable's index and in *adv the length of
 * "${name}"; -1 for an unknown name, -2 when the closing '}' is missing. */
int onb_policy_var_at(const char *s, size_t *adv);

/* True when a resource of this type, in a statement of this effect, takes
 * part in checks of action a. */
bool onb_policy_applies(int type, int effect, enum onb_action a);

#endif
