/* Topic policies (DESIGN.md s.5, docs/policies.md).
 *
 * A JSON document is parsed once (onb_policy_parse, a pure function of a
 * buffer), compiled once per connection with that connection's variables
 * (onb_policy_compile: variables substituted, patterns split into levels, one
 * allocation), and evaluated on every publish, subscribe and delivery
 * (onb_policy_allows: no allocation, no string building, one walk over
 * pre-split levels per candidate resource). Default deny; any matching deny
 * statement wins over every allow. */
#ifndef ONB_POLICY_H
#define ONB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"

#define ONB_POLICY_MAX_BYTES 65536    /* larger documents are refused */
#define ONB_POLICY_MAX_STATEMENTS 256
#define ONB_POLICY_MAX_RESOURCES 256  /* per statement */
#define ONB_POLICY_MAX_CLIENT 1024    /* bytes of a client: pattern */
#define ONB_POLICY_VAR_MAX 1024       /* longer variable values count as hostile */

enum onb_action {
	ONB_ACT_CONNECT = 0, /* subject: the MQTT client id */
	ONB_ACT_PUBLISH,     /* subject: the topic name published to */
	ONB_ACT_SUBSCRIBE,   /* subject: the requested filter, "$share/<group>/" allowed */
	ONB_ACT_RECEIVE,     /* subject: the topic name of a message being delivered */
	ONB_ACT_COUNT,
};

enum onb_effect { ONB_EFFECT_DENY = 0, ONB_EFFECT_ALLOW = 1 };

struct onb_policy;   /* a parsed document; immutable, may be shared between threads */
struct onb_compiled; /* one connection's compiled policy; immutable, independent of its onb_policy */

/* Values substituted for ${deviceId} ${clientId} ${tenantId}
 * ${certFingerprint} ${state}. Borrowed only during compile. A value that is
 * NULL, empty, longer than ONB_POLICY_VAR_MAX, or holds '/', '+', '#' or '*'
 * is hostile: an allow statement using it is disabled; a deny statement using
 * it is broadened from that level on (see docs/policies.md). */
struct onb_policy_vars {
	const char *device_id;
	const char *client_id;
	const char *tenant_id;
	const char *cert_fp;
	const char *state;
};

enum onb_why {
	ONB_WHY_MATCH = 0, /* statement stmt, resource res decided */
	ONB_WHY_DEFAULT,   /* no statement matched: default deny */
	ONB_WHY_INVALID,   /* the subject was NULL or malformed: deny */
};

struct onb_decision {
	bool allowed;
	enum onb_why why;
	int stmt; /* index in the document's "statement" array, -1 unless ONB_WHY_MATCH */
	int res;  /* index in that statement's "resource" array, -1 unless ONB_WHY_MATCH */
};

/* Parses and validates json[0..len) (need not be NUL-terminated); on success
 * *out is a new policy the caller frees with onb_policy_free. Errors name the
 * statement index and field, e.g. "statement[2].resource[0]: ...". */
int onb_policy_parse(const char *json, size_t len, struct onb_policy **out, struct onb_err *err);

/* Frees a parsed policy; NULL is fine. */
void onb_policy_free(struct onb_policy *p);

/* Number of statements in p. */
size_t onb_policy_statements(const struct onb_policy *p);

/* The "sid" of statement i, or NULL when it has none (or i is out of range). */
const char *onb_policy_sid(const struct onb_policy *p, size_t i);

/* The document's "version" string (borrowed from p). */
const char *onb_policy_version(const struct onb_policy *p);

/* Sets the variable named as in a document ("deviceId", ...) to value
 * (borrowed); ONB_EINVAL for an unknown name. */
int onb_policy_var_set(struct onb_policy_vars *v, const char *name, const char *value);

/* Compiles p with the variables v (NULL: all unset) into *out, one block the
 * caller frees with onb_compiled_free; it does not refer to p or v afterwards.
 * Fails only on allocation failure. */
int onb_policy_compile(const struct onb_policy *p, const struct onb_policy_vars *v,
	struct onb_compiled **out, struct onb_err *err);

/* Frees a compiled policy; NULL is fine. */
void onb_compiled_free(struct onb_compiled *c);

/* Bytes held by a compiled policy (for memory accounting). */
size_t onb_compiled_size(const struct onb_compiled *c);

/* True when c allows action a on subject (NUL-terminated; see enum
 * onb_action). Never allocates. NULL or malformed input is a deny. When d is
 * non-NULL it receives the deciding statement; the answer is the same with d
 * NULL, which skips deny resources that overlap no allow resource (they can
 * only name the statement of a refusal that is a default deny otherwise). */
bool onb_policy_allows(const struct onb_compiled *c, enum onb_action a, const char *subject,
	struct onb_decision *d);

/* onb_policy_allows(c, ONB_ACT_RECEIVE, topic, d) for the topic of a message
 * the broker is delivering. The broker accepted that name when the message
 * was published (Mosquitto refuses '+' and '#' in a PUBLISH or will topic),
 * so only its length is checked, not its wildcards: a name that held one
 * anyway would be compared as the literal bytes it is. Same decisions as
 * onb_policy_allows for every valid name, without its scans. */
bool onb_policy_allows_receive(const struct onb_compiled *c, const char *topic, struct onb_decision *d);

/* Writes one line explaining d (made by c, compiled from p, for action a)
 * into buf, e.g. `allow: statement 2 "Telemetry" resource 0
 * topic:devices/${deviceId}/telemetry/#`, followed by any statements that
 * hostile variables disabled or broadened. Truncates to fit; ONB_OK or ONB_EINVAL. */
int onb_policy_explain(const struct onb_policy *p, const struct onb_compiled *c, enum onb_action a,
	const struct onb_decision *d, char *buf, size_t len);

/* "connect", "publish", "subscribe", "receive"; "invalid" otherwise. */
const char *onb_action_name(enum onb_action a);

/* The action named name, or -1 (ONB_EINVAL) when unknown. */
int onb_action_parse(const char *name);

#endif
