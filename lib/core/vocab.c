/* The names of core/vocab.h's lists, generated from the lists themselves. */
#include "core/vocab.h"

#include <string.h>

#define ONB_NAME_(id, name) name,

static const char *const admit_reasons[ONB_AR_COUNT] = { ONB_ADMIT_REASONS(ONB_NAME_) };
static const char *const event_types[ONB_EV_COUNT] = { ONB_EVENT_TYPES(ONB_NAME_) "other" };
static const char *const audit_actions[ONB_AA_COUNT] = { ONB_AUDIT_ACTIONS(ONB_NAME_) };

int onb_name_index(const char *const *names, int n, const char *name)
{
	for(int i = 0; name && i < n; i++){
		if(!strcmp(names[i], name)) return i;
	}
	return -1;
}

const char *onb_admit_reason_name(enum onb_admit_reason r)
{
	return (unsigned)r < ONB_AR_COUNT ? admit_reasons[r] : admit_reasons[ONB_AR_INTERNAL];
}

int onb_admit_reason_parse(const char *name)
{
	return onb_name_index(admit_reasons, ONB_AR_COUNT, name);
}

const char *onb_event_type_name(enum onb_event_type t)
{
	return (unsigned)t < ONB_EV_COUNT ? event_types[t] : event_types[ONB_EV_OTHER];
}

enum onb_event_type onb_event_type_parse(const char *name)
{
	int i = onb_name_index(event_types, ONB_EV_OTHER, name);

	return i < 0 ? ONB_EV_OTHER : (enum onb_event_type)i;
}

const char *onb_audit_action_name(enum onb_audit_action a)
{
	return (unsigned)a < ONB_AA_COUNT ? audit_actions[a] : audit_actions[ONB_AA_UNKNOWN];
}

int onb_audit_action_parse(const char *name)
{
	return onb_name_index(audit_actions, ONB_AA_COUNT, name);
}
