/* The three ways a CONNECT is decided (lib/identity/admission.c) give the same
 * answers: onb_admit reading Redis, onb_admit_view from an admission view
 * loaded from that Redis (or a miss, never another answer), and
 * onb_admit_prefetched from the one read a worker thread makes. Real
 * certificates from CAs made here, a real redis-server (redis_fixture.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "identity/admission.h"
#include "registry/registry.h"
#include "pki/x509.h"
#include "redis_fixture.h"
#include "x509_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };
static EVP_PKEY *root_key, *ca_key[ONB_ID_COUNT], *leaf_key;
static X509 *root;
static struct onb_ca_set cas;

static int group_setup(void **state)
{
	struct onb_cert_spec rs = { .profile = ONB_CERT_ROOT_CA, .cn = "paths root", .days = 30 };
	static const char *const names[ONB_ID_COUNT] = { NULL, "device CA", "claim CA", "birth CA", "service CA" };
	struct onb_err err;

	if(redis_fixture_start(state) != 0) return -1;
	root_key = onb_key_generate(&err);
	leaf_key = onb_key_generate(&err);
	root = onb_cert_sign(&rs, root_key, NULL, root_key, &err);
	if(!root || !leaf_key) return -1;
	memset(&cas, 0, sizeof(cas));
	for(int c = 0; c < ONB_ID_COUNT; c++){
		struct onb_cert_spec cs = { .profile = ONB_CERT_ISSUING_CA, .cn = names[c], .days = 30 };
		if(!names[c]) continue;
		ca_key[c] = onb_key_generate(&err);
		cas.ca[c] = ca_key[c] ? onb_cert_sign(&cs, ca_key[c], root, root_key, &err) : NULL;
		if(!cas.ca[c]) return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	for(int c = 0; c < ONB_ID_COUNT; c++){
		X509_free(cas.ca[c]);
		EVP_PKEY_free(ca_key[c]);
	}
	X509_free(root);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(leaf_key);
	return redis_fixture_stop(state);
}

/* A certificate of class c for cn, as the broker hands it over. */
static X509 *leaf(enum onb_idclass c, const char *cn)
{
	struct onb_cert_spec ls = { .profile = ONB_CERT_CLIENT, .cn = cn, .days = 1 };
	struct onb_err err;
	X509 *made = onb_cert_sign(&ls, leaf_key, cas.ca[c], ca_key[c], &err), *back;

	assert_non_null(made);
	back = fx_reparse(made);
	X509_free(made);
	return back;
}

static void fp_of(X509 *cert, char fp[ONB_FP_HEXLEN + 1])
{
	struct onb_err err;
	assert_int_equal(onb_cert_fingerprint(cert, fp, &err), ONB_OK);
}

static void reg(const char *id, X509 *cert, enum onb_state s, const char *tenant)
{
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_err err;
	struct onb_register_req req = {
		.id = id, .cert_fp = fp, .cert_serial = "0abc", .not_after = 1900000000,
		.state = s, .tenant = tenant,
	};
	fp_of(cert, fp);
	assert_int_equal(onb_registry_register(rc, &req, &actor, &err), ONB_OK);
}

struct want {
	bool allowed;
	const char *reason;
	bool view_misses;    /* the view has no record to decide by */
};

/* Decides (cert, client_id) the three ways against the current registry
 * and checks them against w and each other. */
static void decide_all(X509 *cert, const char *client_id, struct want w)
{
	struct onb_admission by_redis, by_view, by_pre;
	struct onb_admit_prefetch pre;
	struct onb_admview *v = onb_admview_new(0);
	struct onb_err err;
	int r;

	assert_non_null(v);
	assert_int_equal(onb_admview_load(rc, v, 0, NULL, NULL, &err), ONB_OK);
	assert_int_equal(onb_admit(rc, &cas, cert, client_id, &by_redis), ONB_OK);
	assert_int_equal(by_redis.allowed, w.allowed);
	assert_string_equal(by_redis.reason, w.reason);

	r = onb_admit_view(v, onb_now_ms(), &cas, cert, client_id, &by_view);
	if(w.view_misses){
		assert_int_equal(r, ONB_ENOTFOUND);
	}else{
		assert_int_equal(r, ONB_OK);
		assert_int_equal(by_view.allowed, by_redis.allowed);
		assert_string_equal(by_view.reason, by_redis.reason);
		assert_string_equal(by_view.detail, by_redis.detail);
		assert_string_equal(by_view.dev.id, by_redis.dev.id);
		assert_int_equal(by_view.dev.state, by_redis.dev.state);
		assert_string_equal(by_view.dev.tenant, by_redis.dev.tenant);
	}
	/* the worker's read is the one the first pass (view) names */
	assert_int_equal(by_view.idclass, by_redis.idclass);
	assert_string_equal(by_view.fp, by_redis.fp);
	onb_admit_prefetch(rc, by_view.idclass, by_view.fp, client_id, &pre);
	assert_int_equal(onb_admit_prefetched(&pre, &cas, cert, client_id, &by_pre), ONB_OK);
	assert_int_equal(by_pre.allowed, by_redis.allowed);
	assert_string_equal(by_pre.reason, by_redis.reason);
	assert_string_equal(by_pre.detail, by_redis.detail);
	assert_string_equal(by_pre.dev.id, by_redis.dev.id);
	onb_admview_free(v);
}

static void devices(void **state)
{
	X509 *d1 = leaf(ONB_ID_DEVICE, "dev-1"), *d2 = leaf(ONB_ID_DEVICE, "dev-2");
	X509 *stranger = leaf(ONB_ID_DEVICE, "dev-3");
	struct onb_err err;

	(void)state;
	reg("dev-1", d1, ONB_STATE_ACTIVE, "acme");
	reg("dev-2", d2, ONB_STATE_UNCLAIMED, NULL);
	decide_all(d1, "dev-1", (struct want){ true, "ok", false });
	decide_all(d2, "dev-2", (struct want){ true, "ok", false });
	decide_all(d1, "dev-2", (struct want){ false, "client-id-mismatch", false });
	decide_all(stranger, "dev-3", (struct want){ false, "not-registered", true });
	decide_all(d1, "bad+id", (struct want){ false, "bad-client-id", false });
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_QUARANTINED, "x", &actor, NULL, &err), ONB_OK);
	decide_all(d1, "dev-1", (struct want){ true, "ok", false });
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_REVOKED, "x", &actor, NULL, &err), ONB_OK);
	decide_all(d1, "dev-1", (struct want){ false, "device-state", false });
	X509_free(d1);
	X509_free(d2);
	X509_free(stranger);
}

static void provisioning_identities(void **state)
{
	X509 *dev = leaf(ONB_ID_DEVICE, "dev-b"), *claim = leaf(ONB_ID_CLAIM, "claim");
	X509 *birth = leaf(ONB_ID_BIRTH, "dev-b"), *other_birth = leaf(ONB_ID_BIRTH, "dev-x");
	char bfp[ONB_FP_HEXLEN + 1];
	redisReply *r;

	(void)state;
	reg("dev-b", dev, ONB_STATE_ACTIVE, "acme");
	fp_of(birth, bfp);
	r = redisCommand(rc, "HSET onb:dev:{dev-b} birth_fp %s", bfp);
	freeReplyObject(r);
	/* a fresh id: Redis admits, the view cannot tell */
	decide_all(claim, "new-1", (struct want){ true, "ok", true });
	/* a registered device's id is that device's */
	decide_all(claim, "dev-b", (struct want){ false, "client-id-reserved", false });
	decide_all(other_birth, "dev-b", (struct want){ false, "client-id-reserved", false });
	/* its own birth certificate may use it (reprovisioning) */
	decide_all(birth, "dev-b", (struct want){ true, "ok", false });
	X509_free(dev);
	X509_free(claim);
	X509_free(birth);
	X509_free(other_birth);
}

static void registry_down(void **state)
{
	X509 *d = leaf(ONB_ID_DEVICE, "dev-9");
	struct onb_admit_prefetch pre;
	struct onb_admission a;
	char fp[ONB_FP_HEXLEN + 1];

	(void)state;
	fp_of(d, fp);
	/* the worker had no connection: refused as onb_admit(NULL) refuses */
	onb_admit_prefetch(NULL, ONB_ID_DEVICE, fp, "dev-9", &pre);
	assert_int_equal(onb_admit_prefetched(&pre, &cas, d, "dev-9", &a), ONB_EUNAVAIL);
	assert_false(a.allowed);
	assert_string_equal(a.reason, "registry-unavailable");
	assert_int_equal(onb_admit(NULL, &cas, d, "dev-9", &a), ONB_OK);
	assert_string_equal(a.reason, "registry-unavailable");
	X509_free(d);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(devices),
		T(provisioning_identities),
		T(registry_down),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
