/* A development PKI: the CA hierarchy of DESIGN.md s.2 generated with the
 * OpenSSL 3 C API (EC P-256). Production operators bring their own. */
#ifndef ONB_PKI_H
#define ONB_PKI_H

#include <stdbool.h>

#include "onb/common.h"

/* Creates DIR with root-ca, device-ca, claim-ca, manufacturer-ca, service-ca
 * (each NAME.pem + NAME.key), server.pem/server.key for localhost/127.0.0.1,
 * and ca-bundle.pem (root + the four issuing CAs) for Mosquitto's cafile.
 * Keys are written 0600. Refuses an existing non-empty DIR unless force. */
int onb_pki_init(const char *dir, bool force, struct onb_err *err);

/* Issues a client certificate (EKU clientAuth, 128-bit random serial,
 * subject CN=cn) signed by CA_PREFIX.pem/CA_PREFIX.key, writing
 * OUT_PREFIX.pem (leaf only) and OUT_PREFIX.key (0600). */
int onb_pki_issue(const char *ca_prefix, const char *cn, const char *out_prefix,
		int days, struct onb_err *err);

#endif
