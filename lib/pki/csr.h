/* Certificate signing requests from devices and the operational certificates
 * issued for them (docs/provisioning.md). Pure: no I/O, no Redis.
 *
 * A CSR is only a proof that the device holds a private key: its subject,
 * attributes and requested extensions are ignored. The issued certificate's
 * subject is chosen by the service (onb_csr_issue), never by the device.
 *
 * Accepted keys: EC P-256 and P-384 named by their curve OID, RSA
 * 2048..8192 bits, Ed25519. Refused: RSA below 2048 bits and named EC curves
 * below 256 bits (WeakKey), everything else (EC keys with explicit curve
 * parameters, even those of P-256; other curves, RSA-PSS-only keys, DSA,
 * Ed448, X25519, ...) as UnsupportedKeyType. Signatures with MD5 or SHA-1 are refused
 * (UnsupportedSignatureAlgorithm). */
#ifndef ONB_CSR_H
#define ONB_CSR_H

#include <stdint.h>
#include <openssl/x509.h>

#include "core/common.h"
#include "pki/x509.h"

#define ONB_CSR_MAX 16384          /* bytes of PEM text, surrounding blanks included */
#define ONB_CSR_RSA_MIN_BITS 2048
#define ONB_CSR_RSA_MAX_BITS 8192
#define ONB_CERT_DEFAULT_DAYS 365

/* Stable error codes of a refused CSR (the errorCode of the rejected reply). */
#define ONB_CSR_E_INVALID     "InvalidCsr"          /* not exactly one well-formed PEM CSR */
#define ONB_CSR_E_TOO_LARGE   "CsrTooLarge"         /* more than ONB_CSR_MAX bytes */
#define ONB_CSR_E_SIGNATURE   "CsrSignatureInvalid" /* self-signature does not verify */
#define ONB_CSR_E_WEAK_KEY    "WeakKey"             /* RSA < 2048, EC < 256 bits */
#define ONB_CSR_E_KEY_TYPE    "UnsupportedKeyType"  /* any other key, explicit EC parameters */
#define ONB_CSR_E_SIG_ALG     "UnsupportedSignatureAlgorithm" /* MD5, SHA-1, unknown */

/* Parses pem (len bytes, need not be NUL-terminated): exactly one PEM
 * "CERTIFICATE REQUEST" block with only whitespace around it, an acceptable
 * key, and a self-signature that verifies. On success *out is a new request
 * the caller frees with X509_REQ_free. On failure returns ONB_EINVAL (or
 * ONB_EINTERNAL), sets *code to one of ONB_CSR_E_* (ONB_CSR_E_INVALID for
 * internal failures too) and writes the message into err. */
int onb_csr_parse(const char *pem, size_t len, X509_REQ **out, const char **code,
		struct onb_err *err);

/* Checks that key is of an accepted type and size (the rules above); on
 * refusal sets *code to ONB_CSR_E_WEAK_KEY or ONB_CSR_E_KEY_TYPE. */
int onb_csr_key_acceptable(EVP_PKEY *key, const char **code, struct onb_err *err);

/* SHA-256 of the DER SubjectPublicKeyInfo of key, lower-case hex: the name
 * the service gives a certificate before it belongs to a thing. */
int onb_pubkey_fingerprint(EVP_PKEY *key, char out[ONB_FP_HEXLEN + 1], struct onb_err *err);

/* The same for the key of a parsed CSR, from its encoded SubjectPublicKeyInfo
 * (about 100 times faster than re-encoding the EVP_PKEY with OpenSSL 3.0). */
int onb_csr_key_fingerprint(X509_REQ *req, char out[ONB_FP_HEXLEN + 1], struct onb_err *err);

/* An operational certificate just issued (onb_csr_issue). Owned by the
 * struct: release with onb_issued_clear. */
struct onb_issued {
	X509 *cert;
	char *chain_pem;                 /* leaf PEM followed by the issuing CA's PEM */
	char cert_id[ONB_FP_HEXLEN + 1]; /* SHA-256 fingerprint of the leaf (certificateId) */
	char serial[ONB_FP_HEXLEN + 1];  /* lower-case hex */
	int64_t not_after;               /* seconds since the epoch */
};

/* Issues a client certificate (profile ONB_CERT_CLIENT: CA:FALSE,
 * digitalSignature, EKU clientAuth, 128-bit random serial, no SAN) for the
 * public half of subject_key with subject CN=cn (onb_cert_cn_valid), valid
 * for days (clamped to the CA's notAfter), signed by ca/ca_key. Borrows every
 * argument; fills *out on success (clear it with onb_issued_clear). out->cert
 * comes from onb_cert_sign_for_encoding: read its fields or encode it; for
 * its key, verification or chain checks parse chain_pem. */
int onb_csr_issue(EVP_PKEY *subject_key, const char *cn, int days, X509 *ca,
		EVP_PKEY *ca_key, struct onb_issued *out, struct onb_err *err);

/* Verifies iss->cert as a TLS server that checks client certificates
 * strictly would: a chain from the CAs of trust (onb_trust_store_load; it
 * must hold the issuing CA, which anchors the chain when its own root is not
 * in trust: X509_V_FLAG_PARTIAL_CHAIN), purpose sslclient,
 * X509_V_FLAG_X509_STRICT (which refuses, among others, explicit EC
 * parameters), at the current time. Checks the certificate as it is encoded,
 * so it also works on onb_csr_issue's certificates without a decoded key.
 * ONB_OK; ONB_EREFUSED with *verify_error and *error_depth (either may be
 * NULL) set to the X509_V_ERR_* code and the chain position it is about (0:
 * the issued certificate, 1: its CA, ...) and err saying why; ONB_EINVAL or
 * ONB_EINTERNAL. */
int onb_issued_verify(const struct onb_issued *iss, X509_STORE *trust, int *verify_error,
		int *error_depth, struct onb_err *err);

/* Frees what *iss owns and zeroes it; safe on a zeroed or cleared struct. */
void onb_issued_clear(struct onb_issued *iss);

/* Unencrypted PKCS#8 PEM of a private key. Returns a NUL-terminated string
 * the caller frees with onb_key_pem_free (which wipes it), or NULL. */
char *onb_key_pem(EVP_PKEY *key, struct onb_err *err);

/* Wipes and frees a string from onb_key_pem. NULL is fine. */
void onb_key_pem_free(char *pem);

#endif
