/* Certificate revocation lists for Mosquitto's crlfile (docs/crl.md).
 *
 * Which serials: every device in state revoked or decommissioned that has a
 * cert_serial, plus every serial ever listed before: each collection first
 * records the current ones in the hash onb:crl:revoked (HSETNX, so the first
 * revocation date stays), then lists that hash. A serial therefore stays on
 * the CRL after its device is decommissioned and re-enrolled with a new
 * certificate, provided it was collected (or recorded by onb_crl_record) at
 * least once before its device record lost it. */
#ifndef ONB_CRL_H
#define ONB_CRL_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <openssl/x509.h>

#include "core/common.h"
#include "core/ids.h"
#include "pki/x509.h"

#define ONB_KEY_CRL_REVOKED "onb:crl:revoked" /* hash: serial hex -> "ms reason device" */
#define ONB_CRL_DEFAULT_DAYS 7
#define ONB_CRL_DAYS_MAX 366
#define ONB_CRL_SERIAL_HEX_MAX 40             /* RFC 5280: serials are at most 20 octets */
#define ONB_CRL_ENTRIES_MAX 10000000          /* refuse a record larger than this */

/* Reason codes (RFC 5280 s.5.3.1; same values as OpenSSL's CRL_REASON_*). */
#define ONB_CRL_REASON_KEY_COMPROMISE 1
#define ONB_CRL_REASON_SUPERSEDED 4
#define ONB_CRL_REASON_CESSATION 5

struct onb_crl_entry {
	char serial[ONB_CRL_SERIAL_HEX_MAX + 1]; /* lower-case hex, no leading zeros */
	int64_t revoked_ms;                      /* revocation date, ms since the epoch */
	int reason;                              /* ONB_CRL_REASON_* */
	char device[ONB_ID_MAX + 1];             /* for reports; not written into the CRL */
};

struct onb_crl_list {
	struct onb_crl_entry *e; /* malloc'd; onb_crl_list_free */
	size_t n, cap;
};

/* Records one revoked serial in onb:crl:revoked unless already there. */
int onb_crl_record(redisContext *rc, const struct onb_crl_entry *e, struct onb_err *err);

/* Records the serials of every revoked or decommissioned device (revocation
 * date: the device's `updated`; reason keyCompromise for revoked,
 * cessationOfOperation for decommissioned), then fills out with the whole of
 * onb:crl:revoked. out must be zeroed; free it with onb_crl_list_free. */
int onb_crl_collect(redisContext *rc, struct onb_crl_list *out, struct onb_err *err);

void onb_crl_list_free(struct onb_crl_list *l);

/* Builds an X.509 v2 CRL issued and signed by ca/ca_key: lastUpdate now_s,
 * nextUpdate now_s + days (1..ONB_CRL_DAYS_MAX), cRLNumber number,
 * authorityKeyIdentifier, one entry per serial (duplicates once) with its
 * revocation date and reason code. Refuses a ca that is not an unexpired CA
 * with the cRLSign usage, or a key that is not ca's. Borrows everything;
 * returns a CRL the caller frees with X509_CRL_free, NULL with err set. */
X509_CRL *onb_crl_build(X509 *ca, EVP_PKEY *ca_key, const struct onb_crl_entry *entries,
		size_t n, int64_t now_s, int days, uint64_t number, struct onb_err *err);

/* Reads every CRL of the PEM file path. ONB_ENOTFOUND when the file does
 * not exist; ONB_EINVAL when it holds anything unreadable or no CRL. On
 * success *out is a new stack the caller frees with
 * sk_X509_CRL_pop_free(..., X509_CRL_free). */
int onb_crl_read_file(const char *path, STACK_OF(X509_CRL) **out, struct onb_err *err);

/* The highest cRLNumber among the CRLs in crls that ca signed, 0 if none. */
uint64_t onb_crl_last_number(STACK_OF(X509_CRL) *crls, X509 *ca);

/* Writes crls as PEM to path atomically (temp file in the same directory,
 * then rename), mode 0644: a reader sees the old file or the new, never half. */
int onb_crl_write(const char *path, STACK_OF(X509_CRL) *crls, struct onb_err *err);

#endif
