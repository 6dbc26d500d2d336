/* Certificate fingerprints of the ownership tokens this claimsvc issued, by
 * token reference (onb_token_ref: the SHA-256 of the token, not a secret),
 * until the token expires. RegisterThing on the instance that issued the
 * token then names the token's keys without reading the token record first:
 * one Redis round trip less per provisioning. A miss (another instance
 * issued it, or the slot was reused) reads the record as before; a stale
 * entry changes nothing, since the RegisterThing script checks that the
 * record names that certificate. Single-threaded, like the handler. */
#ifndef CSVC_TOKENCACHE_H
#define CSVC_TOKENCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "pki/x509.h" /* ONB_FP_HEXLEN */

/* Remembers that the token named ref was issued for certificate fp until
 * expires_ms (onb_now_ms clock); both strings are copied. */
void csvc_token_cache_put(const char *ref, const char *fp, int64_t expires_ms);

/* Copies the certificate fingerprint of the token named ref into fp and
 * returns true, or returns false when it is not remembered or has expired. */
bool csvc_token_cache_get(const char *ref, int64_t now_ms, char fp[ONB_FP_HEXLEN + 1]);

#endif
