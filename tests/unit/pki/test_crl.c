/* CRLs (lib/pki/crl.c): the built CRL read back with OpenSSL (version, times,
 * number, AKID, entries, reasons, signature), refusals, the PEM file round
 * trip, and the serials collected from a real registry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/crl.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static EVP_PKEY *root_key, *ca_key, *other_key;
static X509 *root, *ca, *leaf;

static X509 *sign(enum onb_cert_profile p, const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey)
{
	struct onb_cert_spec spec = { .profile = p, .cn = cn, .days = 30 };
	struct onb_err err;
	X509 *c = onb_cert_sign(&spec, key, issuer, ikey, &err);
	if(!c) fail_msg("sign %s: %s", cn, err.msg);
	return c;
}

static int group_start(void **state)
{
	struct onb_err err;

	if(!(root_key = onb_key_generate(&err)) || !(ca_key = onb_key_generate(&err))
			|| !(other_key = onb_key_generate(&err))){
		return -1;
	}
	root = sign(ONB_CERT_ROOT_CA, "test root", root_key, NULL, root_key);
	ca = sign(ONB_CERT_ISSUING_CA, "test device CA", ca_key, root, root_key);
	leaf = sign(ONB_CERT_CLIENT, "dev-1", other_key, ca, ca_key);
	return redis_fixture_start(state);
}

static int group_stop(void **state)
{
	X509_free(leaf);
	X509_free(ca);
	X509_free(root);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(root_key);
	return redis_fixture_stop(state);
}

static struct onb_crl_entry entry(const char *serial, int64_t ms, int reason)
{
	struct onb_crl_entry e;
	memset(&e, 0, sizeof(e));
	size_t n = strlen(serial);
	assert_true(n < sizeof(e.serial));
	memcpy(e.serial, serial, n + 1);
	e.revoked_ms = ms;
	e.reason = reason;
	return e;
}

/* Finds serial (hex) in crl; returns the entry or NULL. */
static X509_REVOKED *find(X509_CRL *crl, const char *hex)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai;
	X509_REVOKED *rev = NULL;

	assert_true(BN_hex2bn(&bn, hex) > 0);
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	if(X509_CRL_get0_by_serial(crl, &rev, ai) != 1) rev = NULL;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rev;
}

static int reason_of(X509_REVOKED *rev)
{
	ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
	int r = e ? (int)ASN1_ENUMERATED_get(e) : -1;
	ASN1_ENUMERATED_free(e);
	return r;
}

static void build_fields(void **state)
{
	struct onb_crl_entry es[4];
	const int64_t now = onb_now_ms() / 1000;
	struct onb_err err;
	X509_CRL *crl;
	ASN1_INTEGER *num;
	AUTHORITY_KEYID *akid;
	uint64_t n = 0;
	int days = 0, secs = 0;
	X509_REVOKED *rev;

	(void)state;
	es[0] = entry("7230a94c1cb567d8e400f993b922a449", (now - 3600) * 1000, ONB_CRL_REASON_KEY_COMPROMISE);
	es[1] = entry("1f", (now - 60) * 1000, ONB_CRL_REASON_CESSATION);
	es[2] = entry("1f", (now - 120) * 1000, ONB_CRL_REASON_KEY_COMPROMISE); /* duplicate: earliest wins */
	es[3] = entry("abc", (now + 999) * 1000, 0);                              /* future: clamped; no reason */
	crl = onb_crl_build(ca, ca_key, es, 4, now, 7, 42, &err);
	if(!crl) fail_msg("%s", err.msg);

	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)), 0);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), (time_t)now), 0);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl)), 1);
	assert_int_equal(days, 7);
	assert_int_equal(secs, 0);

	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_non_null(num);
	assert_int_equal(ASN1_INTEGER_get_uint64(&n, num), 1);
	assert_int_equal(n, 42);
	ASN1_INTEGER_free(num);

	akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	assert_non_null(akid);
	assert_non_null(akid->keyid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(ca)), 0);
	AUTHORITY_KEYID_free(akid);

	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
	rev = find(crl, "7230a94c1cb567d8e400f993b922a449");
	assert_non_null(rev);
	assert_int_equal(reason_of(rev), ONB_CRL_REASON_KEY_COMPROMISE);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(rev), (time_t)(now - 3600)), 0);
	rev = find(crl, "1f");
	assert_non_null(rev);
	assert_int_equal(reason_of(rev), ONB_CRL_REASON_KEY_COMPROMISE);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(rev), (time_t)(now - 120)), 0);
	rev = find(crl, "abc");
	assert_non_null(rev);
	assert_int_equal(reason_of(rev), -1);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(rev), (time_t)now), 0);
	assert_null(find(crl, "1e"));
	X509_CRL_free(crl);
}

/* OpenSSL's own verifier, with the CRL in the store and CRL_CHECK as
 * Mosquitto sets it: the leaf is refused as revoked. */
static void openssl_refuses_revoked_leaf(void **state)
{
	char serial[80];
	struct onb_err err;
	struct onb_crl_entry e;
	X509_CRL *crl, *empty;
	X509_STORE *store;
	X509_STORE_CTX *ctx;

	(void)state;
	assert_int_equal(onb_cert_serial_hex(leaf, serial, sizeof(serial), &err), ONB_OK);
	e = entry(serial, onb_now_ms() - 1000, ONB_CRL_REASON_KEY_COMPROMISE);
	crl = onb_crl_build(ca, ca_key, &e, 1, onb_now_ms() / 1000, 1, 1, &err);
	empty = onb_crl_build(ca, ca_key, NULL, 0, onb_now_ms() / 1000, 1, 1, &err);
	assert_non_null(crl);
	assert_non_null(empty);

	for(int round = 0; round < 2; round++){
		store = X509_STORE_new();
		X509_STORE_add_cert(store, root);
		X509_STORE_add_cert(store, ca);
		X509_STORE_add_crl(store, round ? empty : crl);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
		ctx = X509_STORE_CTX_new();
		X509_STORE_CTX_init(ctx, store, leaf, NULL);
		if(round == 0){
			assert_int_not_equal(X509_verify_cert(ctx), 1);
			assert_int_equal(X509_STORE_CTX_get_error(ctx), X509_V_ERR_CERT_REVOKED);
		}else{
			assert_int_equal(X509_verify_cert(ctx), 1);
		}
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(store);
	}
	X509_CRL_free(crl);
	X509_CRL_free(empty);
	ERR_clear_error();
}

static void build_refusals(void **state)
{
	struct onb_crl_entry bad = entry("XYZ", 1000, 1), zero = entry("0", 1000, 1),
		lead = entry("01", 1000, 1), r7 = entry("1", 1000, 7);
	struct onb_err err;
	const int64_t now = onb_now_ms() / 1000;

	(void)state;
	assert_null(onb_crl_build(ca, ca_key, NULL, 0, now, 0, 1, &err));
	assert_null(onb_crl_build(ca, ca_key, NULL, 0, now, ONB_CRL_DAYS_MAX + 1, 1, &err));
	assert_null(onb_crl_build(ca, ca_key, NULL, 0, now, 7, 0, &err));
	assert_null(onb_crl_build(ca, other_key, NULL, 0, now, 7, 1, &err));  /* key not the CA's */
	assert_non_null(strstr(err.msg, "does not match"));
	assert_null(onb_crl_build(leaf, other_key, NULL, 0, now, 7, 1, &err)); /* not a CA */
	assert_non_null(strstr(err.msg, "not a CA"));
	assert_null(onb_crl_build(ca, ca_key, NULL, 0, now + 40 * 86400, 7, 1, &err)); /* CA expired by then */
	assert_non_null(strstr(err.msg, "expired"));
	assert_null(onb_crl_build(ca, ca_key, &bad, 1, now, 7, 1, &err));
	assert_null(onb_crl_build(ca, ca_key, &zero, 1, now, 7, 1, &err));
	assert_null(onb_crl_build(ca, ca_key, &lead, 1, now, 7, 1, &err)); /* not normalised */
	assert_null(onb_crl_build(ca, ca_key, &r7, 1, now, 7, 1, &err));
	ERR_clear_error();
}

static void file_round_trip(void **state)
{
	const char *tmp = getenv("ONB_TEST_TMP");
	char dir[PATH_MAX], path[PATH_MAX + 16];
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null(), *back = NULL;
	struct onb_err err;
	struct stat sb;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/crl-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	mkdir(tmp && *tmp ? tmp : "/tmp", 0700);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/crl.pem", dir);

	assert_int_equal(onb_crl_read_file(path, &back, &err), ONB_ENOTFOUND);
	sk_X509_CRL_push(crls, onb_crl_build(ca, ca_key, NULL, 0, onb_now_ms() / 1000, 7, 5, &err));
	sk_X509_CRL_push(crls, onb_crl_build(root, root_key, NULL, 0, onb_now_ms() / 1000, 7, 9, &err));
	assert_int_equal(onb_crl_write(path, crls, &err), ONB_OK);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	assert_int_equal(onb_crl_read_file(path, &back, &err), ONB_OK);
	assert_int_equal(sk_X509_CRL_num(back), 2);
	assert_int_equal(onb_crl_last_number(back, ca), 5);
	assert_int_equal(onb_crl_last_number(back, root), 9);
	assert_int_equal(onb_crl_last_number(back, leaf), 0);
	sk_X509_CRL_pop_free(back, X509_CRL_free);
	back = NULL;

	/* a file that is not a CRL */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello\n", f);
	fclose(f);
	assert_int_equal(onb_crl_read_file(path, &back, &err), ONB_EINVAL);
	assert_null(back);
	/* nothing left behind but the output */
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	ERR_clear_error();
}

/* ------------------------------------------------------------ the registry */

static void add_device(const char *id, const char *serial, enum onb_state to)
{
	struct onb_actor actor = { .who = "test", .source = NULL };
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_register_req req;
	struct onb_err err;

	memset(fp, 'a', ONB_FP_HEXLEN);
	fp[ONB_FP_HEXLEN] = '\0';
	memcpy(fp, serial, strlen(serial)); /* a distinct fingerprint per device */
	req = (struct onb_register_req){ .id = id, .cert_fp = fp, .cert_serial = serial,
		.not_after = 2000000000, .state = ONB_STATE_ACTIVE };
	if(onb_registry_register(rc, &req, &actor, &err) != ONB_OK) fail_msg("register %s: %s", id, err.msg);
	if(to == ONB_STATE_DECOMMISSIONED){
		if(onb_registry_set_state(rc, id, ONB_STATE_REVOKED, NULL, &actor, NULL, &err) != ONB_OK){
			fail_msg("%s", err.msg);
		}
	}
	if(to != ONB_STATE_ACTIVE && onb_registry_set_state(rc, id, to, NULL, &actor, NULL, &err) != ONB_OK){
		fail_msg("set_state %s: %s", id, err.msg);
	}
}

static const struct onb_crl_entry *listed(const struct onb_crl_list *l, const char *serial)
{
	for(size_t i = 0; i < l->n; i++){
		if(!strcmp(l->e[i].serial, serial)) return &l->e[i];
	}
	return NULL;
}

static void collect_from_registry(void **state)
{
	struct onb_crl_list l = { 0 };
	const struct onb_crl_entry *e;
	struct onb_err err;
	redisReply *r;

	(void)state;
	add_device("dev-ok", "0a01", ONB_STATE_ACTIVE);
	add_device("dev-q", "0a02", ONB_STATE_QUARANTINED);
	add_device("dev-rev", "0a03", ONB_STATE_REVOKED);
	add_device("dev-dec", "00a04", ONB_STATE_DECOMMISSIONED);

	assert_int_equal(onb_crl_collect(rc, &l, &err), ONB_OK);
	assert_int_equal(l.n, 2);
	e = listed(&l, "a03");
	assert_non_null(e);
	assert_int_equal(e->reason, ONB_CRL_REASON_KEY_COMPROMISE);
	assert_string_equal(e->device, "dev-rev");
	assert_true(e->revoked_ms > 0 && e->revoked_ms <= onb_now_ms());
	e = listed(&l, "a04");
	assert_non_null(e);
	assert_int_equal(e->reason, ONB_CRL_REASON_CESSATION);
	onb_crl_list_free(&l);

	/* The device records vanish (re-enrolment, or an operator's DEL): the
	 * serials stay listed, with their first revocation date. */
	r = redisCommand(rc, "DEL onb:dev:{dev-rev} onb:dev:{dev-dec}");
	freeReplyObject(r);
	assert_int_equal(onb_crl_collect(rc, &l, &err), ONB_OK);
	assert_int_equal(l.n, 2);
	assert_non_null(listed(&l, "a03"));
	assert_non_null(listed(&l, "a04"));
	onb_crl_list_free(&l);

	/* A hand-recorded serial joins; a corrupt record is refused loudly. */
	{
		struct onb_crl_entry x = entry("beef", 1000, ONB_CRL_REASON_SUPERSEDED);
		assert_int_equal(onb_crl_record(rc, &x, &err), ONB_OK);
		x = entry("beef", 2000, ONB_CRL_REASON_KEY_COMPROMISE);
		assert_int_equal(onb_crl_record(rc, &x, &err), ONB_OK); /* first one stays */
		x = entry("nothex", 1000, 1);
		assert_int_equal(onb_crl_record(rc, &x, &err), ONB_EINVAL);
	}
	assert_int_equal(onb_crl_collect(rc, &l, &err), ONB_OK);
	assert_int_equal(l.n, 3);
	e = listed(&l, "beef");
	assert_non_null(e);
	assert_int_equal(e->revoked_ms, 1000);
	assert_int_equal(e->reason, ONB_CRL_REASON_SUPERSEDED);
	onb_crl_list_free(&l);

	r = redisCommand(rc, "HSET %s cafe %s", ONB_KEY_CRL_REVOKED, "garbage");
	freeReplyObject(r);
	assert_int_equal(onb_crl_collect(rc, &l, &err), ONB_EINTERNAL);
	assert_non_null(strstr(err.msg, "corrupt"));
	assert_int_equal(l.n, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(build_fields),
		cmocka_unit_test(openssl_refuses_revoked_leaf),
		cmocka_unit_test(build_refusals),
		cmocka_unit_test(file_round_trip),
		T(collect_from_registry),
	};
#undef T
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_start, group_stop);
}
