/* Helpers for unit tests that build certificates in memory. */
#ifndef ONB_X509_FIXTURE_H
#define ONB_X509_FIXTURE_H

#include <openssl/x509.h>

/* cert through DER and back, as a device or the broker gets it (a new
 * object with every field decoded afresh). Caller frees; cert is kept.
 * Fails the running cmocka test on error. */
X509 *fx_reparse(X509 *cert);

#endif
