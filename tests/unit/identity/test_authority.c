/* lib/identity/authority.c: every fixed rule of identity/authority.h, role x deed x topic
 * kind, written out here a second time as grids, plus the identity facts
 * (classes, roles, client ids, default policies) and the topic kinds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/x509.h>

#include "identity/authority.h"
#include "identity/binding.h"
#include "provisioning/envelope.h"

static int cases;

/* One letter per topic kind, in enum order: P the policy decides, T the
 * reply ticket, H taken over (routed, delivered, served), X denied with a
 * reason, x denied without a note. */
static const char *const grid[ONB_DO_COUNT][ONB_ROLE_COUNT] = {
	/*                     ORD PROV RENEW_OWN RENEW CLAIM AWS_REPLY OWN_REPLY AWS_OTHER
	 *                     INT_ROUTE INT_REPLY INT_STATS INT_OTHER EMPTIED */
	[ONB_DO_PUBLISH] = {
		[ONB_ROLE_NONE]       = "XXXXXXXXXXXXX",
		[ONB_ROLE_DEVICE]     = "PHHXXXPXXXXXx",
		[ONB_ROLE_CLAIM]      = "PHXXXXPXXXXXx",
		[ONB_ROLE_BIRTH]      = "PHXXXXPXXXXXx",
		[ONB_ROLE_CLAIMSVC]   = "PXXXXXPXxHHxx",
		[ONB_ROLE_TENANT_APP] = "PXXXHXPXXXXXx",
	},
	[ONB_DO_WILL] = {
		[ONB_ROLE_NONE]       = "XXXXXXXXXXXXX",
		[ONB_ROLE_DEVICE]     = "PXXXXXPXXXXXx",
		[ONB_ROLE_CLAIM]      = "PXXXXXPXXXXXx",
		[ONB_ROLE_BIRTH]      = "PXXXXXPXXXXXx",
		[ONB_ROLE_CLAIMSVC]   = "PXXXXXPXXXXXx",
		[ONB_ROLE_TENANT_APP] = "PXXXXXPXXXXXx",
	},
	[ONB_DO_SUBSCRIBE] = {
		[ONB_ROLE_NONE]       = "XXXXXXXXXXXXX",
		[ONB_ROLE_DEVICE]     = "PPPPPPPPXXXXx",
		[ONB_ROLE_CLAIM]      = "PPPPPPPPXXXXx",
		[ONB_ROLE_BIRTH]      = "PPPPPPPPXXXXx",
		[ONB_ROLE_CLAIMSVC]   = "PPPPPPPPPPPPx",
		[ONB_ROLE_TENANT_APP] = "PPPPPPPPXXXXx",
	},
	[ONB_DO_RECEIVE] = {
		[ONB_ROLE_NONE]       = "XXXXXXXXXXXXX",
		[ONB_ROLE_DEVICE]     = "PPPPPTTPXXXXx",
		[ONB_ROLE_CLAIM]      = "PPPPPTTPXXXXx",
		[ONB_ROLE_BIRTH]      = "PPPPPTTPXXXXx",
		[ONB_ROLE_CLAIMSVC]   = "PPPPPTTPPPPPx",
		[ONB_ROLE_TENANT_APP] = "PPPPPTTPXXXXx",
	},
	[ONB_DO_SERVE] = {
		[ONB_ROLE_NONE]       = "XXXXXXXXXXXXX",
		[ONB_ROLE_DEVICE]     = "XXHXXXXXXXXXX",
		[ONB_ROLE_CLAIM]      = "XHXXXXXXXXXXX",
		[ONB_ROLE_BIRTH]      = "XHXXXXXXXXXXX",
		[ONB_ROLE_CLAIMSVC]   = "XXXXXXXXXXXXX",
		[ONB_ROLE_TENANT_APP] = "XXXXHXXXXXXXX",
	},
};

static char letter(struct onb_rule r)
{
	switch(r.verdict){
	case ONB_V_POLICY: return 'P';
	case ONB_V_TICKET: return 'T';
	case ONB_V_TAKE: return 'H';
	case ONB_V_DENY: return r.why ? 'X' : 'x';
	}
	return '?';
}

static void every_role_deed_and_kind(void **state)
{
	(void)state;
	for(int d = 0; d < ONB_DO_COUNT; d++){
		for(int r = 0; r < ONB_ROLE_COUNT; r++){
			assert_int_equal(strlen(grid[d][r]), ONB_TK_COUNT);
			for(int k = 0; k < ONB_TK_COUNT; k++){
				struct onb_rule rule = onb_authority((enum onb_role)r, (enum onb_deed)d, (enum onb_tkind)k);
				char got = letter(rule);
				if(got != grid[d][r][k]){
					print_error("%s by %s on %s: expected %c, got %c (%s)\n", onb_deed_name((enum onb_deed)d),
							onb_role_name((enum onb_role)r), onb_tkind_name((enum onb_tkind)k),
							grid[d][r][k], got, rule.why ? rule.why : "-");
					fail();
				}
				/* a rule that lets something through gives no reason */
				if(rule.verdict != ONB_V_DENY) assert_null(rule.why);
				cases++;
			}
		}
	}
	/* out of range: denied */
	assert_int_equal(onb_authority(ONB_ROLE_COUNT, ONB_DO_PUBLISH, ONB_TK_ORDINARY).verdict, ONB_V_DENY);
	assert_int_equal(onb_authority(ONB_ROLE_DEVICE, ONB_DO_COUNT, ONB_TK_ORDINARY).verdict, ONB_V_DENY);
	assert_int_equal(onb_authority(ONB_ROLE_DEVICE, ONB_DO_PUBLISH, ONB_TK_COUNT).verdict, ONB_V_DENY);
	cases += 3;
}

static void expect_why(enum onb_role r, enum onb_deed d, enum onb_tkind k, const char *why)
{
	struct onb_rule rule = onb_authority(r, d, k);
	assert_int_equal(rule.verdict, ONB_V_DENY);
	assert_string_equal(rule.why, why);
	cases++;
}

/* The reasons are what refusals.c aggregates by and claimsvc answers. */
static void reasons(void **state)
{
	(void)state;
	expect_why(ONB_ROLE_DEVICE, ONB_DO_RECEIVE, ONB_TK_INT_ROUTE, "internal-topic: only claimsvc may read");
	expect_why(ONB_ROLE_TENANT_APP, ONB_DO_SUBSCRIBE, ONB_TK_INT_OTHER, "internal-topic: only claimsvc may read");
	expect_why(ONB_ROLE_TENANT_APP, ONB_DO_PUBLISH, ONB_TK_INT_REPLY,
			"internal-topic: a tenant's back-end may not speak for claimsvc");
	expect_why(ONB_ROLE_CLAIM, ONB_DO_PUBLISH, ONB_TK_INT_STATS, "internal-topic: only claimsvc publishes here");
	expect_why(ONB_ROLE_CLAIM, ONB_DO_PUBLISH, ONB_TK_CLAIM,
			"request-forbidden: this identity may not send this request");
	expect_why(ONB_ROLE_DEVICE, ONB_DO_PUBLISH, ONB_TK_RENEW,
			"request-forbidden: this identity may not send this request");
	expect_why(ONB_ROLE_DEVICE, ONB_DO_PUBLISH, ONB_TK_AWS_REPLY,
			"request-forbidden: this identity may not send this request");
	expect_why(ONB_ROLE_CLAIM, ONB_DO_WILL, ONB_TK_AWS_OTHER,
			"wills may not use internal, provisioning request or other $aws topics");
	expect_why(ONB_ROLE_DEVICE, ONB_DO_WILL, ONB_TK_PROVISION,
			"wills may not use internal, provisioning request or other $aws topics");
	expect_why(ONB_ROLE_DEVICE, ONB_DO_SERVE, ONB_TK_PROVISION,
			"operational certificates do not provision again: renew on devices/<id>/certificates/renew");
	expect_why(ONB_ROLE_CLAIMSVC, ONB_DO_SERVE, ONB_TK_PROVISION, "identity class service may not provision");
	expect_why(ONB_ROLE_TENANT_APP, ONB_DO_SERVE, ONB_TK_PROVISION, "identity class service may not provision");
	expect_why(ONB_ROLE_CLAIM, ONB_DO_SERVE, ONB_TK_RENEW_OWN,
			"only the device itself renews its certificate, on its own topic");
	expect_why(ONB_ROLE_DEVICE, ONB_DO_SERVE, ONB_TK_RENEW,
			"only the device itself renews its certificate, on its own topic");
	expect_why(ONB_ROLE_CLAIMSVC, ONB_DO_SERVE, ONB_TK_CLAIM, "only a tenant's back-end may claim devices");
}

static const struct {
	const char *topic, *self;
	enum onb_tkind kind;
} topics[] = {
	{ NULL, NULL, ONB_TK_ORDINARY },
	{ "", NULL, ONB_TK_ORDINARY },
	{ "#", NULL, ONB_TK_ORDINARY },
	{ "devices/d1/telemetry", "d1", ONB_TK_ORDINARY },
	{ "tenants/t1/devices/d1/x", "d1", ONB_TK_ORDINARY },
	{ "$SYS/broker/uptime", NULL, ONB_TK_ORDINARY },
	{ "$aws/certificates/create-from-csr/json", NULL, ONB_TK_PROVISION },
	{ "$aws/certificates/create-from-csr/cbor", NULL, ONB_TK_PROVISION },
	{ "$aws/certificates/create/json", NULL, ONB_TK_PROVISION },
	{ "$aws/provisioning-templates/t1/provision/json", NULL, ONB_TK_PROVISION },
	{ "$aws/provisioning-templates/t1/provision/cbor", NULL, ONB_TK_PROVISION },
	{ "$aws/certificates/create-from-csr/json/accepted", NULL, ONB_TK_AWS_REPLY },
	{ "$aws/certificates/create/cbor/rejected", NULL, ONB_TK_AWS_REPLY },
	{ "$aws/provisioning-templates/t1/provision/json/accepted", NULL, ONB_TK_AWS_REPLY },
	{ "$aws/certificates/create-from-csr/json/extra", NULL, ONB_TK_AWS_OTHER },
	{ "$aws/certificates/create-from-csr/json/accepted/x", NULL, ONB_TK_AWS_OTHER },
	{ "$aws/things/t/shadow/update", NULL, ONB_TK_AWS_OTHER },
	{ "$aws/", NULL, ONB_TK_AWS_OTHER },
	{ "devices/d1/certificates/renew", "d1", ONB_TK_RENEW_OWN },
	{ "devices/d1/certificates/renew", "d2", ONB_TK_RENEW },
	{ "devices/d1/certificates/renew", "d", ONB_TK_RENEW },
	{ "devices/d1/certificates/renew", NULL, ONB_TK_RENEW },
	{ "devices/d1/certificates/renew/accepted", "d1", ONB_TK_OWN_REPLY },
	{ "devices/d1/certificates/renew/rejected", NULL, ONB_TK_OWN_REPLY },
	{ "devices/d1/certificates/renew/required", "d1", ONB_TK_ORDINARY },
	{ "devices/+/certificates/renew", NULL, ONB_TK_ORDINARY },
	{ "devices/d1/certificates/renew/x", "d1", ONB_TK_ORDINARY },
	{ "onb/claim/json", NULL, ONB_TK_CLAIM },
	{ "onb/claim/json/accepted", NULL, ONB_TK_OWN_REPLY },
	{ "onb/claim/json/rejected", NULL, ONB_TK_OWN_REPLY },
	{ "onb/claim/cbor", NULL, ONB_TK_ORDINARY },
	{ "onb/internal/prov/request", NULL, ONB_TK_INT_ROUTE },
	{ "onb/internal/claim/request", NULL, ONB_TK_INT_ROUTE },
	{ "onb/internal/prov/reply", NULL, ONB_TK_INT_REPLY },
	{ "onb/internal/stats", NULL, ONB_TK_INT_STATS },
	{ "onb/internal/prov/reply/x", NULL, ONB_TK_INT_OTHER },
	{ "onb/internal/#", NULL, ONB_TK_INT_OTHER },
	{ "onb/internal/", NULL, ONB_TK_INT_OTHER },
	{ "onb/internal", NULL, ONB_TK_ORDINARY },
	{ "onb/+/prov/request", NULL, ONB_TK_ORDINARY },
};

static void topic_kinds(void **state)
{
	(void)state;
	for(size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++){
		enum onb_tkind k = onb_tkind_of(topics[i].topic, topics[i].self);
		if(k != topics[i].kind){
			print_error("%s (self %s): expected %s, got %s\n", topics[i].topic ? topics[i].topic : "NULL",
					topics[i].self ? topics[i].self : "NULL", onb_tkind_name(topics[i].kind), onb_tkind_name(k));
			fail();
		}
		cases++;
		if(!topics[i].topic) continue;
		/* a delivery: empty on a topic the plugin takes over is its
		 * emptied original, as onb_topic_handed_off says */
		k = onb_tkind_delivery(topics[i].topic, 0);
		assert_int_equal(k == ONB_TK_EMPTIED, onb_topic_handed_off(topics[i].topic));
		if(k != ONB_TK_EMPTIED) assert_int_equal(k, onb_tkind_of(topics[i].topic, NULL));
		k = onb_tkind_delivery(topics[i].topic, 1);
		assert_int_equal(k, onb_tkind_of(topics[i].topic, NULL));
		/* the kinds the plugin treats as internal are onb/internal/ */
		assert_int_equal(onb_tkind_internal(onb_tkind_of(topics[i].topic, NULL)),
				onb_topic_is_internal(topics[i].topic));
		cases += 3;
	}
	for(int k = 0; k < ONB_TK_COUNT; k++) assert_string_not_equal(onb_tkind_name((enum onb_tkind)k), "invalid");
}

static void classes_and_roles(void **state)
{
	static const struct {
		enum onb_idclass c;
		const char *tenant;
		enum onb_role role;
	} roles[] = {
		{ ONB_ID_NONE, NULL, ONB_ROLE_NONE }, { ONB_ID_NONE, "t1", ONB_ROLE_NONE },
		{ ONB_ID_DEVICE, NULL, ONB_ROLE_DEVICE }, { ONB_ID_DEVICE, "t1", ONB_ROLE_DEVICE },
		{ ONB_ID_CLAIM, NULL, ONB_ROLE_CLAIM }, { ONB_ID_CLAIM, "t1", ONB_ROLE_CLAIM },
		{ ONB_ID_BIRTH, "", ONB_ROLE_BIRTH }, { ONB_ID_BIRTH, "t1", ONB_ROLE_BIRTH },
		{ ONB_ID_SERVICE, NULL, ONB_ROLE_CLAIMSVC }, { ONB_ID_SERVICE, "", ONB_ROLE_CLAIMSVC },
		{ ONB_ID_SERVICE, "t1", ONB_ROLE_TENANT_APP }, { ONB_ID_COUNT, NULL, ONB_ROLE_NONE },
	};
	static const char *const not_classes[] = { NULL, "", "Device", "services", "dev", "device ", "tenant-app" };

	(void)state;
	for(int c = 0; c < ONB_ID_COUNT; c++){
		assert_int_equal(onb_idclass_parse(onb_idclass_name((enum onb_idclass)c)), c);
		cases++;
	}
	for(size_t i = 0; i < sizeof(not_classes) / sizeof(not_classes[0]); i++){
		assert_int_equal(onb_idclass_parse(not_classes[i]), ONB_ID_NONE);
		cases++;
	}
	for(size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++){
		assert_int_equal(onb_role_of(roles[i].c, roles[i].tenant), roles[i].role);
		cases++;
	}
	for(int r = 0; r < ONB_ROLE_COUNT; r++) assert_string_not_equal(onb_role_name((enum onb_role)r), "");
}

/* Which client ids a class may use beyond what admission checks. */
static void client_ids(void **state)
{
	(void)state;
	for(int c = 0; c < ONB_ID_COUNT; c++){
		bool prov = c == ONB_ID_CLAIM || c == ONB_ID_BIRTH;
		assert_int_equal(onb_idclass_provisioning((enum onb_idclass)c), prov);
		for(int live = 0; live < ONB_ID_COUNT; live++){
			/* a provisioning identity takes over only its own class */
			assert_int_equal(onb_client_id_takeover((enum onb_idclass)c, (enum onb_idclass)live),
					!prov || c == live);
			cases++;
		}
		for(int bound = 0; bound < 2; bound++){
			for(int own = 0; own < 2; own++){
				/* a registered device's id: only its own birth certificate */
				bool want = prov && bound && !(c == ONB_ID_BIRTH && own);
				assert_int_equal(onb_client_id_reserved((enum onb_idclass)c, bound, own), want);
				cases++;
			}
		}
		/* an ownership token or a renewal is recorded for these only */
		assert_int_equal(onb_idclass_may_request((enum onb_idclass)c),
				c == ONB_ID_DEVICE || c == ONB_ID_CLAIM || c == ONB_ID_BIRTH);
		cases += 2;
	}
}

static void default_policies(void **state)
{
	const struct onb_policy_names *n = &onb_policy_names_default;
	static const struct {
		enum onb_idclass c;
		enum onb_state st;
		const char *tenant, *explicit_policy, *want;
	} rows[] = {
		{ ONB_ID_NONE, ONB_STATE_ACTIVE, NULL, NULL, NULL },
		{ ONB_ID_CLAIM, ONB_STATE_MANUFACTURED, NULL, NULL, "claim" },
		{ ONB_ID_BIRTH, ONB_STATE_REVOKED, "t1", "own", "claim" },
		{ ONB_ID_SERVICE, ONB_STATE_MANUFACTURED, NULL, NULL, "service" },
		{ ONB_ID_SERVICE, ONB_STATE_MANUFACTURED, "", "own", "service" },
		{ ONB_ID_SERVICE, ONB_STATE_MANUFACTURED, "t1", NULL, "tenant-app" },
		{ ONB_ID_DEVICE, ONB_STATE_MANUFACTURED, NULL, NULL, NULL },
		{ ONB_ID_DEVICE, ONB_STATE_UNCLAIMED, NULL, NULL, "device" },
		{ ONB_ID_DEVICE, ONB_STATE_UNCLAIMED, "t1", NULL, "device" },
		{ ONB_ID_DEVICE, ONB_STATE_UNCLAIMED, NULL, "own", "own" },
		{ ONB_ID_DEVICE, ONB_STATE_ACTIVE, NULL, NULL, "device" },
		{ ONB_ID_DEVICE, ONB_STATE_ACTIVE, "t1", NULL, "device-tenant" },
		{ ONB_ID_DEVICE, ONB_STATE_ACTIVE, "t1", "own", "own" },
		{ ONB_ID_DEVICE, ONB_STATE_QUARANTINED, "t1", "own", "quarantine" },
		{ ONB_ID_DEVICE, ONB_STATE_REVOKED, NULL, NULL, NULL },
		{ ONB_ID_DEVICE, ONB_STATE_DECOMMISSIONED, NULL, NULL, NULL },
	};

	(void)state;
	for(size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++){
		const char *got = onb_policy_for(n, rows[i].c, rows[i].st, rows[i].tenant, rows[i].explicit_policy);
		if(rows[i].want) assert_string_equal(got, rows[i].want);
		else assert_null(got);
		cases++;
	}
}

/* A certificate with only a subject: what onb_cert_tenant reads. */
static X509 *with_subject(const char *org)
{
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(cert);
	assert_non_null(name);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"svc", -1, -1, 0), 1);
	if(org){
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)org, -1, -1, 0), 1);
	}
	assert_int_equal(X509_set_subject_name(cert, name), 1);
	X509_NAME_free(name);
	return cert;
}

static void service_tenants(void **state)
{
	static const struct {
		const char *org, *tenant;
	} rows[] = {
		{ NULL, "" }, { "Acme", "" }, { "tenant:", "" }, { "tenant:acme", "acme" },
		{ "tenant:a/b", "" }, { "Tenant:acme", "" }, { "tenant:acme-1.eu:x", "acme-1.eu:x" },
	};
	char tenant[ONB_ID_MAX + 1];

	(void)state;
	for(size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++){
		X509 *cert = with_subject(rows[i].org);
		memset(tenant, 'x', sizeof(tenant));
		onb_cert_tenant(cert, tenant);
		assert_string_equal(tenant, rows[i].tenant);
		X509_free(cert);
		cases++;
	}
	onb_cert_tenant(NULL, tenant);
	assert_string_equal(tenant, "");
	cases++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_role_deed_and_kind),
		cmocka_unit_test(reasons),
		cmocka_unit_test(topic_kinds),
		cmocka_unit_test(classes_and_roles),
		cmocka_unit_test(client_ids),
		cmocka_unit_test(default_policies),
		cmocka_unit_test(service_tenants),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	printf("%d cases\n", cases);
	return failed;
}
