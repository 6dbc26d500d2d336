/* Device lifecycle states and the transitions between them (DESIGN.md s.3).
 * This table is the single source of truth: the registry's Lua scripts are
 * handed the allowed source states computed here. */
#ifndef ONB_STATE_H
#define ONB_STATE_H

#include <stdbool.h>
#include <stddef.h>

/* The states with their names (the registry's `state` field). */
#define ONB_STATES(X) \
	X(MANUFACTURED,   "manufactured")   /* allowlisted, no operational certificate */ \
	X(UNCLAIMED,      "unclaimed")      /* operational certificate, no tenant */ \
	X(ACTIVE,         "active")         /* claimed by a tenant (or activated by an operator) */ \
	X(QUARANTINED,    "quarantined")    /* connected but narrowed to remediation */ \
	X(REVOKED,        "revoked")        /* refused everywhere */ \
	X(DECOMMISSIONED, "decommissioned") /* retired; decommission returns it to manufactured */

enum onb_state {
#define ONB_X_(id, name) ONB_STATE_##id,
	ONB_STATES(ONB_X_)
#undef ONB_X_
	ONB_STATE_COUNT,
	ONB_STATE_INVALID = -1,
};

/* Lower-case name ("active"); "invalid" for out-of-range values. */
const char *onb_state_name(enum onb_state s);

/* Parses a state name; ONB_STATE_INVALID when unknown. */
enum onb_state onb_state_parse(const char *name);

/* True for the states whose operational certificate may connect. */
bool onb_state_may_connect(enum onb_state s);

/* True when an operator or flow may move a device from `from` to `to`. */
bool onb_state_transition_allowed(enum onb_state from, enum onb_state to);

/* Writes the names of every state that may move to `to`, comma-separated,
 * into buf (for the Lua scripts). Returns the number of states written. */
int onb_state_sources(enum onb_state to, char *buf, size_t len);

#endif
