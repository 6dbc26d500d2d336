/* libFuzzer target for lib/pki/csr.c. The input is the PEM text handed to
 * onb_csr_parse. Invariants: failure always names one of the stable error
 * codes and a message and returns no request; success means the key is
 * acceptable and the self-signature verifies, and a certificate issued for
 * it carries exactly that key, our CN (never the CSR's subject) and no SAN. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca;
static EVP_PKEY *ca_key;

static const char *const codes[] = {
	ONB_CSR_E_INVALID, ONB_CSR_E_TOO_LARGE, ONB_CSR_E_SIGNATURE, ONB_CSR_E_WEAK_KEY,
	ONB_CSR_E_KEY_TYPE, ONB_CSR_E_SIG_ALG,
};

/* A throwaway self-signed CA, made once. */
static void setup(void)
{
	struct onb_cert_spec spec = { .profile = ONB_CERT_ROOT_CA, .cn = "fuzz CA", .days = 30 };
	struct onb_err err;

	ca_key = onb_key_generate(&err);
	ca = ca_key ? onb_cert_sign(&spec, ca_key, NULL, ca_key, &err) : NULL;
	if(!ca) abort();
}

/* The first certificate of chain_pem (what the device receives) carries key.
 * (onb_cert_sign writes a leaf's key as bytes without decoding it again, so
 * the in-memory certificate has no decoded key to compare.) */
static bool issued_key_is(const char *chain_pem, EVP_PKEY *key)
{
	BIO *b = BIO_new_mem_buf(chain_pem, -1);
	X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	bool ok = leaf && EVP_PKEY_eq(X509_get0_pubkey(leaf), key) == 1;

	X509_free(leaf);
	BIO_free(b);
	return ok;
}

static void check_issue(X509_REQ *req)
{
	EVP_PKEY *key = X509_REQ_get0_pubkey(req);
	struct onb_issued iss;
	struct onb_err err;
	char cn[ONB_FP_HEXLEN + 1], got[ONB_CERT_CN_MAX + 1];
	const char *code = NULL;

	if(!key || onb_csr_key_acceptable(key, &code, &err) != ONB_OK) abort();
	if(X509_REQ_verify(req, key) != 1) abort();
	if(onb_pubkey_fingerprint(key, cn, &err) != ONB_OK) abort();
	if(onb_csr_issue(key, cn, 1, ca, ca_key, &iss, &err) != ONB_OK) abort();
	if(onb_cert_subject_cn(iss.cert, got, sizeof(got), &err) != ONB_OK || strcmp(got, cn) != 0) abort();
	if(X509_get_ext_by_NID(iss.cert, NID_subject_alt_name, -1) >= 0) abort();
	if(!iss.chain_pem || strlen(iss.cert_id) != ONB_FP_HEXLEN) abort();
	if(!issued_key_is(iss.chain_pem, key)) abort();
	onb_issued_clear(&iss);
	ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	X509_REQ *req = NULL;
	const char *code = NULL;
	struct onb_err err;
	int rc;

	if(!ca) setup();
	err.msg[0] = '\0';
	rc = onb_csr_parse((const char *)data, size, &req, &code, &err);
	if(rc == ONB_OK){
		if(!req) abort();
		check_issue(req);
		X509_REQ_free(req);
		return 0;
	}
	if(req || !code || !err.msg[0]) abort();
	for(size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++){
		if(!strcmp(code, codes[i])) return 0;
	}
	abort();
}
