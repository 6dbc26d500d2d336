/* Certificate helpers: fingerprints, loading, issuer checks, field access,
 * and building/signing certificates for the development PKI and claimsvc. */
#include "pki/x509.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define SERIAL_BYTES 16

static const char hexdigits[] = "0123456789abcdef";

const char *onb_ssl_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *lib, *reason;

	if(!buf || len == 0) return "";
	if(e == 0){
		snprintf(buf, len, "no OpenSSL error");
	}else{
		lib = ERR_lib_error_string(e);
		reason = ERR_reason_error_string(e);
		if(reason){
			snprintf(buf, len, "%s%s%s", lib ? lib : "", lib ? ": " : "", reason);
		}else{
			ERR_error_string_n(e, buf, len);
		}
	}
	ERR_clear_error();
	return buf;
}

int onb_cert_fingerprint(X509 *cert, char out[ONB_FP_HEXLEN + 1], struct onb_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char ebuf[160];

	if(!cert || !out) return onb_fail(err, ONB_EINVAL, "fingerprint: no certificate");
	if(X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen * 2 != ONB_FP_HEXLEN){
		return onb_fail(err, ONB_EINTERNAL, "fingerprint: %s",
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
	}
	for(unsigned int i = 0; i < mdlen; i++){
		out[2 * i] = hexdigits[md[i] >> 4];
		out[2 * i + 1] = hexdigits[md[i] & 0x0f];
	}
	out[ONB_FP_HEXLEN] = '\0';
	return ONB_OK;
}

/* Opens path for reading; on failure fills err and returns NULL. */
static FILE *open_read(const char *path, const char *what, struct onb_err *err)
{
	FILE *f;

	if(!path || !*path){
		onb_fail(err, ONB_EINVAL, "no %s file given", what);
		return NULL;
	}
	f = fopen(path, "r");
	if(!f){
		onb_fail(err, errno == ENOENT ? ONB_ENOTFOUND : ONB_EUNAVAIL,
				"cannot open %s %s: %s", what, path, strerror(errno));
	}
	return f;
}

X509 *onb_cert_load(const char *path, struct onb_err *err)
{
	X509 *cert;
	FILE *f;
	char ebuf[160];

	f = open_read(path, "certificate", err);
	if(!f) return NULL;
	ERR_clear_error();
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if(!cert){
		onb_fail(err, ONB_EINVAL, "no PEM certificate in %s: %s", path,
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
	}
	return cert;
}

X509_STORE *onb_trust_store_load(const char *cafile, X509 *extra, struct onb_err *err)
{
	X509_STORE *st;
	FILE *f;
	char ebuf[160];

	/* open_read says "cannot open" plainly; X509_STORE_load_file would not */
	f = open_read(cafile, "CA bundle", err);
	if(!f) return NULL;
	fclose(f);
	ERR_clear_error();
	st = X509_STORE_new();
	if(!st || X509_STORE_load_file(st, cafile) != 1 || (extra && X509_STORE_add_cert(st, extra) != 1)){
		onb_fail(err, ONB_EINVAL, "cannot load the CA certificates of %s: %s", cafile,
				onb_ssl_errstr(ebuf, sizeof(ebuf)));
		X509_STORE_free(st);
		return NULL;
	}
	return st;
}

/* Passphrase callback that never prompts: records that the key is encrypted. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	*(bool *)u = true;
	return -1;
}

EVP_PKEY *onb_key_load(const char *path, struct onb_err *err)
{
	EVP_PKEY *key;
	FILE *f;
	bool encrypted = false;
	char ebuf[160];

	f = open_read(path, "private key", err);
	if(!f) return NULL;
	ERR_clear_error();
	key = PEM_read_PrivateKey(f, NULL, no_passphrase, &encrypted);
	fclose(f);
	if(!key){
		if(encrypted){
			ERR_clear_error();
			onb_fail(err, ONB_EINVAL, "private key %s is encrypted; "
					"passphrase-protected keys are not supported", path);
		}else{
			onb_fail(err, ONB_EINVAL, "no PEM private key in %s: %s", path,
					onb_ssl_errstr(ebuf, sizeof(ebuf)));
		}
	}
	return key;
}

/* The signature check stays although the TLS layer has verified the chain:
 * it is what binds the class to the CA's key. X509_check_issued alone
 * compares the issuer name and, only when the certificate has one, the
 * authority key id, both written by whoever signed it. A CA the broker
 * trusts for another role (a manufacturer's CA in the bundle, say) can sign
 * a certificate naming the device CA as issuer, with the device CA's key id
 * or none, and TLS accepts it through its real issuer; only the signature
 * tells it from the device CA's own (tests/unit/identity/test_identity.c builds such
 * certificates). The cost, ~0.9 M instructions of ECDSA verification per
 * call, is paid once per certificate: onb_identity_classify caches. */
bool onb_cert_issued_by(X509 *cert, X509 *ca)
{
	EVP_PKEY *capub;
	bool ok;

	if(!cert || !ca) return false;
	capub = X509_get0_pubkey(ca);
	if(!capub){
		ERR_clear_error();
		return false;
	}
	ok = X509_check_issued(ca, cert) == X509_V_OK && X509_verify(cert, capub) == 1;
	ERR_clear_error();
	return ok;
}

int onb_cert_subject_attr(X509 *cert, int nid, char *buf, size_t len, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	const X509_NAME *name;
	const X509_NAME_ENTRY *entry;
	unsigned char *utf8 = NULL;
	const char *what = OBJ_nid2sn(nid);
	int idx, n;

	if(!cert || !buf || len == 0) return onb_fail(err, ONB_EINVAL, "subject %s: bad arguments", what);
	name = X509_get_subject_name(cert);
	idx = name ? X509_NAME_get_index_by_NID(name, nid, -1) : -1;
	if(idx < 0) return onb_fail(err, ONB_ENOTFOUND, "certificate subject has no %s", what);
	if(X509_NAME_get_index_by_NID(name, nid, idx) >= 0){
		return onb_fail(err, ONB_EINVAL, "certificate subject has more than one %s", what);
	}
	entry = X509_NAME_get_entry(name, idx);
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
	if(n < 0){
		ret = onb_fail(err, ONB_EINVAL, "certificate %s is not a valid string", what);
		goto cleanup;
	}
	if(memchr(utf8, '\0', (size_t)n)){
		ret = onb_fail(err, ONB_EINVAL, "certificate %s holds a NUL byte", what);
		goto cleanup;
	}
	if((size_t)n >= len){
		ret = onb_fail(err, ONB_EINVAL, "certificate %s is too long (%d bytes)", what, n);
		goto cleanup;
	}
	memcpy(buf, utf8, (size_t)n);
	buf[n] = '\0';
	ret = ONB_OK;
cleanup:
	OPENSSL_free(utf8);
	ERR_clear_error();
	return ret;
}

int onb_cert_subject_cn(X509 *cert, char *buf, size_t len, struct onb_err *err)
{
	return onb_cert_subject_attr(cert, NID_commonName, buf, len, err);
}

int onb_cert_serial_hex(X509 *cert, char *buf, size_t len, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	size_t n;
	char ebuf[160];

	if(!cert || !buf || len == 0) return onb_fail(err, ONB_EINVAL, "serial: bad arguments");
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	if(!bn || !(hex = BN_bn2hex(bn))){
		ret = onb_fail(err, ONB_EINTERNAL, "serial: %s", onb_ssl_errstr(ebuf, sizeof(ebuf)));
		goto cleanup;
	}
	n = strlen(hex);
	if(n >= len){
		ret = onb_fail(err, ONB_EINVAL, "serial: %zu hex digits do not fit", n);
		goto cleanup;
	}
	for(size_t i = 0; i <= n; i++){
		char c = hex[i];
		buf[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	ret = ONB_OK;
cleanup:
	OPENSSL_free(hex);
	BN_free(bn);
	return ret;
}

int onb_cert_not_after(X509 *cert, int64_t *out, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	ASN1_TIME *epoch = NULL;
	const ASN1_TIME *na;
	int days = 0, secs = 0;

	if(!cert || !out) return onb_fail(err, ONB_EINVAL, "notAfter: bad arguments");
	na = X509_get0_notAfter(cert);
	epoch = ASN1_TIME_set(NULL, 0);
	if(!epoch){
		ret = onb_fail(err, ONB_EINTERNAL, "notAfter: out of memory");
		goto cleanup;
	}
	if(!na || ASN1_TIME_diff(&days, &secs, epoch, na) != 1){
		ret = onb_fail(err, ONB_EINVAL, "certificate notAfter is not a valid time");
		goto cleanup;
	}
	*out = (int64_t)days * 86400 + secs;
	ret = ONB_OK;
cleanup:
	ASN1_TIME_free(epoch);
	ERR_clear_error();
	return ret;
}

/* ---- building and signing ---- */

bool onb_cert_cn_valid(const char *cn)
{
	size_t n = 0;

	if(!cn) return false;
	for(; cn[n]; n++){
		unsigned char c = (unsigned char)cn[n];
		if(c < 0x20 || c > 0x7e || n >= ONB_CERT_CN_MAX) return false;
	}
	return n > 0;
}

EVP_PKEY *onb_key_generate(struct onb_err *err)
{
	EVP_PKEY *key;
	char ebuf[160];

	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if(!key) onb_fail(err, ONB_EINTERNAL, "EC P-256 key generation failed: %s",
			onb_ssl_errstr(ebuf, sizeof(ebuf)));
	return key;
}

/* True for a dNSName of LDH labels separated by dots, optionally "*." first. */
static bool dns_name_valid(const char *s)
{
	size_t n = strlen(s), label = 0;

	if(n == 0 || n > 253) return false;
	if(!strncmp(s, "*.", 2)) s += 2;
	for(; *s; s++){
		unsigned char c = (unsigned char)*s;
		if(c == '.'){
			if(label == 0) return false;
			label = 0;
		}else if((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
				|| c == '-'){
			if(++label > 63) return false;
		}else{
			return false;
		}
	}
	return label > 0;
}

/* An IP literal: only hex digits, dots and colons (a2i_IPADDRESS is lenient). */
static bool ip_text_plausible(const char *s)
{
	size_t n = strlen(s);

	if(n == 0 || n > 45) return false;
	return strspn(s, "0123456789abcdefABCDEF.:") == n;
}

/* RFC 5280 s.4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
static ASN1_OCTET_STRING *key_id(const X509_PUBKEY *pub)
{
	const unsigned char *pk = NULL;
	int pklen = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	ASN1_OCTET_STRING *os;

	if(!pub || X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, pub) != 1) return NULL;
	if(EVP_Digest(pk, (size_t)pklen, md, &mdlen, EVP_sha1(), NULL) != 1) return NULL;
	os = ASN1_OCTET_STRING_new();
	if(os && ASN1_OCTET_STRING_set(os, md, (int)mdlen) != 1){
		ASN1_OCTET_STRING_free(os);
		os = NULL;
	}
	return os;
}

static int add_name_entry(X509_NAME *name, int nid, const char *value)
{
	return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
			(const unsigned char *)value, -1, -1, 0);
}

static int add_basic_constraints(X509 *cert, enum onb_cert_profile profile)
{
	int ret = 0;
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();

	if(!bc) return 0;
	if(profile == ONB_CERT_ROOT_CA || profile == ONB_CERT_ISSUING_CA) bc->ca = 0xff;
	if(profile == ONB_CERT_ISSUING_CA){
		bc->pathlen = ASN1_INTEGER_new();
		if(!bc->pathlen || ASN1_INTEGER_set(bc->pathlen, 0) != 1) goto cleanup;
	}
	ret = X509_add1_ext_i2d(cert, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE) == 1;
cleanup:
	BASIC_CONSTRAINTS_free(bc);
	return ret;
}

static int add_key_usage(X509 *cert, enum onb_cert_profile profile)
{
	int ret = 0;
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();

	if(!ku) return 0;
	if(profile == ONB_CERT_ROOT_CA || profile == ONB_CERT_ISSUING_CA){
		/* bit 5 keyCertSign, bit 6 cRLSign */
		if(ASN1_BIT_STRING_set_bit(ku, 5, 1) != 1 || ASN1_BIT_STRING_set_bit(ku, 6, 1) != 1){
			goto cleanup;
		}
	}else if(ASN1_BIT_STRING_set_bit(ku, 0, 1) != 1){ /* bit 0 digitalSignature */
		goto cleanup;
	}
	ret = X509_add1_ext_i2d(cert, NID_key_usage, ku, 1, X509V3_ADD_REPLACE) == 1;
cleanup:
	ASN1_BIT_STRING_free(ku);
	return ret;
}

static int add_ext_key_usage(X509 *cert, enum onb_cert_profile profile)
{
	int ret = 0;
	EXTENDED_KEY_USAGE *eku;
	int nid = profile == ONB_CERT_SERVER ? NID_server_auth : NID_client_auth;

	if(profile != ONB_CERT_CLIENT && profile != ONB_CERT_SERVER) return 1;
	eku = sk_ASN1_OBJECT_new_null();
	if(!eku) return 0;
	/* OBJ_nid2obj returns a static object: free the stack only. */
	if(sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(nid)) <= 0) goto cleanup;
	ret = X509_add1_ext_i2d(cert, NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE) == 1;
cleanup:
	sk_ASN1_OBJECT_free(eku);
	return ret;
}

/* Adds subjectAltName from spec; returns ONB_OK or an error in err. */
static int add_san(X509 *cert, const struct onb_cert_spec *spec, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn = NULL;
	const char *const *p;

	if((!spec->san_dns || !spec->san_dns[0]) && (!spec->san_ip || !spec->san_ip[0])) return ONB_OK;
	gens = sk_GENERAL_NAME_new_null();
	if(!gens) goto oom;
	for(p = spec->san_dns; p && *p; p++){
		ASN1_IA5STRING *ia5;
		if(!dns_name_valid(*p)){
			ret = onb_fail(err, ONB_EINVAL, "invalid DNS name for subjectAltName");
			goto cleanup;
		}
		if(!(gn = GENERAL_NAME_new()) || !(ia5 = ASN1_IA5STRING_new())) goto oom;
		if(ASN1_STRING_set(ia5, *p, (int)strlen(*p)) != 1){
			ASN1_IA5STRING_free(ia5);
			goto oom;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
		if(sk_GENERAL_NAME_push(gens, gn) <= 0) goto oom;
		gn = NULL;
	}
	for(p = spec->san_ip; p && *p; p++){
		ASN1_OCTET_STRING *ip = ip_text_plausible(*p) ? a2i_IPADDRESS(*p) : NULL;
		if(!ip){
			ERR_clear_error();
			ret = onb_fail(err, ONB_EINVAL, "invalid IP address for subjectAltName");
			goto cleanup;
		}
		if(!(gn = GENERAL_NAME_new())){
			ASN1_OCTET_STRING_free(ip);
			goto oom;
		}
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
		if(sk_GENERAL_NAME_push(gens, gn) <= 0) goto oom;
		gn = NULL;
	}
	if(X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_REPLACE) != 1) goto oom;
	ret = ONB_OK;
	goto cleanup;
oom:
	ret = onb_fail(err, ONB_EINTERNAL, "cannot build subjectAltName");
cleanup:
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return ret;
}

/* Adds subjectKeyIdentifier and authorityKeyIdentifier (the issuer's SKI, or
 * its key hash when it has none; the certificate's own for a root). */
static int add_key_ids(X509 *cert, X509 *issuer)
{
	int ret = 0;
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *issuer_ski;

	ski = key_id(X509_get_X509_PUBKEY(cert));
	if(!ski || X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE) != 1){
		goto cleanup;
	}
	if(!(akid = AUTHORITY_KEYID_new())) goto cleanup;
	if(!issuer){
		akid->keyid = ski;
		ski = NULL;
	}else if((issuer_ski = X509_get0_subject_key_id(issuer)) != NULL){
		akid->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
	}else{
		akid->keyid = key_id(X509_get_X509_PUBKEY(issuer));
	}
	if(!akid->keyid) goto cleanup;
	ret = X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE) == 1;
cleanup:
	AUTHORITY_KEYID_free(akid);
	ASN1_OCTET_STRING_free(ski);
	return ret;
}

/* The algorithm of key's SubjectPublicKeyInfo, for the key types we write
 * ourselves: EC on a named curve (parameter: the curve's OID), Ed25519 and
 * Ed448 (no parameter, RFC 8410). False for anything else. */
static bool spki_algorithm(EVP_PKEY *key, int *alg_nid, int *curve_nid)
{
	char enc[32], group[64];

	*curve_nid = NID_undef;
	if(EVP_PKEY_is_a(key, "ED25519")){
		*alg_nid = NID_ED25519;
		return true;
	}
	if(EVP_PKEY_is_a(key, "ED448")){
		*alg_nid = NID_ED448;
		return true;
	}
	if(!EVP_PKEY_is_a(key, "EC")) return false;
	/* explicit curve parameters are encoded as such by OpenSSL: leave those to it */
	if(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc), NULL) != 1
			|| strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0
			|| EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1){
		return false;
	}
	*curve_nid = OBJ_txt2nid(group);
	if(*curve_nid == NID_undef) *curve_nid = EC_curve_nist2nid(group);
	*alg_nid = NID_X9_62_id_ecPublicKey;
	return *curve_nid != NID_undef;
}

/* Puts the public half of key into cert. X509_set_pubkey does this in
 * OpenSSL 3.0 by encoding the key with the provider encoder and decoding the
 * DER again (OSSL_ENCODER_CTX_new_for_pkey + d2i_X509_PUBKEY), 38 % of
 * claimsvc's CPU per device (docs/performance.md). For EC named curves and
 * EdDSA the SubjectPublicKeyInfo is just an algorithm OID (+ curve OID) and
 * the key's own encoded point / raw bytes, which the key hands out directly
 * as its "pub" parameter: same DER, no round trip
 * (tests/unit/pki/test_x509_keys.c compares the bytes). The price: the
 * certificate's decoded-key cache stays empty, so X509_get0_pubkey(cert) is
 * NULL until it is parsed again, and OpenSSL can neither verify the
 * certificate in memory nor match it with its private key; hence only when
 * the caller asks (as_bytes: onb_cert_sign_for_encoding) and only for leaf
 * profiles. Everything else goes through X509_set_pubkey. Returns 1 on
 * success, 0 on failure. */
static int set_pubkey(X509 *cert, EVP_PKEY *key, enum onb_cert_profile profile, bool as_bytes)
{
	unsigned char *bits = NULL;
	size_t len;
	int alg_nid, curve_nid;

	if(!as_bytes || (profile != ONB_CERT_CLIENT && profile != ONB_CERT_SERVER)
			|| !spki_algorithm(key, &alg_nid, &curve_nid)){
		return X509_set_pubkey(cert, key);
	}
	/* "pub": the EC point in the key's own conversion form (as the encoder
	 * writes it; "encoded-pub-key" would always be uncompressed), or the
	 * raw EdDSA key */
	if(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, NULL, 0, &len) != 1
			|| !(bits = OPENSSL_malloc(len ? len : 1))
			|| EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, bits, len, &len) != 1){
		len = 0;
	}
	if(len == 0 || len > INT_MAX){
		OPENSSL_free(bits);
		return 0;
	}
	/* OBJ_nid2obj objects are static (freeing them is a no-op); bits now
	 * belong to the certificate */
	if(X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(alg_nid),
			curve_nid == NID_undef ? V_ASN1_UNDEF : V_ASN1_OBJECT,
			curve_nid == NID_undef ? NULL : OBJ_nid2obj(curve_nid), bits, (int)len) != 1){
		OPENSSL_free(bits);
		return 0;
	}
	return 1;
}

/* Checks spec and the key/issuer pairing; returns ONB_OK or an error in err. */
static int check_sign_args(const struct onb_cert_spec *spec, EVP_PKEY *subject_key,
		X509 *issuer, EVP_PKEY *issuer_key, struct onb_err *err)
{
	bool root;

	if(!spec || !subject_key || !issuer_key) return onb_fail(err, ONB_EINVAL, "sign: missing argument");
	if(spec->profile < ONB_CERT_ROOT_CA || spec->profile > ONB_CERT_SERVER){
		return onb_fail(err, ONB_EINVAL, "sign: unknown certificate profile");
	}
	if(!onb_cert_cn_valid(spec->cn)){
		return onb_fail(err, ONB_EINVAL, "common name must be 1..%d printable ASCII characters",
				ONB_CERT_CN_MAX);
	}
	if(spec->org && !onb_cert_cn_valid(spec->org)){
		return onb_fail(err, ONB_EINVAL, "organisation must be 1..%d printable ASCII characters",
				ONB_CERT_CN_MAX);
	}
	if(spec->days < 1 || spec->days > ONB_CERT_DAYS_MAX){
		return onb_fail(err, ONB_EINVAL, "validity must be 1..%d days, not %d",
				ONB_CERT_DAYS_MAX, spec->days);
	}
	root = spec->profile == ONB_CERT_ROOT_CA;
	if(root != (issuer == NULL)){
		return onb_fail(err, ONB_EINVAL, root ? "a root CA is self-signed: pass no issuer"
				: "an issuer certificate is required");
	}
	if(root){
		if(EVP_PKEY_eq(subject_key, issuer_key) != 1){
			ERR_clear_error();
			return onb_fail(err, ONB_EINVAL, "a self-signed root must be signed with its own key");
		}
		return ONB_OK;
	}
	if(X509_check_private_key(issuer, issuer_key) != 1){
		ERR_clear_error();
		return onb_fail(err, ONB_EINVAL, "the CA private key does not match the CA certificate");
	}
	if(X509_check_ca(issuer) == 0){
		return onb_fail(err, ONB_EREFUSED, "the issuer certificate is not a CA (no CA:TRUE/keyCertSign)");
	}
	if(spec->profile == ONB_CERT_ISSUING_CA && X509_get_pathlen(issuer) == 0){
		return onb_fail(err, ONB_EREFUSED, "the issuer's pathlen:0 forbids issuing a CA under it");
	}
	if(X509_cmp_time(X509_get0_notAfter(issuer), NULL) <= 0){
		return onb_fail(err, ONB_EREFUSED, "the issuer certificate has expired");
	}
	return ONB_OK;
}

/* onb_cert_sign and onb_cert_sign_for_encoding; key_as_bytes: see set_pubkey. */
static X509 *sign(const struct onb_cert_spec *spec, EVP_PKEY *subject_key,
		X509 *issuer, EVP_PKEY *issuer_key, bool key_as_bytes, struct onb_err *err)
{
	int ret = ONB_EINTERNAL;
	X509 *cert = NULL;
	X509_NAME *name = NULL;
	ASN1_INTEGER *serial;
	unsigned char rnd[SERIAL_BYTES];
	const EVP_MD *md;
	char ebuf[160];

	ret = check_sign_args(spec, subject_key, issuer, issuer_key, err);
	if(ret != ONB_OK) return NULL;
	ret = ONB_EINTERNAL;
	ERR_clear_error();

	if(!(cert = X509_new()) || X509_set_version(cert, X509_VERSION_3) != 1) goto ssl_fail;

	/* 128 random bits, top bit clear (positive) and next bit set, so the DER
	 * INTEGER is always exactly 16 bytes and the serial never zero. */
	if(RAND_bytes(rnd, sizeof(rnd)) != 1) goto ssl_fail;
	rnd[0] = (unsigned char)((rnd[0] & 0x7f) | 0x40);
	serial = X509_get_serialNumber(cert);
	if(ASN1_STRING_set(serial, rnd, sizeof(rnd)) != 1) goto ssl_fail;

	if(!(name = X509_NAME_new())) goto ssl_fail;
	if(spec->org && add_name_entry(name, NID_organizationName, spec->org) != 1) goto ssl_fail;
	if(add_name_entry(name, NID_commonName, spec->cn) != 1) goto ssl_fail;
	if(X509_set_subject_name(cert, name) != 1) goto ssl_fail;
	if(X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name) != 1) goto ssl_fail;

	if(!X509_gmtime_adj(X509_getm_notBefore(cert), -ONB_CERT_BACKDATE_SECS)) goto ssl_fail;
	if(!X509_time_adj_ex(X509_getm_notAfter(cert), spec->days, 0, NULL)) goto ssl_fail;
	if(issuer && ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(issuer)) > 0){
		if(X509_set1_notAfter(cert, X509_get0_notAfter(issuer)) != 1) goto ssl_fail;
	}

	if(set_pubkey(cert, subject_key, spec->profile, key_as_bytes) != 1) goto ssl_fail;
	if(!add_basic_constraints(cert, spec->profile) || !add_key_usage(cert, spec->profile)
			|| !add_ext_key_usage(cert, spec->profile) || !add_key_ids(cert, issuer)){
		goto ssl_fail;
	}
	ret = add_san(cert, spec, err);
	if(ret != ONB_OK) goto cleanup;

	md = (EVP_PKEY_is_a(issuer_key, "ED25519") || EVP_PKEY_is_a(issuer_key, "ED448"))
		? NULL : EVP_sha256();
	if(X509_sign(cert, issuer_key, md) <= 0) goto ssl_fail;
	ret = ONB_OK;
	goto cleanup;

ssl_fail:
	ret = onb_fail(err, ONB_EINTERNAL, "cannot build certificate: %s",
			onb_ssl_errstr(ebuf, sizeof(ebuf)));
cleanup:
	X509_NAME_free(name);
	if(ret != ONB_OK){
		X509_free(cert);
		cert = NULL;
	}
	return cert;
}

X509 *onb_cert_sign(const struct onb_cert_spec *spec, EVP_PKEY *subject_key,
		X509 *issuer, EVP_PKEY *issuer_key, struct onb_err *err)
{
	return sign(spec, subject_key, issuer, issuer_key, false, err);
}

X509 *onb_cert_sign_for_encoding(const struct onb_cert_spec *spec, EVP_PKEY *subject_key,
		X509 *issuer, EVP_PKEY *issuer_key, struct onb_err *err)
{
	return sign(spec, subject_key, issuer, issuer_key, true, err);
}
