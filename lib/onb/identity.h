/* Who is connecting: the identity classes of DESIGN.md s.2, told apart by the
 * CA that issued the (already TLS-verified) client certificate. */
#ifndef ONB_IDENTITY_H
#define ONB_IDENTITY_H

#include <openssl/x509.h>

#include "onb/common.h"

enum onb_idclass {
	ONB_ID_NONE = 0, /* issued by none of the configured CAs */
	ONB_ID_DEVICE,   /* operational certificate */
	ONB_ID_CLAIM,    /* shared provisioning-by-claim certificate */
	ONB_ID_BIRTH,    /* per-device manufacturer (IDevID) certificate */
	ONB_ID_SERVICE,  /* claimsvc, tenant back-ends, admin tools */
	ONB_ID_COUNT,
};

/* The issuing CA of each class; a NULL entry means the class is not served. */
struct onb_ca_set {
	X509 *ca[ONB_ID_COUNT];
};

/* Loads each non-NULL path into set (index = class). On failure frees what it
 * loaded. Free the set with onb_ca_set_clear. */
int onb_ca_set_load(struct onb_ca_set *set, const char *const paths[ONB_ID_COUNT],
		struct onb_err *err);

/* Releases every certificate of set. */
void onb_ca_set_clear(struct onb_ca_set *set);

/* The class whose CA issued cert, or ONB_ID_NONE. */
enum onb_idclass onb_identity_classify(const struct onb_ca_set *set, X509 *cert);

/* "device", "claim", "birth", "service", "none". */
const char *onb_idclass_name(enum onb_idclass c);

#endif
