/* The CONNECT decision (DESIGN.md s.2): which identity is this, and may it in?
 * Knows nothing of Mosquitto: the plugin hands it the verified certificate
 * and the client id and acts on the answer. */
#ifndef ONB_ADMISSION_H
#define ONB_ADMISSION_H

#include <stdbool.h>
#include <hiredis/hiredis.h>
#include <openssl/x509.h>

#include "identity/admview.h"
#include "identity/identity.h"
#include "registry/registry.h"
#include "core/vocab.h"

struct onb_admission {
	bool allowed;
	enum onb_idclass idclass;
	char fp[ONB_FP_HEXLEN + 1];  /* of the presented certificate, "" if none */
	struct onb_device dev;       /* the bound device, when one was found */
	const char *reason;          /* a token of ONB_ADMIT_REASONS (core/vocab.h) */
	char detail[ONB_ERRLEN];            /* one human line, safe to log */
};

/* Decides a CONNECT: devices by their registry binding and state (a
 * certificate a rotation retired is refused as "certificate-retired"; the
 * caller promotes a device's next certificate, lib/registry/lifecycle.h), claim and
 * birth identities by their CA alone, services by CA and CN == client id.
 * rc may be NULL when the registry is unreachable (then
 * devices are refused: fail closed). Always fills out. Returns ONB_OK, or
 * ONB_EUNAVAIL when Redis failed during the lookup: the caller must then drop
 * rc, which hiredis will not reuse after an error. */
int onb_admit(redisContext *rc, const struct onb_ca_set *cas, X509 *cert,
		const char *client_id, struct onb_admission *out);

/* The same decision from an admission view at time now_ms, without Redis:
 * ONB_OK when the view decides (out filled as by onb_admit), ONB_ENOTFOUND
 * when it holds no record to decide by (a certificate or a client id it has
 * not seen: out is then undecided and the caller asks onb_admit). */
int onb_admit_view(const struct onb_admview *view, int64_t now_ms, const struct onb_ca_set *cas,
		X509 *cert, const char *client_id, struct onb_admission *out);

/* The one registry read onb_admit makes, done apart from the decision (a
 * worker thread reads, the broker's thread decides): for a device
 * certificate the device bound to fp, for a claim or birth certificate the
 * device named client_id. */
struct onb_admit_prefetch {
	int code;               /* of that read: ONB_OK, ONB_ENOTFOUND, ONB_EREFUSED, ONB_EUNAVAIL... */
	struct onb_device dev;  /* with ONB_OK */
	char msg[ONB_ERRLEN];   /* otherwise, its error line */
};

/* Makes the read for an identity class and fingerprint (from a first
 * onb_admit_view or onb_admit pass: out->idclass, out->fp) on rc, which may
 * be NULL (then ONB_EUNAVAIL). Drop rc if out->code is ONB_EUNAVAIL and
 * rc->err is set. Touches no certificate and no CA set: safe on any thread. */
void onb_admit_prefetch(redisContext *rc, enum onb_idclass idclass, const char *fp,
		const char *client_id, struct onb_admit_prefetch *out);

/* onb_admit with that read's answer instead of Redis: the same rules, the
 * same answers (ONB_EUNAVAIL when the read failed). */
int onb_admit_prefetched(const struct onb_admit_prefetch *pre, const struct onb_ca_set *cas,
		X509 *cert, const char *client_id, struct onb_admission *out);

#endif
