/* Identity classes (lib/identity/identity.c) and the issuer check under them
 * (onb_cert_issued_by): a certificate is of a class only if that class's CA
 * signed it, whatever issuer name and key id it carries; and the cache of
 * answers returns what a fresh check would. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "identity/identity.h"
#include "pki/x509.h"
#include "x509_fixture.h"

static EVP_PKEY *root_key, *dev_key, *claim_key, *rogue_key, *leaf_key;
static X509 *root, *dev_ca, *claim_ca, *rogue_ca;

/* An issuing CA under root. */
static X509 *make_ca(const char *cn, EVP_PKEY *key)
{
	struct onb_cert_spec cs = { .profile = ONB_CERT_ISSUING_CA, .cn = cn, .days = 30 };
	struct onb_err err;

	return onb_cert_sign(&cs, key, root, root_key, &err);
}

static int group_setup(void **state)
{
	struct onb_cert_spec rs = { .profile = ONB_CERT_ROOT_CA, .cn = "id root", .days = 30 };
	struct onb_err err;

	root_key = onb_key_generate(&err);
	dev_key = onb_key_generate(&err);
	claim_key = onb_key_generate(&err);
	rogue_key = onb_key_generate(&err);
	leaf_key = onb_key_generate(&err);
	root = onb_cert_sign(&rs, root_key, NULL, root_key, &err);
	if(!root || !dev_key || !claim_key || !rogue_key || !leaf_key) return -1;
	dev_ca = make_ca("device CA", dev_key);
	claim_ca = make_ca("claim CA", claim_key);
	/* B's subject name, another key: trusted by the same root, like a CA
	 * of another role would be */
	rogue_ca = make_ca("device CA", rogue_key);
	return dev_ca && claim_ca && rogue_ca ? 0 : -1;
}

static int group_teardown(void **state)
{
	X509 *certs[] = { root, dev_ca, claim_ca, rogue_ca };
	EVP_PKEY *keys[] = { root_key, dev_key, claim_key, rogue_key, leaf_key };

	for(size_t i = 0; i < 4; i++) X509_free(certs[i]);
	for(size_t i = 0; i < 5; i++) EVP_PKEY_free(keys[i]);
	return 0;
}

/* cert as the broker hands it over: parsed afresh. Frees cert. */
static X509 *as_received(X509 *cert)
{
	X509 *back = fx_reparse(cert);

	X509_free(cert);
	return back;
}

static X509 *leaf_of(X509 *ca, EVP_PKEY *ca_key)
{
	struct onb_cert_spec ls = { .profile = ONB_CERT_CLIENT, .cn = "dev-1", .days = 1 };
	struct onb_err err;
	X509 *c = onb_cert_sign(&ls, leaf_key, ca, ca_key, &err);

	assert_non_null(c);
	return as_received(c);
}

/* A leaf signed with signer_key whose issuer name is named_ca's subject and
 * whose authority key id is named_ca's (copy_akid) or absent. */
static X509 *forged(X509 *signer, EVP_PKEY *signer_key, X509 *named_ca, bool copy_akid)
{
	struct onb_cert_spec ls = { .profile = ONB_CERT_CLIENT, .cn = "dev-1", .days = 1 };
	struct onb_err err;
	X509 *c = onb_cert_sign(&ls, leaf_key, signer, signer_key, &err);
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();

	assert_non_null(c);
	assert_non_null(akid);
	assert_int_equal(X509_set_issuer_name(c, X509_get_subject_name(named_ca)), 1);
	if(copy_akid){
		akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(named_ca));
		assert_non_null(akid->keyid);
		assert_int_equal(X509_add1_ext_i2d(c, NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE), 1);
	}else{
		X509_EXTENSION_free(X509_delete_ext(c, X509_get_ext_by_NID(c, NID_authority_key_identifier, -1)));
		assert_int_equal(X509_get_ext_by_NID(c, NID_authority_key_identifier, -1), -1);
	}
	AUTHORITY_KEYID_free(akid);
	assert_true(X509_sign(c, signer_key, EVP_sha256()) > 0);
	return as_received(c);
}

static void genuine_leaves_are_classed(void **state)
{
	struct onb_ca_set set = { { [ONB_ID_DEVICE] = dev_ca, [ONB_ID_CLAIM] = claim_ca }, NULL };
	X509 *dev = leaf_of(dev_ca, dev_key), *claim = leaf_of(claim_ca, claim_key);

	(void)state;
	assert_int_equal(onb_identity_classify(&set, dev), ONB_ID_DEVICE);
	assert_int_equal(onb_identity_classify(&set, claim), ONB_ID_CLAIM);
	assert_int_equal(onb_identity_classify(&set, NULL), ONB_ID_NONE);
	X509_free(dev);
	X509_free(claim);
}

/* CA A (same subject name as B, another key) issues a leaf: its issuer name
 * is B's, its key id A's. Not B's. */
static void same_name_other_key_is_not_b(void **state)
{
	struct onb_ca_set set = { { [ONB_ID_DEVICE] = dev_ca, [ONB_ID_CLAIM] = claim_ca }, NULL };
	X509 *leaf = leaf_of(rogue_ca, rogue_key);

	(void)state;
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(dev_ca)), 0);
	assert_false(onb_cert_issued_by(leaf, dev_ca));
	assert_int_equal(onb_identity_classify(&set, leaf), ONB_ID_NONE);
	X509_free(leaf);
}

/* CA A (the claim CA) signs a leaf naming the device CA as issuer, with the
 * device CA's key id or none: name and key id agree with B, so
 * X509_check_issued accepts B; only the signature does not. */
static void forged_issuer_is_not_b(void **state)
{
	struct onb_ca_set set = { { [ONB_ID_DEVICE] = dev_ca, [ONB_ID_CLAIM] = claim_ca }, NULL };
	X509 *signers[] = { claim_ca, rogue_ca };
	EVP_PKEY *keys[] = { claim_key, rogue_key };

	(void)state;
	for(size_t i = 0; i < 2; i++){
		for(int akid = 0; akid < 2; akid++){
			X509 *leaf = forged(signers[i], keys[i], dev_ca, akid);
			assert_int_equal(X509_check_issued(dev_ca, leaf), X509_V_OK); /* the cheap check is fooled */
			assert_false(onb_cert_issued_by(leaf, dev_ca));
			assert_int_equal(onb_identity_classify(&set, leaf), ONB_ID_NONE);
			X509_free(leaf);
		}
	}
	ERR_clear_error();
}

/* The cache answers for the same bytes only, and says what a fresh check says. */
static void cache_remembers_exact_certificates(void **state)
{
	struct onb_ca_set set = { { NULL }, NULL };
	const char *paths[ONB_ID_COUNT] = { NULL };
	struct onb_err err;
	X509 *dev = leaf_of(dev_ca, dev_key), *dev_again, *forgery, *claim = leaf_of(claim_ca, claim_key);
	X509 *real_dev_ca;

	(void)state;
	/* a set from onb_ca_set_load has a cache; no path loads no CA */
	assert_int_equal(onb_ca_set_load(&set, paths, &err), ONB_OK);
	assert_non_null(set.cache);
	set.ca[ONB_ID_DEVICE] = dev_ca;
	set.ca[ONB_ID_CLAIM] = claim_ca;
	assert_int_equal(onb_identity_classify(&set, dev), ONB_ID_DEVICE);
	assert_int_equal(onb_identity_classify(&set, claim), ONB_ID_CLAIM);
	/* same bytes, parsed again, as at the next connect */
	dev_again = X509_dup(dev);
	assert_int_equal(onb_identity_classify(&set, dev_again), ONB_ID_DEVICE);
	/* a forgery of the cached certificate (other signer) differs in bytes */
	forgery = forged(claim_ca, claim_key, dev_ca, true);
	assert_int_equal(onb_identity_classify(&set, forgery), ONB_ID_NONE);
	assert_int_equal(onb_identity_classify(&set, forgery), ONB_ID_NONE);
	/* White box: with the device CA swapped behind the set's back (real code
	 * never does; a reload makes a new set), the known certificate still
	 * says device: the answer came from the cache, not a new check. */
	real_dev_ca = set.ca[ONB_ID_DEVICE];
	set.ca[ONB_ID_DEVICE] = rogue_ca;
	assert_int_equal(onb_identity_classify(&set, dev), ONB_ID_DEVICE);
	set.ca[ONB_ID_DEVICE] = real_dev_ca;
	/* the set does not own these test CAs */
	set.ca[ONB_ID_DEVICE] = set.ca[ONB_ID_CLAIM] = NULL;
	onb_ca_set_clear(&set);
	assert_null(set.cache);
	X509_free(dev);
	X509_free(dev_again);
	X509_free(forgery);
	X509_free(claim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(genuine_leaves_are_classed),
		cmocka_unit_test(same_name_other_key_is_not_b),
		cmocka_unit_test(forged_issuer_is_not_b),
		cmocka_unit_test(cache_remembers_exact_certificates),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
