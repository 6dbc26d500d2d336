/* Certificate helpers shared by the plugin, claimsvc and onboardctl.
 * OpenSSL naming applies: get0 borrows, get1/load/new return a reference the
 * caller frees. */
#ifndef ONB_X509_H
#define ONB_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "core/common.h"

#define ONB_FP_HEXLEN 64 /* SHA-256, lower-case hex */

/* SHA-256 over the DER encoding of cert, as lower-case hex into out. */
int onb_cert_fingerprint(X509 *cert, char out[ONB_FP_HEXLEN + 1], struct onb_err *err);

/* Reads the first certificate of a PEM file. Caller frees with X509_free. */
X509 *onb_cert_load(const char *path, struct onb_err *err);

/* A store of the CA certificates that anchor chains: every certificate of
 * the PEM file cafile, and extra (may be NULL; the store takes its own
 * reference). Caller frees with X509_STORE_free. */
X509_STORE *onb_trust_store_load(const char *cafile, X509 *extra, struct onb_err *err);

/* Reads a PEM private key. Caller frees with EVP_PKEY_free. */
EVP_PKEY *onb_key_load(const char *path, struct onb_err *err);

/* True when cert names ca as its issuer AND ca's key verifies cert's signature. */
bool onb_cert_issued_by(X509 *cert, X509 *ca);

/* Subject commonName into buf; ONB_ENOTFOUND when absent, ONB_EINVAL when it
 * does not fit or holds a NUL. */
int onb_cert_subject_cn(X509 *cert, char *buf, size_t len, struct onb_err *err);

/* The subject attribute nid (e.g. NID_organizationName) like
 * onb_cert_subject_cn: exactly one, no NUL, fits in len. */
int onb_cert_subject_attr(X509 *cert, int nid, char *buf, size_t len, struct onb_err *err);

/* Serial number as lower-case hex into buf. */
int onb_cert_serial_hex(X509 *cert, char *buf, size_t len, struct onb_err *err);

/* notAfter as seconds since the epoch. */
int onb_cert_not_after(X509 *cert, int64_t *out, struct onb_err *err);

/* ---- Building and signing certificates (onb_pki_*, claimsvc CSR signing) ---- */

#define ONB_CERT_CN_MAX 64      /* RFC 5280 ub-common-name */
#define ONB_CERT_DAYS_MAX 36500

enum onb_cert_profile {
	ONB_CERT_ROOT_CA,    /* self-signed; CA:TRUE (critical), keyCertSign+cRLSign */
	ONB_CERT_ISSUING_CA, /* CA:TRUE pathlen:0 (critical), keyCertSign+cRLSign */
	ONB_CERT_CLIENT,     /* CA:FALSE, digitalSignature, EKU clientAuth */
	ONB_CERT_SERVER,     /* CA:FALSE, digitalSignature, EKU serverAuth */
};

/* What onb_cert_sign puts into a certificate. Every string is borrowed.
 * Certificates always get a 128-bit random positive serial, SHA-256 (or the
 * key's own digest for EdDSA), subjectKeyIdentifier and authorityKeyIdentifier;
 * notBefore is backdated by ONB_CERT_BACKDATE_SECS for clock skew. */
struct onb_cert_spec {
	enum onb_cert_profile profile;
	const char *cn;               /* subject CN; must pass onb_cert_cn_valid */
	const char *org;              /* subject O, or NULL; same rules as cn */
	int days;                     /* 1..ONB_CERT_DAYS_MAX; clamped to the issuer's notAfter */
	const char *const *san_dns;   /* NULL-terminated dNSNames, or NULL */
	const char *const *san_ip;    /* NULL-terminated IPv4/IPv6 literals, or NULL */
};

#define ONB_CERT_BACKDATE_SECS 300

/* True when cn is 1..ONB_CERT_CN_MAX bytes of printable ASCII (0x20-0x7e). */
bool onb_cert_cn_valid(const char *cn);

/* Generates a fresh EC P-256 key. Caller frees with EVP_PKEY_free. */
EVP_PKEY *onb_key_generate(struct onb_err *err);

/* Builds a certificate for the public half of subject_key (e.g. the
 * X509_REQ_get0_pubkey of a CSR whose signature the caller has verified) as
 * spec says and signs it with issuer_key. issuer is the issuing CA certificate:
 * refused unless it is an unexpired CA whose pathlen allows spec->profile and
 * issuer_key is its private key. For ONB_CERT_ROOT_CA pass issuer NULL and
 * issuer_key == subject_key (self-signed). Borrows every argument; returns a
 * new certificate the caller frees with X509_free, or NULL with err set. */
X509 *onb_cert_sign(const struct onb_cert_spec *spec, EVP_PKEY *subject_key,
		X509 *issuer, EVP_PKEY *issuer_key, struct onb_err *err);

/* onb_cert_sign for a certificate that is only encoded (DER, PEM,
 * fingerprint), 3.5x cheaper for a leaf: a CLIENT or SERVER certificate with
 * an EC named-curve or EdDSA key gets its SubjectPublicKeyInfo as bytes,
 * without OpenSSL 3.0 encoding and decoding the key again (lib/pki/x509.c
 * set_pubkey). Such a returned certificate has no decoded key in memory:
 * X509_get0_pubkey is NULL, so X509_verify_cert, X509_check_private_key and
 * the like fail on it; parse its DER/PEM for those. Same DER as
 * onb_cert_sign would give. */
X509 *onb_cert_sign_for_encoding(const struct onb_cert_spec *spec, EVP_PKEY *subject_key,
		X509 *issuer, EVP_PKEY *issuer_key, struct onb_err *err);

/* Takes the earliest error off this thread's OpenSSL error queue as text into
 * buf ("no OpenSSL error" when empty), clears the rest of the queue, returns buf. */
const char *onb_ssl_errstr(char *buf, size_t len);

#endif
