#include "registry/state.h"
#include "core/vocab.h"

#include <stdio.h>
#include <string.h>

#define NAME_(id, name) name,
static const char *const names[ONB_STATE_COUNT] = { ONB_STATES(NAME_) };
#undef NAME_

#define M ONB_STATE_MANUFACTURED
#define U ONB_STATE_UNCLAIMED
#define A ONB_STATE_ACTIVE
#define Q ONB_STATE_QUARANTINED
#define R ONB_STATE_REVOKED
#define D ONB_STATE_DECOMMISSIONED

/* allowed[from][to]. Revoked is terminal except for decommission, which
 * wipes the operational identity; decommissioned goes back to manufactured
 * so that the birth identity can enrol again after a factory reset. */
static const bool allowed[ONB_STATE_COUNT][ONB_STATE_COUNT] = {
	[M] = { [U] = true, [A] = true, [R] = true, [D] = true },
	[U] = { [A] = true, [Q] = true, [R] = true, [D] = true },
	[A] = { [U] = true, [Q] = true, [R] = true, [D] = true },
	[Q] = { [U] = true, [A] = true, [R] = true, [D] = true },
	[R] = { [D] = true },
	[D] = { [M] = true },
};

const char *onb_state_name(enum onb_state s)
{
	if((int)s < 0 || s >= ONB_STATE_COUNT) return "invalid";
	return names[s];
}

enum onb_state onb_state_parse(const char *name)
{
	int i = onb_name_index(names, ONB_STATE_COUNT, name);

	return i < 0 ? ONB_STATE_INVALID : (enum onb_state)i;
}

bool onb_state_may_connect(enum onb_state s)
{
	return s == U || s == A || s == Q;
}

bool onb_state_transition_allowed(enum onb_state from, enum onb_state to)
{
	if((int)from < 0 || from >= ONB_STATE_COUNT) return false;
	if((int)to < 0 || to >= ONB_STATE_COUNT) return false;
	return allowed[from][to];
}

int onb_state_sources(enum onb_state to, char *buf, size_t len)
{
	int n = 0;
	size_t used = 0;

	if(len) buf[0] = '\0';
	for(int from = 0; from < ONB_STATE_COUNT; from++){
		if(!onb_state_transition_allowed((enum onb_state)from, to)) continue;
		int w = snprintf(buf + used, len - used, "%s%s", n ? "," : "", names[from]);
		if(w < 0 || (size_t)w >= len - used) break;
		used += (size_t)w;
		n++;
	}
	return n;
}
