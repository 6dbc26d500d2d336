/* A development PKI: the CA hierarchy of DESIGN.md s.2 generated with the
 * OpenSSL 3 C API (EC P-256). Production operators bring their own. */
#ifndef ONB_PKI_H
#define ONB_PKI_H

#include <stdbool.h>

#include "core/common.h"

/* Creates DIR with root-ca, device-ca, claim-ca, manufacturer-ca, service-ca
 * (each NAME.pem + NAME.key), server.pem/server.key for localhost/127.0.0.1,
 * and ca-bundle.pem (root + the four issuing CAs) for Mosquitto's cafile.
 * Keys are written 0600. Refuses an existing non-empty DIR unless force. */
int onb_pki_init(const char *dir, bool force, struct onb_err *err);

/* Issues a client certificate (EKU clientAuth, 128-bit random serial,
 * subject CN=cn) signed by CA_PREFIX.pem/CA_PREFIX.key, writing
 * OUT_PREFIX.pem (leaf only) and OUT_PREFIX.key (0600).
 * days is 1..36500 (clamped to the CA's notAfter); cn must pass
 * onb_cert_cn_valid. ONB_EEXIST when either output file exists; on any
 * failure neither output file is left behind. */
int onb_pki_issue(const char *ca_prefix, const char *cn, const char *out_prefix,
		int days, struct onb_err *err);

/* onb_pki_issue with the subject organizationName org (NULL: the dev PKI's
 * own). A service certificate with O=tenant:<id> identifies a tenant's
 * back-end (docs/claiming.md). */
int onb_pki_issue_org(const char *ca_prefix, const char *cn, const char *org,
		const char *out_prefix, int days, struct onb_err *err);

/* The files onb_pki_init writes into DIR, NULL-terminated (for listing). */
extern const char *const onb_pki_init_files[];

#endif
