/* The fixed rules of identity/authority.h as tables: one row per role, one list
 * of rules read first match first. */
#include "identity/authority.h"

#include <pthread.h>
#include <string.h>

#include "provisioning/envelope.h"
#include "pki/x509.h"

/* ------------------------------------------------------------- roles */

static const struct {
	const char *name;
	enum onb_policy_slot policy;
	bool provisioning;  /* confined to provisioning; client ids of devices reserved */
} roles[ONB_ROLE_COUNT] = {
	[ONB_ROLE_NONE] = { "none", ONB_POLICY_NONE, false },
	[ONB_ROLE_DEVICE] = { "device", ONB_POLICY_BY_STATE, false },
	[ONB_ROLE_CLAIM] = { "claim", ONB_POLICY_CLAIM, true },
	[ONB_ROLE_BIRTH] = { "birth", ONB_POLICY_CLAIM, true },
	[ONB_ROLE_CLAIMSVC] = { "claimsvc", ONB_POLICY_SERVICE, false },
	[ONB_ROLE_TENANT_APP] = { "tenant-app", ONB_POLICY_TENANT_APP, false },
};

enum onb_role onb_role_of(enum onb_idclass c, const char *tenant)
{
	switch(c){
	case ONB_ID_DEVICE: return ONB_ROLE_DEVICE;
	case ONB_ID_CLAIM: return ONB_ROLE_CLAIM;
	case ONB_ID_BIRTH: return ONB_ROLE_BIRTH;
	case ONB_ID_SERVICE: return tenant && *tenant ? ONB_ROLE_TENANT_APP : ONB_ROLE_CLAIMSVC;
	default: return ONB_ROLE_NONE;
	}
}

const char *onb_role_name(enum onb_role r)
{
	return (unsigned)r < ONB_ROLE_COUNT ? roles[r].name : "none";
}

enum onb_policy_slot onb_role_policy(enum onb_role r)
{
	return (unsigned)r < ONB_ROLE_COUNT ? roles[r].policy : ONB_POLICY_NONE;
}

#define TENANT_PREFIX "tenant:"

void onb_cert_tenant(X509 *cert, char tenant[ONB_ID_MAX + 1])
{
	char org[ONB_ID_MAX + sizeof(TENANT_PREFIX) + 8];
	const char *id = org + sizeof(TENANT_PREFIX) - 1;
	struct onb_err err;

	tenant[0] = '\0';
	if(!cert || onb_cert_subject_attr(cert, NID_organizationName, org, sizeof(org), &err) != ONB_OK) return;
	if(strncmp(org, TENANT_PREFIX, sizeof(TENANT_PREFIX) - 1) != 0 || !onb_id_valid(id)) return;
	memcpy(tenant, id, strlen(id) + 1);
}

bool onb_idclass_provisioning(enum onb_idclass c)
{
	return roles[onb_role_of(c, NULL)].provisioning;
}

bool onb_client_id_reserved(enum onb_idclass c, bool bound, bool own_birth)
{
	/* Taking a device's id would take over its persistent session
	 * (subscriptions, queued commands) while it is offline. */
	return onb_idclass_provisioning(c) && bound && !(c == ONB_ID_BIRTH && own_birth);
}

bool onb_client_id_takeover(enum onb_idclass newcomer, enum onb_idclass live)
{
	/* A shared claim certificate must not take over a device's or a
	 * service's live connection by choosing its client id. */
	return !onb_idclass_provisioning(newcomer) || newcomer == live;
}

/* ------------------------------------------------------------ topics */

static const struct {
	const char *name;
	bool internal;
	/* the plugin takes its messages over: their originals go on emptied
	 * (onb_topic_handed_off) */
	bool handed_off;
} kinds[ONB_TK_COUNT] = {
	[ONB_TK_ORDINARY] = { "ordinary", false, false },
	[ONB_TK_PROVISION] = { "provision", false, true },
	[ONB_TK_RENEW_OWN] = { "renew-own", false, true },
	[ONB_TK_RENEW] = { "renew", false, true },
	[ONB_TK_CLAIM] = { "claim", false, true },
	[ONB_TK_AWS_REPLY] = { "aws-reply", false, false },
	[ONB_TK_OWN_REPLY] = { "own-reply", false, false },
	[ONB_TK_AWS_OTHER] = { "aws-other", false, false },
	[ONB_TK_INT_ROUTE] = { "internal-route", true, false },
	[ONB_TK_INT_REPLY] = { "internal-reply", true, true },
	[ONB_TK_INT_STATS] = { "internal-stats", true, true },
	[ONB_TK_INT_OTHER] = { "internal-other", true, true },
	[ONB_TK_EMPTIED] = { "emptied", false, false },
};

#define AWS_PREFIX "$aws/"
#define LIT(s) (s), sizeof(s) - 1

static bool head_is(const char *s, size_t n, const char *lit, size_t k)
{
	return n >= k && !memcmp(s, lit, k);
}

static bool tail_is(const char *s, size_t n, const char *lit, size_t k)
{
	return n >= k && !memcmp(s + n - k, lit, k);
}

/* Whether topic (n bytes) may be a reply: the suffix rules out the rest
 * before the envelope's parser looks at it. */
static bool reply_suffix(const char *topic, size_t n)
{
	return tail_is(topic, n, LIT("/accepted")) || tail_is(topic, n, LIT("/rejected"));
}

static enum onb_tkind internal_kind(const char *topic)
{
	if(!strcmp(topic, ONB_TOPIC_PROV_REQUEST) || !strcmp(topic, ONB_TOPIC_CLAIM_REQUEST)) return ONB_TK_INT_ROUTE;
	if(!strcmp(topic, ONB_TOPIC_PROV_REPLY)) return ONB_TK_INT_REPLY;
	if(!strcmp(topic, ONB_TOPIC_STATS)) return ONB_TK_INT_STATS;
	return ONB_TK_INT_OTHER;
}

enum onb_tkind onb_tkind_of(const char *topic, const char *self)
{
	size_t n;

	if(!topic) return ONB_TK_ORDINARY;
	/* asked for every delivery: every request and reply topic begins with
	 * '$', 'd' or 'o', and ends in a known level */
	switch(topic[0]){
	case '$':
		n = strlen(topic);
		if(!head_is(topic, n, LIT(AWS_PREFIX))) return ONB_TK_ORDINARY;
		if((tail_is(topic, n, LIT("/json")) || tail_is(topic, n, LIT("/cbor"))) && onb_prov_is_request_topic(topic)){
			return ONB_TK_PROVISION;
		}
		return reply_suffix(topic, n) && onb_prov_is_reply_topic(topic) ? ONB_TK_AWS_REPLY : ONB_TK_AWS_OTHER;
	case 'd':
		n = strlen(topic);
		if(!head_is(topic, n, LIT(ONB_TOPIC_RENEW_PREFIX))) return ONB_TK_ORDINARY;
		if(tail_is(topic, n, LIT(ONB_TOPIC_RENEW_SUFFIX)) && onb_prov_is_request_topic(topic)){
			return self && onb_prov_renew_topic(topic, self, "") ? ONB_TK_RENEW_OWN : ONB_TK_RENEW;
		}
		return reply_suffix(topic, n) && onb_prov_is_reply_topic(topic) ? ONB_TK_OWN_REPLY : ONB_TK_ORDINARY;
	case 'o':
		n = strlen(topic);
		if(head_is(topic, n, LIT(ONB_TOPIC_INTERNAL_PREFIX))) return internal_kind(topic);
		if(!strcmp(topic, ONB_TOPIC_CLAIM)) return ONB_TK_CLAIM;
		return reply_suffix(topic, n) && onb_prov_is_reply_topic(topic) ? ONB_TK_OWN_REPLY : ONB_TK_ORDINARY;
	default:
		return ONB_TK_ORDINARY;
	}
}

enum onb_tkind onb_tkind_delivery(const char *topic, size_t payloadlen)
{
	enum onb_tkind k = onb_tkind_of(topic, NULL);

	/* Only an empty message can be such an original: the plugin empties or
	 * refuses every message on those topics, and wills there are denied. */
	return payloadlen == 0 && kinds[k].handed_off ? ONB_TK_EMPTIED : k;
}

bool onb_tkind_internal(enum onb_tkind k)
{
	return (unsigned)k < ONB_TK_COUNT && kinds[k].internal;
}

const char *onb_tkind_name(enum onb_tkind k)
{
	return (unsigned)k < ONB_TK_COUNT ? kinds[k].name : "invalid";
}

/* ------------------------------------------------------------- rules */

static const char *const deed_names[ONB_DO_COUNT] = {
	[ONB_DO_PUBLISH] = "publish", [ONB_DO_WILL] = "will", [ONB_DO_SUBSCRIBE] = "subscribe",
	[ONB_DO_RECEIVE] = "receive", [ONB_DO_SERVE] = "serve",
};

const char *onb_deed_name(enum onb_deed d)
{
	return (unsigned)d < ONB_DO_COUNT ? deed_names[d] : "invalid";
}

#define R(x) (1u << ONB_ROLE_##x)
#define D(x) (1u << ONB_DO_##x)
#define K(x) (1u << ONB_TK_##x)
#define ANY_ROLE ((1u << ONB_ROLE_COUNT) - 1)
#define ANY_KIND ((1u << ONB_TK_COUNT) - 1)
#define PLUGIN (D(PUBLISH) | D(WILL) | D(SUBSCRIBE) | D(RECEIVE))
#define INTERNAL (K(INT_ROUTE) | K(INT_REPLY) | K(INT_STATS) | K(INT_OTHER))
#define REQUESTS (K(PROVISION) | K(RENEW_OWN) | K(RENEW) | K(CLAIM))
#define PROVISIONERS (R(DEVICE) | R(CLAIM) | R(BIRTH))

static const struct {
	unsigned roles, deeds, kinds;
	struct onb_rule rule;
} rules[] = {
	/* nothing for a connection of no class (none is ever admitted) */
	{ R(NONE), PLUGIN, ANY_KIND, { ONB_V_DENY, "no-identity: the connection has no identity class" } },
	/* never a topic to subscribe to or publish on */
	{ ANY_ROLE, PLUGIN & ~D(RECEIVE), K(EMPTIED), { ONB_V_DENY, NULL } },

	/* A provisioning answer reaches the one connection it answers, where it
	 * subscribed; the others subscribed to the same topic, and any
	 * look-alike a client published, are refused without a note: many
	 * devices provision at once, and none of them did wrong. */
	{ ANY_ROLE, D(RECEIVE), K(AWS_REPLY) | K(OWN_REPLY), { ONB_V_TICKET, NULL } },
	{ ANY_ROLE, D(RECEIVE), K(EMPTIED), { ONB_V_DENY, NULL } },
	/* The internal tree carries stamped requests (CSRs, ownership tokens)
	 * and claimsvc's answers: an operator's generous policy ('#') can
	 * neither read it nor join claimsvc's shared subscription. */
	{ R(CLAIMSVC), D(SUBSCRIBE) | D(RECEIVE), INTERNAL, { ONB_V_POLICY, NULL } },
	{ ANY_ROLE, D(SUBSCRIBE) | D(RECEIVE), INTERNAL, { ONB_V_DENY, "internal-topic: only claimsvc may read" } },
	{ ANY_ROLE, D(SUBSCRIBE) | D(RECEIVE), ANY_KIND, { ONB_V_POLICY, NULL } },

	/* A will skips the message event, where requests are stamped and
	 * routed and internal replies swallowed: it must not go raw. Nor where
	 * a live publish may not go (answers and look-alikes under $aws/). */
	{ ANY_ROLE, D(WILL), INTERNAL | REQUESTS | K(AWS_REPLY) | K(AWS_OTHER),
		{ ONB_V_DENY, "wills may not use internal, provisioning request or other $aws topics" } },
	{ ANY_ROLE, D(WILL), ANY_KIND, { ONB_V_POLICY, NULL } },

	/* Requests: stamped with the verified identity, handed to claimsvc. A
	 * device's $aws request goes too: claimsvc tells it to renew instead. */
	{ PROVISIONERS, D(PUBLISH), K(PROVISION), { ONB_V_TAKE, NULL } },
	{ R(DEVICE), D(PUBLISH), K(RENEW_OWN), { ONB_V_TAKE, NULL } },
	{ R(TENANT_APP), D(PUBLISH), K(CLAIM), { ONB_V_TAKE, NULL } },
	/* Under $aws/ only requests exist; answers come from the plugin alone.
	 * So an accepted/rejected look-alike, or a request topic with extra
	 * levels, reaches nobody, whatever an operator's policy allows. */
	{ ANY_ROLE, D(PUBLISH), REQUESTS | K(AWS_REPLY) | K(AWS_OTHER),
		{ ONB_V_DENY, "request-forbidden: this identity may not send this request" } },
	/* Only claimsvc's replies and counters come in here, and they go no
	 * further. */
	{ R(CLAIMSVC), D(PUBLISH), K(INT_REPLY) | K(INT_STATS), { ONB_V_TAKE, NULL } },
	{ R(CLAIMSVC), D(PUBLISH), INTERNAL, { ONB_V_DENY, NULL } },
	/* whatever its policy allows */
	{ R(TENANT_APP), D(PUBLISH), INTERNAL,
		{ ONB_V_DENY, "internal-topic: a tenant's back-end may not speak for claimsvc" } },
	{ ANY_ROLE, D(PUBLISH), INTERNAL, { ONB_V_DENY, "internal-topic: only claimsvc publishes here" } },
	{ ANY_ROLE, D(PUBLISH), K(ORDINARY) | K(OWN_REPLY), { ONB_V_POLICY, NULL } },

	/* claimsvc checks again what the plugin routed */
	{ R(CLAIM) | R(BIRTH), D(SERVE), K(PROVISION), { ONB_V_TAKE, NULL } },
	{ R(DEVICE), D(SERVE), K(PROVISION), { ONB_V_DENY, "operational certificates do not provision again: "
			"renew on devices/<id>/certificates/renew" } },
	{ R(CLAIMSVC) | R(TENANT_APP), D(SERVE), K(PROVISION),
		{ ONB_V_DENY, "identity class service may not provision" } },
	{ R(NONE), D(SERVE), K(PROVISION), { ONB_V_DENY, "identity class none may not provision" } },
	{ R(DEVICE), D(SERVE), K(RENEW_OWN), { ONB_V_TAKE, NULL } },
	{ ANY_ROLE, D(SERVE), K(RENEW_OWN) | K(RENEW),
		{ ONB_V_DENY, "only the device itself renews its certificate, on its own topic" } },
	{ R(TENANT_APP), D(SERVE), K(CLAIM), { ONB_V_TAKE, NULL } },
	{ ANY_ROLE, D(SERVE), K(CLAIM), { ONB_V_DENY, "only a tenant's back-end may claim devices" } },
};

/* anything no rule names: fail closed */
static const struct onb_rule unlisted = { ONB_V_DENY, "not-served: no rule allows this" };

/* The list read once into a table: asked for every delivery, a lookup
 * costs an index where the list costs a walk. */
static struct onb_rule table[ONB_ROLE_COUNT][ONB_DO_COUNT][ONB_TK_COUNT];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static struct onb_rule first_match(unsigned role, unsigned deed, unsigned k)
{
	for(size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++){
		if((rules[i].roles & (1u << role)) && (rules[i].deeds & (1u << deed)) && (rules[i].kinds & (1u << k))){
			return rules[i].rule;
		}
	}
	return unlisted;
}

static void table_fill(void)
{
	for(unsigned r = 0; r < ONB_ROLE_COUNT; r++){
		for(unsigned d = 0; d < ONB_DO_COUNT; d++){
			for(unsigned k = 0; k < ONB_TK_COUNT; k++) table[r][d][k] = first_match(r, d, k);
		}
	}
}

struct onb_rule onb_authority(enum onb_role role, enum onb_deed deed, enum onb_tkind k)
{
	if((unsigned)role >= ONB_ROLE_COUNT || (unsigned)deed >= ONB_DO_COUNT || (unsigned)k >= ONB_TK_COUNT){
		return unlisted;
	}
	pthread_once(&table_once, table_fill);
	return table[role][deed][k];
}

bool onb_idclass_may_request(enum onb_idclass c)
{
	enum onb_role r = onb_role_of(c, NULL);

	return onb_authority(r, ONB_DO_SERVE, ONB_TK_PROVISION).verdict == ONB_V_TAKE
		|| onb_authority(r, ONB_DO_SERVE, ONB_TK_RENEW_OWN).verdict == ONB_V_TAKE;
}
