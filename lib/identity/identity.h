/* Who is connecting: the identity classes of DESIGN.md s.2, told apart by the
 * CA that issued the (already TLS-verified) client certificate. */
#ifndef ONB_IDENTITY_H
#define ONB_IDENTITY_H

#include <openssl/x509.h>

#include "core/common.h"

enum onb_idclass {
	ONB_ID_NONE = 0, /* issued by none of the configured CAs */
	ONB_ID_DEVICE,   /* operational certificate */
	ONB_ID_CLAIM,    /* shared provisioning-by-claim certificate */
	ONB_ID_BIRTH,    /* per-device manufacturer (IDevID) certificate */
	ONB_ID_SERVICE,  /* claimsvc, tenant back-ends, admin tools */
	ONB_ID_COUNT,
};

struct onb_class_cache;

/* The issuing CA of each class; a NULL entry means the class is not served.
 * cache (owned by the set, made by onb_ca_set_load; NULL: no cache) remembers
 * the class of recently classified certificates, see onb_identity_classify. */
struct onb_ca_set {
	X509 *ca[ONB_ID_COUNT];
	struct onb_class_cache *cache;
};

/* Certificates whose class the cache remembers, at most (about 40 bytes each). */
#define ONB_CLASS_CACHE_SLOTS 16384

/* Loads each non-NULL path into set (index = class) and makes its cache. On
 * failure frees what it loaded. Free the set with onb_ca_set_clear. */
int onb_ca_set_load(struct onb_ca_set *set, const char *const paths[ONB_ID_COUNT],
		struct onb_err *err);

/* Releases every certificate of set and its cache. */
void onb_ca_set_clear(struct onb_ca_set *set);

/* The class whose CA issued cert, or ONB_ID_NONE: the first class (in enum
 * order) whose CA onb_cert_issued_by accepts, i.e. names it as issuer AND
 * verified its signature. With set->cache, the answer for the same
 * certificate bytes (SHA-256 of the DER) is remembered; safe from several
 * threads. */
enum onb_idclass onb_identity_classify(const struct onb_ca_set *set, X509 *cert);

/* "device", "claim", "birth", "service", "none". */
const char *onb_idclass_name(enum onb_idclass c);

/* The class named name (onb_idclass_name's inverse); ONB_ID_NONE for any
 * other string, NULL included. Code that receives a class as text (the
 * envelope's "class") parses it once and compares enums. */
enum onb_idclass onb_idclass_parse(const char *name);

#endif
