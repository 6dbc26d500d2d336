/* onb_cert_sign_for_encoding (and so onb_csr_issue) puts a leaf's public key
 * in as SubjectPublicKeyInfo bytes (lib/pki/x509.c set_pubkey) instead of
 * X509_set_pubkey's encode/decode round trip: the bytes must be exactly what
 * OpenSSL's encoder writes for the key, and the issued certificate, once
 * parsed, must carry the CSR's key and verify under its CA. onb_cert_sign
 * keeps the decoded key in memory. onb_issued_verify checks an issued
 * certificate strictly, as the broker's TLS would. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/csr.h"
#include "pki/x509.h"
#include "x509_fixture.h"

static EVP_PKEY *root_key, *ca_key;
static X509 *root, *ca;

static int group_setup(void **state)
{
	struct onb_cert_spec rs = { .profile = ONB_CERT_ROOT_CA, .cn = "keys root", .days = 30 };
	struct onb_cert_spec cs = { .profile = ONB_CERT_ISSUING_CA, .cn = "keys CA", .days = 30 };
	struct onb_err err;

	root_key = onb_key_generate(&err);
	ca_key = onb_key_generate(&err);
	root = root_key ? onb_cert_sign(&rs, root_key, NULL, root_key, &err) : NULL;
	ca = root && ca_key ? onb_cert_sign(&cs, ca_key, root, root_key, &err) : NULL;
	return ca ? 0 : -1;
}

static int group_teardown(void **state)
{
	X509_free(root);
	X509_free(ca);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(ca_key);
	return 0;
}

/* Issues a client certificate for key and checks the SubjectPublicKeyInfo
 * bytes against OpenSSL's own encoding (i2d_PUBKEY: the encoder that
 * X509_set_pubkey uses), then the key and signature on the parsed copy. */
static void check_key(EVP_PKEY *key, enum onb_cert_profile profile)
{
	struct onb_cert_spec spec = { .profile = profile, .cn = "leaf", .days = 1 };
	unsigned char *want = NULL, *got = NULL;
	int nwant, ngot;
	struct onb_err err;
	X509 *cert, *back;

	assert_non_null(key);
	cert = onb_cert_sign_for_encoding(&spec, key, ca, ca_key, &err);
	assert_non_null(cert);
	nwant = i2d_PUBKEY(key, &want);
	ngot = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &got);
	assert_true(nwant > 0);
	assert_int_equal(ngot, nwant);
	assert_memory_equal(got, want, (size_t)nwant);
	back = fx_reparse(cert);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(back), key), 1);
	assert_int_equal(X509_verify(back, ca_key), 1);
	assert_true(onb_cert_issued_by(back, ca));
	assert_true(onb_cert_issued_by(cert, ca));
	/* the subjectKeyIdentifier is computed over the same key bits */
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(back), X509_get0_subject_key_id(cert)), 0);
	OPENSSL_free(want);
	OPENSSL_free(got);
	X509_free(back);
	X509_free(cert);
	EVP_PKEY_free(key);
	ERR_clear_error();
}

static void leaf_keys_are_the_encoders_bytes(void **state)
{
	EVP_PKEY *compressed = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	(void)state;
	check_key(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), ONB_CERT_CLIENT);
	check_key(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), ONB_CERT_CLIENT);
	check_key(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"), ONB_CERT_SERVER);
	check_key(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), ONB_CERT_CLIENT);
	check_key(EVP_PKEY_Q_keygen(NULL, NULL, "ED448"), ONB_CERT_CLIENT);
	/* a point kept in compressed form stays compressed, as the encoder has it */
	assert_non_null(compressed);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(compressed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
			OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), 1);
	check_key(compressed, ONB_CERT_CLIENT);
	/* RSA still goes through X509_set_pubkey */
	check_key(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), ONB_CERT_CLIENT);
}

/* onb_cert_sign keeps a decoded key: its certificates are used in memory
 * (a CA signs the next one in onboardctl pki init; tests verify chains). */
static void sign_keeps_the_decoded_key(void **state)
{
	struct onb_cert_spec spec = { .profile = ONB_CERT_CLIENT, .cn = "leaf", .days = 1 };
	EVP_PKEY *key = onb_key_generate(NULL);
	struct onb_err err;
	X509 *cert;

	(void)state;
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(ca), ca_key), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(root), root_key), 1);
	assert_non_null(key);
	cert = onb_cert_sign(&spec, key, ca, ca_key, &err);
	assert_non_null(cert);
	assert_int_equal(X509_check_private_key(cert, key), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
	X509_free(cert);
	/* the cheap form has none in memory (documented), the same key on the wire */
	cert = onb_cert_sign_for_encoding(&spec, key, ca, ca_key, &err);
	assert_non_null(cert);
	assert_null(X509_get0_pubkey(cert));
	ERR_clear_error();
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* The claimsvc path: PEM CSR -> onb_csr_parse -> onb_csr_issue -> the PEM
 * chain the device receives carries the CSR's key and verifies. */
static void csr_key_reaches_the_certificate(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *mk = X509_REQ_new(), *req = NULL;
	X509_NAME *name = X509_NAME_new();
	BIO *b = BIO_new(BIO_s_mem());
	struct onb_issued iss;
	struct onb_err err;
	const char *code = NULL;
	char *pem = NULL, cn[ONB_FP_HEXLEN + 1];
	long n;
	X509 *leaf;

	(void)state;
	assert_non_null(key);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"x", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(mk, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(mk, key), 1);
	assert_true(X509_REQ_sign(mk, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(b, mk), 1);
	n = BIO_get_mem_data(b, &pem);
	assert_int_equal(onb_csr_parse(pem, (size_t)n, &req, &code, &err), ONB_OK);
	assert_int_equal(onb_pubkey_fingerprint(X509_REQ_get0_pubkey(req), cn, &err), ONB_OK);
	assert_int_equal(onb_csr_issue(X509_REQ_get0_pubkey(req), cn, 1, ca, ca_key, &iss, &err), ONB_OK);
	BIO_free(b);
	b = BIO_new_mem_buf(iss.chain_pem, -1);
	leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(leaf);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), X509_REQ_get0_pubkey(req)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
	assert_int_equal(X509_verify(leaf, X509_get0_pubkey(ca)), 1);
	assert_true(onb_cert_issued_by(leaf, ca));
	X509_free(leaf);
	BIO_free(b);
	onb_issued_clear(&iss);
	X509_REQ_free(req);
	X509_REQ_free(mk);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
}

/* ---- onb_issued_verify ---- */

/* A store holding root and/or ca, through a PEM file as claimsvc loads it. */
static X509_STORE *store_of(X509 *a, X509 *b, X509 *extra)
{
	char path[] = "/tmp/onb-keys-bundle.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	struct onb_err err;
	X509_STORE *st;

	assert_non_null(f);
	if(a) assert_int_equal(PEM_write_X509(f, a), 1);
	if(b) assert_int_equal(PEM_write_X509(f, b), 1);
	fclose(f);
	st = onb_trust_store_load(path, extra, &err);
	unlink(path);
	assert_non_null(st);
	return st;
}

static void issue_for(EVP_PKEY *key, struct onb_issued *iss)
{
	struct onb_err err;

	assert_non_null(key);
	assert_int_equal(onb_csr_issue(key, "leaf", 1, ca, ca_key, iss, &err), ONB_OK);
}

static void issued_certificates_verify_strictly(void **state)
{
	X509_STORE *full = store_of(root, ca, NULL), *bundle_plus_ca = store_of(root, NULL, ca);
	X509_STORE *ca_only = store_of(ca, NULL, NULL), *root_only = store_of(root, NULL, NULL);
	EVP_PKEY *keys[] = {
		EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
		EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
	};
	struct onb_issued iss;
	struct onb_err err;
	int verr, depth;

	(void)state;
	for(size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++){
		issue_for(keys[i], &iss);
		verr = 0;
		assert_int_equal(onb_issued_verify(&iss, full, &verr, &depth, &err), ONB_OK);
		assert_int_equal(onb_issued_verify(&iss, bundle_plus_ca, &verr, &depth, &err), ONB_OK);
		/* the issuing CA alone anchors the chain when its root is not there */
		assert_int_equal(onb_issued_verify(&iss, ca_only, &verr, &depth, &err), ONB_OK);
		/* but the issuing CA must be there */
		assert_int_equal(onb_issued_verify(&iss, root_only, &verr, &depth, &err), ONB_EREFUSED);
		assert_int_equal(verr, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
		assert_int_equal(depth, 0);
		onb_issued_clear(&iss);
		EVP_PKEY_free(keys[i]);
	}
	assert_int_equal(onb_issued_verify(NULL, full, &verr, &depth, &err), ONB_EINVAL);
	assert_null(onb_trust_store_load("/nonexistent/bundle.pem", NULL, &err));
	X509_STORE_free(full);
	X509_STORE_free(bundle_plus_ca);
	X509_STORE_free(ca_only);
	X509_STORE_free(root_only);
}

/* The finding: a P-256 key with explicit curve parameters (which the CSR
 * rules now refuse) gets a certificate that strict verification, and so the
 * broker, refuses. If such a key ever got past the CSR rules, the check
 * after issuing stops it before anything is recorded. */
static void explicit_parameters_fail_strict_verification(void **state)
{
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, (char *)OSSL_PKEY_EC_ENCODING_EXPLICIT, 0),
		OSSL_PARAM_construct_end(),
	};
	X509_STORE *full = store_of(root, ca, NULL);
	EVP_PKEY *key = NULL;
	struct onb_issued iss;
	struct onb_err err;
	int verr = 0, depth = -1;

	(void)state;
	assert_non_null(kctx);
	assert_int_equal(EVP_PKEY_keygen_init(kctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_params(kctx, params), 1);
	assert_int_equal(EVP_PKEY_keygen(kctx, &key), 1);
	issue_for(key, &iss);
	assert_int_equal(onb_issued_verify(&iss, full, &verr, &depth, &err), ONB_EREFUSED);
	assert_int_equal(verr, X509_V_ERR_EC_KEY_EXPLICIT_PARAMS);
	assert_int_equal(depth, 0);
	assert_non_null(strstr(err.msg, "explicit"));
	onb_issued_clear(&iss);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(kctx);
	X509_STORE_free(full);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(leaf_keys_are_the_encoders_bytes),
		cmocka_unit_test(sign_keeps_the_decoded_key),
		cmocka_unit_test(csr_key_reaches_the_certificate),
		cmocka_unit_test(issued_certificates_verify_strictly),
		cmocka_unit_test(explicit_parameters_fail_strict_verification),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
