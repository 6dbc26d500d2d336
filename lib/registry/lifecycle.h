/* Certificate lifecycle in the registry: rotation (renewal by the device,
 * promotion of the new certificate, forced rotation), decommission for
 * re-enrolment (docs/provisioning.md "Certificate rotation",
 * docs/registry.md). Certificates these retire are put on the CRL record
 * (onb:crl:revoked, lib/pki/crl.h) in the same script, so `onboardctl crl
 * export` lists them even after the device has enrolled again.
 *
 * Every change is one Lua script with its audit entry and, where a broker
 * must act, its onb:events entry. Conventions as in registry.h: ONB_EINVAL
 * for bad arguments (nothing sent), ONB_EUNAVAIL for any Redis failure,
 * out-parameters written on success only unless said otherwise. */
#ifndef ONB_LIFECYCLE_H
#define ONB_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "registry/registry.h"

#define ONB_ROTATION_GRACE_DEFAULT_S 604800      /* 7 days */
#define ONB_ROTATION_GRACE_MAX_S (90 * 86400)    /* 90 days */
#define ONB_ROTATE_WITHIN_MAX_MS (365LL * 86400 * 1000)

/* ------------------------------------------------------------- rotation */

/* Why a renewal was refused (stable tokens; claimsvc maps them to errorCodes). */
#define ONB_ROT_NOT_FOUND   "not-found"    /* no such device */
#define ONB_ROT_STATE       "state"        /* the device's state may not connect */
#define ONB_ROT_NOT_CURRENT "not-current"  /* the request did not come with the device's cert_fp */
#define ONB_ROT_CERT_BOUND  "cert-bound"   /* the new certificate is already bound */

/* A certificate claimsvc just signed for a device that asked to renew. */
struct onb_renewal {
	const char *device_id;
	const char *requester_fp;  /* the certificate the request came with (from the broker) */
	const char *cert_fp;       /* the new certificate */
	const char *cert_serial;   /* its serial, lower-case hex */
	int64_t not_after;         /* its expiry, s */
	int64_t grace_ms;          /* how long the current certificate keeps working, 1 s .. 90 days */
};

/* Records r as the device's next certificate in one script: the device must
 * exist, be unclaimed, active or quarantined, and requester_fp must be its
 * current cert_fp. Binds the new certificate (onb:fp), sets cert_fp_next,
 * cert_serial_next, not_after_next and rotate_deadline = min(an existing
 * deadline, now + grace); a previous next certificate that was never used is
 * unbound and put on the CRL (superseded). One `cert` event, one audit
 * entry. *deadline_out (may be NULL) receives the deadline (ms). On refusal
 * ONB_ENOTFOUND or ONB_EREFUSED with *reason_out (may be NULL) one of
 * ONB_ROT_*, after one audit entry. */
int onb_rotation_record(redisContext *rc, const struct onb_renewal *r, const struct onb_actor *actor,
		int64_t *deadline_out, const char **reason_out, struct onb_err *err);

/* The device connected with fp == its cert_fp_next: fp becomes cert_fp (with
 * the next serial and expiry), the previous certificate is unbound and put on
 * the CRL (superseded), rotation fields are cleared; one `cert` event and
 * one audit entry. ONB_EREFUSED when fp is not (or no longer) the device's
 * next certificate, ONB_ENOTFOUND for an unknown device; nothing written then. */
int onb_rotation_promote(redisContext *rc, const char *id, const char *fp,
		const struct onb_actor *actor, struct onb_err *err);

/* Forced rotation (operators): the current certificate stops connecting in
 * within_ms (1 ms .. ONB_ROTATE_WITHIN_MAX_MS) and the device is asked to
 * renew (rotate_required; brokers tell its live session, or tell it at its
 * next CONNECT). Running it again replaces the deadline. ONB_ENOTFOUND, or
 * ONB_EREFUSED for a device without a usable certificate (audited).
 * *deadline_out (may be NULL) receives the deadline (ms). */
int onb_rotation_require(redisContext *rc, const char *id, int64_t within_ms, const char *reason,
		const struct onb_actor *actor, int64_t *deadline_out, struct onb_err *err);

/* ---------------------------------------------------------- decommission */

struct onb_decommission_result {
	enum onb_state from;                       /* the state it left */
	char serials[2 * (ONB_FP_HEXLEN + 1)];     /* serials put on the CRL, comma-separated ("" none) */
};

/* Decommissions device id (X -> decommissioned -> manufactured, both steps
 * checked against lib/registry/state.c) in one script: its certificate bindings are
 * removed, their serials put on the CRL (cessationOfOperation, or
 * keyCompromise for a revoked device), its claim code revoked, tenant,
 * policy and certificate fields removed (serial, birth_fp, batch, created
 * kept, so the same birth certificate can enrol it again), one `state` event
 * (brokers disconnect it) and one audit entry. ONB_ENOTFOUND, ONB_EREFUSED
 * (audited). out may be NULL. */
int onb_device_decommission(redisContext *rc, const char *id, const char *reason,
		const struct onb_actor *actor, struct onb_decommission_result *out, struct onb_err *err);

#endif
