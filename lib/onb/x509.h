/* Certificate helpers shared by the plugin, claimsvc and onboardctl.
 * OpenSSL naming applies: get0 borrows, get1/load/new return a reference the
 * caller frees. */
#ifndef ONB_X509_H
#define ONB_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "onb/common.h"

#define ONB_FP_HEXLEN 64 /* SHA-256, lower-case hex */

/* SHA-256 over the DER encoding of cert, as lower-case hex into out. */
int onb_cert_fingerprint(X509 *cert, char out[ONB_FP_HEXLEN + 1], struct onb_err *err);

/* Reads the first certificate of a PEM file. Caller frees with X509_free. */
X509 *onb_cert_load(const char *path, struct onb_err *err);

/* Reads a PEM private key. Caller frees with EVP_PKEY_free. */
EVP_PKEY *onb_key_load(const char *path, struct onb_err *err);

/* True when cert names ca as its issuer AND ca's key verifies cert's signature. */
bool onb_cert_issued_by(X509 *cert, X509 *ca);

/* Subject commonName into buf; ONB_ENOTFOUND when absent, ONB_EINVAL when it
 * does not fit or holds a NUL. */
int onb_cert_subject_cn(X509 *cert, char *buf, size_t len, struct onb_err *err);

/* Serial number as lower-case hex into buf. */
int onb_cert_serial_hex(X509 *cert, char *buf, size_t len, struct onb_err *err);

/* notAfter as seconds since the epoch. */
int onb_cert_not_after(X509 *cert, int64_t *out, struct onb_err *err);

#endif
