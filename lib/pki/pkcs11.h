/* A CA signing key held in a PKCS#11 token (an HSM, or SoftHSM2 in tests),
 * reached through OpenSSL with Debian 12's libengine-pkcs11-openssl (libp11).
 *
 * Debian 12 ships no PKCS#11 *provider* for OpenSSL 3 (no pkcs11-provider
 * package), so this uses the ENGINE API, deprecated in OpenSSL 3.0. It lives
 * in lib/pki/pkcs11/engine.c, the one file compiled without OPENSSL_NO_DEPRECATED;
 * nothing else in the tree sees an ENGINE. The key it returns is an ordinary
 * EVP_PKEY for every EVP signing call (X509_sign, X509_CRL_sign, ...); its
 * private half never leaves the token. Not thread-safe: load and use the key
 * from one thread (claimsvc's main thread). */
#ifndef ONB_PKCS11_H
#define ONB_PKCS11_H

#include <stdbool.h>
#include <openssl/evp.h>

#include "core/common.h"

/* True when spec is a PKCS#11 URI (RFC 7512: "pkcs11:..."). */
bool onb_key_is_pkcs11(const char *spec);

/* Loads the private key a PKCS#11 URI names (e.g. "pkcs11:token=ca;object=
 * device-ca;type=private;pin-source=file:/etc/onb/pin", or pin-value=...)
 * through the pkcs11 engine, using the PKCS#11 module at module (NULL or "":
 * libp11's default, p11-kit-proxy). The engine stays loaded until
 * onb_pkcs11_shutdown. Errors never contain a PIN. Caller frees the key with
 * EVP_PKEY_free before onb_pkcs11_shutdown. */
EVP_PKEY *onb_pkcs11_key_load(const char *uri, const char *module, struct onb_err *err);

/* Releases the engine (after every key it loaded has been freed). */
void onb_pkcs11_shutdown(void);

/* A CA signing key from a PEM file, or from a token when spec is a pkcs11:
 * URI (module as above). Caller frees with EVP_PKEY_free. */
EVP_PKEY *onb_signing_key_load(const char *spec, const char *module, struct onb_err *err);

/* spec with any pin-value attribute replaced by "pin-value=***", for logs. */
void onb_key_spec_redact(const char *spec, char *buf, size_t len);

#endif
