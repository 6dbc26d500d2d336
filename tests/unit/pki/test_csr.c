/* Device CSRs (lib/pki/csr.c): strict PEM, key rules, self-signature, and the
 * certificate issued for a verified key. Keys and CSRs are made at run time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/csr.h"
#include "pki/x509.h"

static X509 *root, *ca;
static EVP_PKEY *root_key, *ca_key, *p256, *p384, *rsa2048;

/* ---- helpers ---- */

static EVP_PKEY *keygen(const char *type, const char *curve, size_t rsa_bits)
{
	EVP_PKEY *k = NULL;

	if(!strcmp(type, "RSA")) k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", rsa_bits);
	else if(curve) k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	else k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(k);
	return k;
}

/* A CSR for key with subject CN=cn, signed with md (NULL for EdDSA); with
 * evil, it also asks for a SAN and CA:TRUE. Returns the DER in *der. */
static X509_REQ *make_req(EVP_PKEY *key, const char *cn, const EVP_MD *md, bool evil)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	X509_NAME_free(name);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if(evil){
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:victim-device");
		X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
		assert_non_null(san);
		assert_non_null(bc);
		sk_X509_EXTENSION_push(exts, san);
		sk_X509_EXTENSION_push(exts, bc);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	assert_true(X509_REQ_sign(req, key, md) > 0);
	return req;
}

/* PEM text of a request (malloc). */
static char *req_pem(X509_REQ *req)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *out;
	long n;

	assert_int_equal(PEM_write_bio_X509_REQ(b, req), 1);
	n = BIO_get_mem_data(b, &data);
	out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

static char *csr_for(EVP_PKEY *key, const char *cn, const EVP_MD *md)
{
	X509_REQ *req = make_req(key, cn, md, false);
	char *pem = req_pem(req);
	X509_REQ_free(req);
	return pem;
}

/* PEM of DER bytes under the CERTIFICATE REQUEST label. */
static char *der_to_pem(const unsigned char *der, long len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *out;
	long n;

	assert_true(PEM_write_bio(b, "CERTIFICATE REQUEST", "", der, len) > 0);
	n = BIO_get_mem_data(b, &data);
	out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

/* Parses pem; expects failure with code, or success when code is NULL. */
static void expect(const char *pem, size_t len, const char *code)
{
	X509_REQ *req = NULL;
	const char *got = NULL;
	struct onb_err err = { "" };
	int rc = onb_csr_parse(pem, len, &req, &got, &err);

	if(!code){
		if(rc != ONB_OK) fail_msg("expected success, got %s: %s", got ? got : "?", err.msg);
		assert_non_null(req);
		X509_REQ_free(req);
		return;
	}
	if(rc == ONB_OK) fail_msg("expected %s, got success", code);
	assert_null(req);
	assert_non_null(got);
	if(strcmp(got, code) != 0) fail_msg("expected %s, got %s (%s)", code, got, err.msg);
	assert_true(strlen(err.msg) > 0);
}

static void expect_str(const char *pem, const char *code)
{
	expect(pem, strlen(pem), code);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
	struct onb_cert_spec rs = { .profile = ONB_CERT_ROOT_CA, .cn = "test root", .days = 3650 };
	struct onb_cert_spec cs = { .profile = ONB_CERT_ISSUING_CA, .cn = "test device CA", .days = 3650 };
	struct onb_err err;

	root_key = onb_key_generate(&err);
	ca_key = onb_key_generate(&err);
	root = onb_cert_sign(&rs, root_key, NULL, root_key, &err);
	ca = root ? onb_cert_sign(&cs, ca_key, root, root_key, &err) : NULL;
	p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	return root && ca && p256 && p384 && rsa2048 ? 0 : -1;
}

static int group_teardown(void **state)
{
	X509_free(root);
	X509_free(ca);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa2048);
	return 0;
}

/* ---- accepted keys ---- */

static void good_csrs(void **state)
{
	EVP_PKEY *ed = keygen("ED25519", NULL, 0);
	char *pem;

	pem = csr_for(p256, "dev", EVP_sha256()); expect_str(pem, NULL); free(pem);
	pem = csr_for(p384, "dev", EVP_sha384()); expect_str(pem, NULL); free(pem);
	pem = csr_for(rsa2048, "dev", EVP_sha256()); expect_str(pem, NULL); free(pem);
	pem = csr_for(p256, "dev", EVP_sha512()); expect_str(pem, NULL); free(pem);
	pem = csr_for(ed, "dev", NULL); expect_str(pem, NULL); free(pem);
	EVP_PKEY_free(ed);
}

static void blanks_around_are_fine(void **state)
{
	char *pem = csr_for(p256, "dev", EVP_sha256());
	char *padded = malloc(strlen(pem) + 16);

	snprintf(padded, strlen(pem) + 16, " \r\n\t%s\n\n  ", pem);
	expect_str(padded, NULL);
	free(padded);
	free(pem);
}

/* "NEW CERTIFICATE REQUEST" is the older label of the same thing. */
static void new_label(void **state)
{
	X509_REQ *req = make_req(p256, "dev", EVP_sha256(), false);
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *pem;
	long n;

	assert_int_equal(PEM_write_bio_X509_REQ_NEW(b, req), 1);
	n = BIO_get_mem_data(b, &data);
	pem = strndup(data, (size_t)n);
	assert_non_null(strstr(pem, "NEW CERTIFICATE REQUEST"));
	expect_str(pem, NULL);
	free(pem);
	BIO_free(b);
	X509_REQ_free(req);
}

static void weak_and_unsupported_keys(void **state)
{
	EVP_PKEY *rsa1024 = keygen("RSA", NULL, 1024);
	EVP_PKEY *p224 = keygen("EC", "P-224", 0);
	EVP_PKEY *k1 = keygen("EC", "secp256k1", 0);
	EVP_PKEY *p521 = keygen("EC", "P-521", 0);
	EVP_PKEY *ed448 = keygen("ED448", NULL, 0);
	char *pem;

	pem = csr_for(rsa1024, "dev", EVP_sha256()); expect_str(pem, ONB_CSR_E_WEAK_KEY); free(pem);
	pem = csr_for(p224, "dev", EVP_sha256()); expect_str(pem, ONB_CSR_E_WEAK_KEY); free(pem);
	pem = csr_for(k1, "dev", EVP_sha256()); expect_str(pem, ONB_CSR_E_KEY_TYPE); free(pem);
	pem = csr_for(p521, "dev", EVP_sha512()); expect_str(pem, ONB_CSR_E_KEY_TYPE); free(pem);
	pem = csr_for(ed448, "dev", NULL); expect_str(pem, ONB_CSR_E_KEY_TYPE); free(pem);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(p224);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(p521);
	EVP_PKEY_free(ed448);
}

/* An EC key on a known curve but with explicit parameters, as `openssl
 * ecparam -param_enc explicit` makes: OpenSSL 3 still reports its group name. */
static EVP_PKEY *explicit_ec(const char *curve)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0),
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, (char *)OSSL_PKEY_EC_ENCODING_EXPLICIT, 0),
		OSSL_PARAM_construct_end(),
	};
	char enc[32] = "";

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
	EVP_PKEY_CTX_free(ctx);
	/* the premise: the key really is explicit, yet has a group name */
	assert_int_equal(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc), NULL), 1);
	assert_string_equal(enc, OSSL_PKEY_EC_ENCODING_EXPLICIT);
	return k;
}

/* A certificate for an explicit-parameters key fails X509_V_FLAG_X509_STRICT
 * (and so the broker's TLS): the CSR is refused before anything is issued. */
static void explicit_curve_parameters_refused(void **state)
{
	static const char *const curves[] = { "P-256", "P-384" };
	struct onb_err err = { "" };
	const char *code;
	char *pem;

	(void)state;
	for(size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++){
		EVP_PKEY *k = explicit_ec(curves[i]);
		unsigned char *der = NULL;
		const unsigned char *p;
		EVP_PKEY *back;
		int n;

		code = NULL;
		assert_int_equal(onb_csr_key_acceptable(k, &code, &err), ONB_EINVAL);
		assert_non_null(code);
		assert_string_equal(code, ONB_CSR_E_KEY_TYPE);
		assert_non_null(strstr(err.msg, "explicit"));
		pem = csr_for(k, "dev", curves[i][2] == '2' ? EVP_sha256() : EVP_sha384());
		expect_str(pem, ONB_CSR_E_KEY_TYPE);
		free(pem);
		/* as it arrives in a CSR: decoded from its SubjectPublicKeyInfo */
		n = i2d_PUBKEY(k, &der);
		assert_true(n > 0);
		p = der;
		back = d2i_PUBKEY(NULL, &p, n);
		assert_non_null(back);
		assert_int_equal(onb_csr_key_acceptable(back, &code, &err), ONB_EINVAL);
		assert_string_equal(code, ONB_CSR_E_KEY_TYPE);
		EVP_PKEY_free(back);
		OPENSSL_free(der);
		EVP_PKEY_free(k);
	}
	/* the same curves, named, are still accepted */
	assert_int_equal(onb_csr_key_acceptable(p256, &code, &err), ONB_OK);
	assert_int_equal(onb_csr_key_acceptable(p384, &code, &err), ONB_OK);
	pem = csr_for(p256, "dev", EVP_sha256()); expect_str(pem, NULL); free(pem);
	pem = csr_for(p384, "dev", EVP_sha384()); expect_str(pem, NULL); free(pem);
	ERR_clear_error();
}

static void sha1_signature_refused(void **state)
{
	char *pem = csr_for(rsa2048, "dev", EVP_sha1());

	expect_str(pem, ONB_CSR_E_SIG_ALG);
	free(pem);
}

/* ---- malformed input ---- */

static void garbage(void **state)
{
	static const char nul[] = "-----BEGIN CERTIFICATE REQUEST-----\0";

	expect_str("", ONB_CSR_E_INVALID);
	expect_str("hello", ONB_CSR_E_INVALID);
	expect_str("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
			ONB_CSR_E_INVALID);
	expect_str("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
			ONB_CSR_E_INVALID);
	expect_str("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n", ONB_CSR_E_INVALID);
	expect(nul, sizeof(nul), ONB_CSR_E_INVALID);
	expect(NULL, 0, ONB_CSR_E_INVALID);
}

static void text_before_or_after(void **state)
{
	char *pem = csr_for(p256, "dev", EVP_sha256());
	size_t n = strlen(pem) + 64;
	char *buf = malloc(n);

	snprintf(buf, n, "junk line\n%s", pem);
	expect_str(buf, ONB_CSR_E_INVALID);
	snprintf(buf, n, "%sjunk\n", pem);
	expect_str(buf, ONB_CSR_E_INVALID);
	free(buf);
	free(pem);
}

static void two_csrs(void **state)
{
	char *a = csr_for(p256, "dev-a", EVP_sha256()), *b = csr_for(p384, "dev-b", EVP_sha384());
	size_t n = strlen(a) + strlen(b) + 1;
	char *both = malloc(n);

	snprintf(both, n, "%s%s", a, b);
	expect_str(both, ONB_CSR_E_INVALID);
	free(both);
	free(a);
	free(b);
}

static void other_pem_types(void **state)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *pem, *csr, *buf;
	long n;
	size_t len;

	/* a certificate is not a CSR, and a CSR after it must not be picked up */
	assert_int_equal(PEM_write_bio_X509(b, ca), 1);
	n = BIO_get_mem_data(b, &data);
	pem = strndup(data, (size_t)n);
	BIO_free(b);
	expect_str(pem, ONB_CSR_E_INVALID);
	csr = csr_for(p256, "dev", EVP_sha256());
	len = strlen(pem) + strlen(csr) + 1;
	buf = malloc(len);
	snprintf(buf, len, "%s%s", pem, csr);
	expect_str(buf, ONB_CSR_E_INVALID);
	free(buf);
	free(pem);
	/* PEM headers (encryption) are refused */
	len = strlen(csr) + 64;
	buf = malloc(len);
	snprintf(buf, len, "-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n\n%s",
			csr + strlen("-----BEGIN CERTIFICATE REQUEST-----\n"));
	expect_str(buf, ONB_CSR_E_INVALID);
	free(buf);
	free(csr);
}

static void size_limits(void **state)
{
	char *pem = csr_for(p256, "dev", EVP_sha256());
	size_t n = strlen(pem);
	char *big = malloc(1024 * 1024 + 1);

	/* exactly ONB_CSR_MAX with blank padding is accepted, one more is not */
	memset(big, ' ', ONB_CSR_MAX + 1);
	memcpy(big, pem, n);
	expect(big, ONB_CSR_MAX, NULL);
	expect(big, ONB_CSR_MAX + 1, ONB_CSR_E_TOO_LARGE);
	memset(big, 'A', 1024 * 1024);
	big[1024 * 1024] = '\0';
	expect(big, 1024 * 1024, ONB_CSR_E_TOO_LARGE);
	free(big);
	free(pem);
}

static void tampered(void **state)
{
	X509_REQ *req = make_req(p256, "dev", EVP_sha256(), false);
	unsigned char *der = NULL, *copy;
	int n = i2d_X509_REQ(req, &der);
	char *pem;
	const unsigned char *cn;

	assert_true(n > 0);
	copy = malloc((size_t)n);
	/* last byte: inside the signature */
	memcpy(copy, der, (size_t)n);
	copy[n - 1] ^= 0x01;
	pem = der_to_pem(copy, n);
	expect_str(pem, ONB_CSR_E_SIGNATURE);
	free(pem);
	/* a byte of the signed subject ("dev" -> "eev") */
	memcpy(copy, der, (size_t)n);
	cn = NULL;
	for(int i = 0; i + 3 <= n && !cn; i++){
		if(!memcmp(copy + i, "dev", 3)) cn = copy + i;
	}
	assert_non_null(cn);
	copy[cn - copy] = 'e';
	pem = der_to_pem(copy, n);
	expect_str(pem, ONB_CSR_E_SIGNATURE);
	free(pem);
	/* trailing bytes after the DER */
	copy = realloc(copy, (size_t)n + 2);
	memcpy(copy, der, (size_t)n);
	copy[n] = 0;
	copy[n + 1] = 0;
	pem = der_to_pem(copy, n + 2);
	expect_str(pem, ONB_CSR_E_INVALID);
	free(pem);
	free(copy);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

/* ---- issuing ---- */

static void issue_ignores_subject(void **state)
{
	X509_REQ *evil = make_req(p256, "victim-device", EVP_sha256(), true), *req = NULL;
	char *pem = req_pem(evil);
	const char *code = NULL;
	struct onb_err err;
	struct onb_issued iss;
	char cn[ONB_FP_HEXLEN + 1], got_cn[80], fp[ONB_FP_HEXLEN + 1];
	BASIC_CONSTRAINTS *bc;
	EXTENDED_KEY_USAGE *eku;
	int64_t now = time(NULL);

	assert_int_equal(onb_csr_parse(pem, strlen(pem), &req, &code, &err), ONB_OK);
	assert_int_equal(onb_pubkey_fingerprint(X509_REQ_get0_pubkey(req), cn, &err), ONB_OK);
	assert_int_equal(onb_csr_key_fingerprint(req, fp, &err), ONB_OK);
	assert_string_equal(fp, cn);
	assert_int_equal(onb_csr_issue(X509_REQ_get0_pubkey(req), cn, 30, ca, ca_key, &iss, &err), ONB_OK);
	assert_int_equal(onb_cert_subject_cn(iss.cert, got_cn, sizeof(got_cn), &err), ONB_OK);
	assert_string_equal(got_cn, cn);
	assert_null(X509_get_ext_d2i(iss.cert, NID_subject_alt_name, NULL, NULL));
	bc = X509_get_ext_d2i(iss.cert, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	eku = X509_get_ext_d2i(iss.cert, NID_ext_key_usage, NULL, NULL);
	assert_non_null(eku);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	assert_true(onb_cert_issued_by(iss.cert, ca));
	assert_int_equal(onb_cert_fingerprint(iss.cert, fp, &err), ONB_OK);
	assert_string_equal(iss.cert_id, fp);
	assert_int_equal(strlen(iss.serial), 32);
	assert_true(iss.not_after > now + 29 * 86400 && iss.not_after <= now + 30 * 86400 + 60);
	/* the chain: the leaf, then the device CA */
	{
		BIO *b = BIO_new_mem_buf(iss.chain_pem, -1);
		X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL), *second = PEM_read_bio_X509(b, NULL, NULL, NULL);
		assert_non_null(leaf);
		assert_non_null(second);
		assert_int_equal(X509_cmp(leaf, iss.cert), 0);
		assert_int_equal(X509_cmp(second, ca), 0);
		/* the device gets exactly its key (a leaf's key is not decoded
		 * again in memory: onb_cert_sign; checked on the issued PEM) */
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), p256), 1);
		assert_null(PEM_read_bio_X509(b, NULL, NULL, NULL));
		ERR_clear_error();
		X509_free(leaf);
		X509_free(second);
		BIO_free(b);
	}
	onb_issued_clear(&iss);
	onb_issued_clear(&iss); /* idempotent */
	X509_REQ_free(req);
	X509_REQ_free(evil);
	free(pem);
}

static void issue_refuses_bad_arguments(void **state)
{
	struct onb_issued iss;
	struct onb_err err;

	assert_int_not_equal(onb_csr_issue(p256, "", 30, ca, ca_key, &iss, &err), ONB_OK);
	assert_int_not_equal(onb_csr_issue(p256, "dev", 0, ca, ca_key, &iss, &err), ONB_OK);
	/* a CA key that does not match the CA */
	assert_int_not_equal(onb_csr_issue(p256, "dev", 30, ca, root_key, &iss, &err), ONB_OK);
	assert_int_not_equal(onb_csr_issue(NULL, "dev", 30, ca, ca_key, &iss, &err), ONB_OK);
}

static void pubkey_fingerprint_and_key_pem(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], hex[ONB_FP_HEXLEN + 1];
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	int n = i2d_PUBKEY(p384, &der);
	struct onb_err err;
	char *pem;
	BIO *b;
	EVP_PKEY *back;

	assert_int_equal(onb_pubkey_fingerprint(p384, fp, &err), ONB_OK);
	assert_int_equal(EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL), 1);
	for(unsigned int i = 0; i < mdlen; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(fp, hex);
	OPENSSL_free(der);

	pem = onb_key_pem(p256, &err);
	assert_non_null(pem);
	assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
	b = BIO_new_mem_buf(pem, -1);
	back = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(back, p256), 1);
	EVP_PKEY_free(back);
	BIO_free(b);
	onb_key_pem_free(pem);
	onb_key_pem_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_csrs),
		cmocka_unit_test(blanks_around_are_fine),
		cmocka_unit_test(new_label),
		cmocka_unit_test(weak_and_unsupported_keys),
		cmocka_unit_test(explicit_curve_parameters_refused),
		cmocka_unit_test(sha1_signature_refused),
		cmocka_unit_test(garbage),
		cmocka_unit_test(text_before_or_after),
		cmocka_unit_test(two_csrs),
		cmocka_unit_test(other_pem_types),
		cmocka_unit_test(size_limits),
		cmocka_unit_test(tampered),
		cmocka_unit_test(issue_ignores_subject),
		cmocka_unit_test(issue_refuses_bad_arguments),
		cmocka_unit_test(pubkey_fingerprint_and_key_pem),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
