/* Who may do what: every fixed rule of the broker plugin and claimsvc, as
 * data, in one place (issue 15). Pure: no Mosquitto, no Redis, no
 * allocation; the tables are in lib/identity/authority.c, the test that walks every
 * role x action x topic kind in tests/unit/identity/test_authority.c.
 *
 * Identity. lib/identity/identity.c tells the class of a verified certificate by its
 * issuing CA. The class and, for a service, the tenant its subject names
 * (O=tenant:<id>, onb_cert_tenant) make the role that the rules read:
 *
 *   role        class    tenant  holds by default   client id
 *   device      device   -       by state (1)       its device id (the registry binding)
 *   claim       claim    -       claim              any, unless reserved (2)
 *   birth       birth    -       claim              any, unless reserved (2)
 *   claimsvc    service  none    service            its certificate's CN
 *   tenant-app  service  <id>    tenant-app         its certificate's CN
 *
 * "claimsvc" is any service certificate naming no tenant: such a
 * certificate is trusted to speak for claimsvc. Claim and birth are the
 * provisioning identities (onb_idclass_provisioning): their certificate is
 * shared, or not bound to a device yet, so the plugin budgets their
 * requests per certificate and aggregates their audit entries.
 * (1) lib/identity/binding.c onb_policy_for: quarantine, an explicit policy,
 *     device-tenant or device (names from the plugin's configuration).
 * (2) reserved client ids: a registered device's id belongs to that device;
 *     only its own birth certificate may use it (a factory-reset device
 *     provisioning again), onb_client_id_reserved. And a provisioning
 *     identity never takes over a live connection of another class
 *     ("client-id-in-use"), onb_client_id_takeover.
 *
 * Fixed rules, before any policy (first match wins, anything not listed is
 * denied). Topic kinds: onb_tkind_of. "internal" = onb/internal/...;
 * "requests" = $aws provisioning, renewals, onb/claim/json.
 *
 *   publish (the message event; the policy allowed the write already):
 *     $aws provisioning request   device, claim, birth: routed to claimsvc
 *     devices/<own id>/certificates/renew   device: routed to claimsvc
 *     onb/claim/json              tenant-app: routed to claimsvc
 *     any other request, any other $aws/ topic (replies, look-alikes):
 *                                 dropped, "request-forbidden"
 *     onb/internal/prov/reply, onb/internal/stats
 *                                 claimsvc: taken (reply delivered, counters
 *                                 republished); others "internal-topic"
 *     any other internal topic    denied (claimsvc: silently)
 *     anything else               as the policy said
 *   will: internal, request and other $aws/ topics denied (a will skips
 *     the message event, where requests are stamped; and goes nowhere a
 *     live publish may not); anything else by the policy
 *   subscribe (the filter, $share/<group>/ removed), receive:
 *     internal                    claimsvc: by the policy; others
 *                                 "internal-topic: only claimsvc may read"
 *   receive only:
 *     a provisioning reply        only the connection holding its reply
 *                                 ticket (lib/provisioning/replyticket.c), no policy
 *     an emptied original         denied (a request or internal message the
 *                                 plugin took over goes on with no payload)
 *   serve (claimsvc, the envelope the plugin stamped):
 *     $aws provisioning request   claim, birth; a device is told to renew
 *     renewal                     the device itself, on its own topic
 *     claim                       tenant-app (for its own tenant only)
 */
#ifndef ONB_AUTHORITY_H
#define ONB_AUTHORITY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "identity/identity.h"
#include "core/ids.h"

enum onb_role {
	ONB_ROLE_NONE = 0,    /* no class: nothing is allowed */
	ONB_ROLE_DEVICE,
	ONB_ROLE_CLAIM,
	ONB_ROLE_BIRTH,
	ONB_ROLE_CLAIMSVC,    /* a service identity of no tenant */
	ONB_ROLE_TENANT_APP,  /* a service identity of a tenant (its back-end) */
	ONB_ROLE_COUNT,
};

/* The role of class c; tenant (NULL or "" for none) matters for a service
 * only. */
enum onb_role onb_role_of(enum onb_idclass c, const char *tenant);

/* "none", "device", "claim", "birth", "claimsvc", "tenant-app". */
const char *onb_role_name(enum onb_role r);

/* The tenant a service certificate's subject names, O=tenant:<id> with a
 * valid id, into tenant; "" when it names none (claimsvc, an admin tool). */
void onb_cert_tenant(X509 *cert, char tenant[ONB_ID_MAX + 1]);

/* Claim and birth: identities confined to provisioning. */
bool onb_idclass_provisioning(enum onb_idclass c);

/* True when a certificate of class c may not use a client id that a
 * registered device holds (bound: the device has a certificate bound;
 * own_birth: the certificate is that device's birth certificate). */
bool onb_client_id_reserved(enum onb_idclass c, bool bound, bool own_birth);

/* Whether a connection of class newcomer may take over the live connection
 * of class live that uses the same client id. */
bool onb_client_id_takeover(enum onb_idclass newcomer, enum onb_idclass live);

/* The default policy a role holds (lib/identity/binding.c maps it to a name). */
enum onb_policy_slot {
	ONB_POLICY_NONE = 0,   /* none: the connection is refused */
	ONB_POLICY_BY_STATE,   /* a device's: by its state, tenant and explicit policy */
	ONB_POLICY_CLAIM,
	ONB_POLICY_SERVICE,
	ONB_POLICY_TENANT_APP,
};
enum onb_policy_slot onb_role_policy(enum onb_role r);

/* What a topic (or a subscription filter) is, for the fixed rules. */
enum onb_tkind {
	ONB_TK_ORDINARY = 0,  /* anything below: the policy decides */
	ONB_TK_PROVISION,     /* $aws/certificates/create-from-csr|create/<fmt>, $aws/provisioning-templates/<t>/provision/<fmt> */
	ONB_TK_RENEW_OWN,     /* devices/<the asker's id>/certificates/renew */
	ONB_TK_RENEW,         /* devices/<another id>/certificates/renew */
	ONB_TK_CLAIM,         /* onb/claim/json */
	ONB_TK_AWS_REPLY,     /* /accepted, /rejected of a $aws request */
	ONB_TK_OWN_REPLY,     /* /accepted, /rejected of a renewal or a claim */
	ONB_TK_AWS_OTHER,     /* anything else under $aws/ */
	ONB_TK_INT_ROUTE,     /* onb/internal/prov/request, onb/internal/claim/request */
	ONB_TK_INT_REPLY,     /* onb/internal/prov/reply */
	ONB_TK_INT_STATS,     /* onb/internal/stats */
	ONB_TK_INT_OTHER,     /* anything else under onb/internal/ */
	ONB_TK_EMPTIED,       /* a delivery: the emptied original of a message the plugin took over */
	ONB_TK_COUNT,
};

/* The kind of topic; self: the asker's client id (tells its own renewal
 * topic from another's), NULL when it does not matter. Cheap for ordinary
 * topics (their first byte). NULL is ordinary. */
enum onb_tkind onb_tkind_of(const char *topic, const char *self);

/* The kind of a delivery's topic: ONB_TK_EMPTIED for an empty message on a
 * topic whose messages the plugin takes over (onb_topic_handed_off). */
enum onb_tkind onb_tkind_delivery(const char *topic, size_t payloadlen);

/* True for the onb/internal/ kinds. */
bool onb_tkind_internal(enum onb_tkind k);

/* "ordinary", "provision", ... for tests and logs. */
const char *onb_tkind_name(enum onb_tkind k);

enum onb_deed {
	ONB_DO_PUBLISH = 0, /* the message event of a live connection's PUBLISH */
	ONB_DO_WILL,        /* the broker publishing a connection's will */
	ONB_DO_SUBSCRIBE,   /* the filter, $share/<group>/ removed */
	ONB_DO_RECEIVE,     /* a delivery */
	ONB_DO_SERVE,       /* claimsvc serving a request the plugin stamped */
	ONB_DO_COUNT,
};

/* "publish", "will", "subscribe", "receive", "serve". */
const char *onb_deed_name(enum onb_deed d);

enum onb_verdict {
	ONB_V_DENY = 0,  /* whatever the policy says */
	ONB_V_POLICY,    /* the fixed rules have nothing to say: the policy decides */
	ONB_V_TICKET,    /* a provisioning reply: only its reply ticket admits it */
	ONB_V_TAKE,      /* the plugin takes it over (a request routed, claimsvc's
	                  * reply or counters); claimsvc: it serves the request */
};

struct onb_rule {
	enum onb_verdict verdict;
	/* ONB_V_DENY: why, as the refusal is noted or answered ("reason: text"
	 * for the plugin's); NULL: denied without a note. Static storage. */
	const char *why;
};

/* The fixed rule for role doing deed on a topic of kind k. */
struct onb_rule onb_authority(enum onb_role role, enum onb_deed deed, enum onb_tkind k);

/* Whether claimsvc serves some request of class c (the classes an
 * ownership token or a renewal may be recorded for). */
bool onb_idclass_may_request(enum onb_idclass c);

#endif
