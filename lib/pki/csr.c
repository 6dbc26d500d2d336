/* Device CSRs: strict PEM parsing, key policy, self-signature check, and the
 * operational certificate issued for a verified key (contract: pki/csr.h). */
#include "pki/csr.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

static const char pem_begin[] = "-----BEGIN ";

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Sets *code and formats err; returns rc (for one-line error paths). */
static int refuse(const char **code, const char *c, struct onb_err *err, int rc,
		const char *msg)
{
	if(code) *code = c;
	return onb_fail(err, rc, "%s", msg);
}

/* ---------------------------------------------------------------- key rules */

static int check_rsa(EVP_PKEY *key, const char **code, struct onb_err *err)
{
	int ret = ONB_EINVAL;
	int bits = EVP_PKEY_get_bits(key);
	BIGNUM *e = NULL;

	if(bits < ONB_CSR_RSA_MIN_BITS){
		if(code) *code = ONB_CSR_E_WEAK_KEY;
		return onb_fail(err, ONB_EINVAL, "RSA key of %d bits is too weak: at least %d bits "
				"are required", bits, ONB_CSR_RSA_MIN_BITS);
	}
	if(bits > ONB_CSR_RSA_MAX_BITS){
		if(code) *code = ONB_CSR_E_KEY_TYPE;
		return onb_fail(err, ONB_EINVAL, "RSA key of %d bits is not supported: at most %d bits",
				bits, ONB_CSR_RSA_MAX_BITS);
	}
	if(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || !e){
		ERR_clear_error();
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "RSA key has no public exponent");
		goto cleanup;
	}
	if(!BN_is_odd(e) || BN_num_bits(e) < 17){
		ret = refuse(code, ONB_CSR_E_WEAK_KEY, err, ONB_EINVAL,
				"RSA public exponent must be odd and at least 65537");
		goto cleanup;
	}
	ret = ONB_OK;
cleanup:
	BN_free(e);
	return ret;
}

static int check_ec(EVP_PKEY *key, const char **code, struct onb_err *err)
{
	char enc[32], group[64];
	size_t glen = 0;

	/* OpenSSL 3 names the group of a key given with explicit parameters
	 * too, when they match a known curve ("prime256v1" for an explicit
	 * P-256). The certificate then carries those parameters, which RFC 5480
	 * forbids and TLS peers refuse (X509_V_ERR_EC_KEY_EXPLICIT_PARAMS under
	 * X509_V_FLAG_X509_STRICT): such a device could never connect. Only the
	 * encoding tells the two apart. */
	if(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc), NULL) != 1
			|| strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0){
		ERR_clear_error();
		return refuse(code, ONB_CSR_E_KEY_TYPE, err, ONB_EINVAL,
				"EC key with explicit curve parameters is not supported: the key must name its "
				"curve (P-256 or P-384)");
	}
	if(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
			sizeof(group), &glen) != 1){
		ERR_clear_error();
		return refuse(code, ONB_CSR_E_KEY_TYPE, err, ONB_EINVAL,
				"EC key without a named curve is not supported (use P-256 or P-384)");
	}
	if(!strcmp(group, "prime256v1") || !strcmp(group, "P-256")
			|| !strcmp(group, "secp384r1") || !strcmp(group, "P-384")){
		return ONB_OK;
	}
	if(EVP_PKEY_get_bits(key) < 256){
		if(code) *code = ONB_CSR_E_WEAK_KEY;
		return onb_fail(err, ONB_EINVAL, "EC curve %.40s is too weak (use P-256 or P-384)", group);
	}
	if(code) *code = ONB_CSR_E_KEY_TYPE;
	return onb_fail(err, ONB_EINVAL, "EC curve %.40s is not supported (use P-256 or P-384)", group);
}

int onb_csr_key_acceptable(EVP_PKEY *key, const char **code, struct onb_err *err)
{
	const char *name;

	if(!key) return refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "no public key");
	if(EVP_PKEY_is_a(key, "RSA")) return check_rsa(key, code, err);
	if(EVP_PKEY_is_a(key, "EC")) return check_ec(key, code, err);
	if(EVP_PKEY_is_a(key, "ED25519")) return ONB_OK;
	name = EVP_PKEY_get0_type_name(key);
	if(code) *code = ONB_CSR_E_KEY_TYPE;
	return onb_fail(err, ONB_EINVAL, "%.40s keys are not supported (use EC P-256, P-384, "
			"RSA >= 2048 bits or Ed25519)", name ? name : "this kind of");
}

/* Digests a CSR may be signed with; EdDSA signs without a separate digest. */
static int check_sig_alg(X509_REQ *req, EVP_PKEY *key, const char **code, struct onb_err *err)
{
	int sig_nid = X509_REQ_get_signature_nid(req);
	int md_nid = NID_undef, pk_nid = NID_undef;
	const char *sn;

	if(sig_nid != NID_undef && OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) == 1){
		if(md_nid == NID_sha256 || md_nid == NID_sha384 || md_nid == NID_sha512
				|| md_nid == NID_sha3_256 || md_nid == NID_sha3_384 || md_nid == NID_sha3_512){
			return ONB_OK;
		}
		if(md_nid == NID_undef && pk_nid == NID_ED25519 && EVP_PKEY_is_a(key, "ED25519")){
			return ONB_OK;
		}
	}
	sn = sig_nid != NID_undef ? OBJ_nid2sn(sig_nid) : NULL;
	if(code) *code = ONB_CSR_E_SIG_ALG;
	return onb_fail(err, ONB_EINVAL, "CSR signature algorithm %.40s is not accepted "
			"(use SHA-256, SHA-384, SHA-512 or Ed25519)", sn ? sn : "(unknown)");
}

/* ------------------------------------------------------------------ parsing */

/* Reads the one PEM block of text[0..n) (already trimmed, starting with
 * "-----BEGIN ") as DER; *rest is set to what follows it. */
static int read_pem_block(const char *text, size_t n, unsigned char **der, long *derlen,
		size_t *rest, const char **code, struct onb_err *err)
{
	int ret = ONB_EINVAL;
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long datalen = 0;
	char *left = NULL;
	long leftlen;

	bio = BIO_new_mem_buf(text, (int)n);
	if(!bio){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	if(PEM_read_bio(bio, &name, &header, &data, &datalen) != 1){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL,
				"CSR is not valid PEM (bad base64 or missing END line)");
		goto cleanup;
	}
	if(strcmp(name, "CERTIFICATE REQUEST") != 0 && strcmp(name, "NEW CERTIFICATE REQUEST") != 0){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL,
				"PEM block is not a CERTIFICATE REQUEST");
		goto cleanup;
	}
	if(header && header[0]){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "PEM headers are not allowed in a CSR");
		goto cleanup;
	}
	leftlen = BIO_get_mem_data(bio, &left);
	if(leftlen < 0 || (size_t)leftlen > n){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINTERNAL, "PEM reader state");
		goto cleanup;
	}
	*rest = n - (size_t)leftlen;
	*der = data;
	*derlen = datalen;
	data = NULL;
	ret = ONB_OK;
cleanup:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	ERR_clear_error();
	return ret;
}

int onb_csr_parse(const char *pem, size_t len, X509_REQ **out, const char **code,
		struct onb_err *err)
{
	int ret = ONB_EINVAL;
	size_t start = 0, end = len, rest = 0;
	unsigned char *der = NULL;
	const unsigned char *p;
	long derlen = 0;
	X509_REQ *req = NULL;
	EVP_PKEY *key;

	if(!out) return refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "no output");
	if(!pem || len == 0) return refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "CSR is empty");
	if(len > ONB_CSR_MAX){
		if(code) *code = ONB_CSR_E_TOO_LARGE;
		return onb_fail(err, ONB_EINVAL, "CSR of %zu bytes is larger than the limit of %d bytes",
				len, ONB_CSR_MAX);
	}
	if(memchr(pem, '\0', len)){
		return refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "CSR contains a NUL byte");
	}
	while(start < end && is_blank(pem[start])) start++;
	while(end > start && is_blank(pem[end - 1])) end--;
	/* PEM_read_bio skips text before a BEGIN line and blocks of other types:
	 * insist that the CSR's own BEGIN line comes first. */
	if(end - start < sizeof(pem_begin) - 1 || memcmp(pem + start, pem_begin, sizeof(pem_begin) - 1)){
		return refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL,
				"CSR must be PEM text starting with -----BEGIN CERTIFICATE REQUEST-----");
	}
	ret = read_pem_block(pem + start, end - start, &der, &derlen, &rest, code, err);
	if(ret != ONB_OK) goto cleanup;
	for(size_t i = start + rest; i < end; i++){
		if(!is_blank(pem[i])){
			ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL,
					"exactly one CSR is expected: text follows the END line");
			goto cleanup;
		}
	}
	p = der;
	req = d2i_X509_REQ(NULL, &p, derlen);
	if(!req){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "CSR is not a valid PKCS#10 structure");
		goto cleanup;
	}
	if(p != der + derlen){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "CSR has trailing bytes after its DER");
		goto cleanup;
	}
	key = X509_REQ_get0_pubkey(req);
	if(!key){
		ret = refuse(code, ONB_CSR_E_INVALID, err, ONB_EINVAL, "CSR public key cannot be decoded");
		goto cleanup;
	}
	ret = onb_csr_key_acceptable(key, code, err);
	if(ret != ONB_OK) goto cleanup;
	ret = check_sig_alg(req, key, code, err);
	if(ret != ONB_OK) goto cleanup;
	if(X509_REQ_verify(req, key) != 1){
		ret = refuse(code, ONB_CSR_E_SIGNATURE, err, ONB_EINVAL,
				"CSR signature does not verify with its public key");
		goto cleanup;
	}
	*out = req;
	req = NULL;
	ret = ONB_OK;
cleanup:
	X509_REQ_free(req);
	OPENSSL_free(der);
	ERR_clear_error();
	return ret;
}

/* ------------------------------------------------------------------ issuing */

static const char hexdigits[] = "0123456789abcdef";

/* SHA-256 hex of der[0..n) (n <= 0: the encoding failed); frees der. */
static int spki_hash(unsigned char *der, int n, char out[ONB_FP_HEXLEN + 1], struct onb_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool ok = n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1
		&& mdlen * 2 == ONB_FP_HEXLEN;

	OPENSSL_free(der);
	if(!ok){
		ERR_clear_error();
		return onb_fail(err, ONB_EINTERNAL, "public key fingerprint failed");
	}
	for(unsigned int i = 0; i < mdlen; i++){
		out[2 * i] = hexdigits[md[i] >> 4];
		out[2 * i + 1] = hexdigits[md[i] & 0x0f];
	}
	out[ONB_FP_HEXLEN] = '\0';
	return ONB_OK;
}

int onb_pubkey_fingerprint(EVP_PKEY *key, char out[ONB_FP_HEXLEN + 1], struct onb_err *err)
{
	unsigned char *der = NULL;
	int n;

	if(!key || !out) return onb_fail(err, ONB_EINVAL, "public key fingerprint: no key");
	n = i2d_PUBKEY(key, &der);
	return spki_hash(der, n, out, err);
}

int onb_csr_key_fingerprint(X509_REQ *req, char out[ONB_FP_HEXLEN + 1], struct onb_err *err)
{
	unsigned char *der = NULL;
	X509_PUBKEY *pub = req ? X509_REQ_get_X509_PUBKEY(req) : NULL;
	int n;

	if(!pub || !out) return onb_fail(err, ONB_EINVAL, "public key fingerprint: no key");
	n = i2d_X509_PUBKEY(pub, &der);
	return spki_hash(der, n, out, err);
}

/* Copies the contents of a memory BIO into a new NUL-terminated string. */
static char *bio_to_string(BIO *bio)
{
	char *data = NULL, *s;
	long n = BIO_get_mem_data(bio, &data);

	if(n <= 0 || !data) return NULL;
	s = malloc((size_t)n + 1);
	if(!s) return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

int onb_csr_issue(EVP_PKEY *subject_key, const char *cn, int days, X509 *ca,
		EVP_PKEY *ca_key, struct onb_issued *out, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	struct onb_cert_spec spec = { .profile = ONB_CERT_CLIENT, .cn = cn, .days = days };
	struct onb_issued iss;
	BIO *bio = NULL;
	char ebuf[160];

	memset(&iss, 0, sizeof(iss));
	if(!subject_key || !ca || !ca_key || !out) return onb_fail(err, ONB_EINVAL, "issue: missing argument");
	/* claimsvc only encodes it (fingerprint, serial, PEM): the cheap way */
	iss.cert = onb_cert_sign_for_encoding(&spec, subject_key, ca, ca_key, err);
	if(!iss.cert) return ONB_EINTERNAL;
	ret = onb_cert_fingerprint(iss.cert, iss.cert_id, err);
	if(ret == ONB_OK) ret = onb_cert_serial_hex(iss.cert, iss.serial, sizeof(iss.serial), err);
	if(ret == ONB_OK) ret = onb_cert_not_after(iss.cert, &iss.not_after, err);
	if(ret != ONB_OK) goto cleanup;
	bio = BIO_new(BIO_s_mem());
	if(!bio || PEM_write_bio_X509(bio, iss.cert) != 1 || PEM_write_bio_X509(bio, ca) != 1
			|| !(iss.chain_pem = bio_to_string(bio))){
		ret = onb_fail(err, ONB_EINTERNAL, "cannot encode the certificate chain: %s",
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
		goto cleanup;
	}
	*out = iss;
	memset(&iss, 0, sizeof(iss));
	ret = ONB_OK;
cleanup:
	BIO_free(bio);
	onb_issued_clear(&iss);
	return ret;
}

int onb_issued_verify(const struct onb_issued *iss, X509_STORE *trust, int *verify_error,
		int *error_depth, struct onb_err *err)
{
	int ret = ONB_EINTERNAL, n, e, depth;
	unsigned char *der = NULL;
	const unsigned char *p;
	X509 *leaf = NULL;
	X509_STORE_CTX *ctx = NULL;
	char ebuf[160];

	if(!iss || !iss->cert || !trust) return onb_fail(err, ONB_EINVAL, "verify: missing argument");
	/* the DER the device and the broker get, decoded again: iss->cert may
	 * hold no decoded key (onb_cert_sign_for_encoding) */
	n = i2d_X509(iss->cert, &der);
	p = der;
	if(n <= 0 || !(leaf = d2i_X509(NULL, &p, n)) || !(ctx = X509_STORE_CTX_new())
			|| X509_STORE_CTX_init(ctx, trust, leaf, NULL) != 1
			|| X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1){
		ret = onb_fail(err, ONB_EINTERNAL, "cannot verify the issued certificate: %s",
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
		goto cleanup;
	}
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
	if(X509_verify_cert(ctx) != 1){
		e = X509_STORE_CTX_get_error(ctx);
		if(e == X509_V_OK){
			ret = onb_fail(err, ONB_EINTERNAL, "cannot verify the issued certificate: %s",
					onb_ssl_errstr(ebuf, sizeof(ebuf)));
			goto cleanup;
		}
		depth = X509_STORE_CTX_get_error_depth(ctx);
		if(verify_error) *verify_error = e;
		if(error_depth) *error_depth = depth;
		ret = onb_fail(err, ONB_EREFUSED, "the issued certificate fails strict verification: %s "
				"(at depth %d of its chain)", X509_verify_cert_error_string(e), depth);
		goto cleanup;
	}
	ret = ONB_OK;
cleanup:
	X509_STORE_CTX_free(ctx);
	X509_free(leaf);
	OPENSSL_free(der);
	ERR_clear_error();
	return ret;
}

void onb_issued_clear(struct onb_issued *iss)
{
	if(!iss) return;
	X509_free(iss->cert);
	free(iss->chain_pem);
	memset(iss, 0, sizeof(*iss));
}

char *onb_key_pem(EVP_PKEY *key, struct onb_err *err)
{
	BIO *bio;
	char *data = NULL, *s = NULL;
	long n;
	char ebuf[160];

	if(!key){
		onb_fail(err, ONB_EINVAL, "no key");
		return NULL;
	}
	/* A secure-memory BIO wipes its buffer when freed. */
	bio = BIO_new(BIO_s_secmem());
	if(!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1
			|| (n = BIO_get_mem_data(bio, &data)) <= 0 || !data){
		onb_fail(err, ONB_EINTERNAL, "cannot encode the private key: %s",
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
		BIO_free(bio);
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if(s){
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}else{
		onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	BIO_free(bio);
	return s;
}

void onb_key_pem_free(char *pem)
{
	if(!pem) return;
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
}
