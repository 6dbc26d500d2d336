/* The device registry in Redis (schema: docs/registry.md).
 *
 * Every multi-key change is one Lua script (lib/registry/lua/), so a change is either
 * whole or absent. Each write also appends to onb:audit and, when a device's
 * state, tenant or policy changes, to onb:events, inside the same script. */
#ifndef ONB_REGISTRY_H
#define ONB_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "core/ids.h"
#include "registry/state.h"
#include "pki/x509.h"

#define ONB_KEY_DEVICE_FMT "onb:dev:{%s}"  /* hash per device, hash-tagged */
#define ONB_KEY_FP_FMT     "onb:fp:%s"     /* certificate fingerprint -> device id */
#define ONB_KEY_AUDIT      "onb:audit"     /* stream: who did what */
#define ONB_KEY_EVENTS     "onb:events"    /* stream: read by every broker */
#define ONB_NAME_MAX 64                    /* policy names */
#define ONB_STREAM_ID_MAX 48
#define ONB_REASON_MAX 256                 /* free text of a state change */
#define ONB_BATCH_MAX 64                   /* manufacturing batch names */
#define ONB_EVENTS_MAXLEN 100000           /* onb:events is capped at about this */
#define ONB_AUDIT_RETENTION_DAYS 30        /* default: onb:audit keeps 30 days */

struct onb_device {
	char id[ONB_ID_MAX + 1];
	enum onb_state state;
	char tenant[ONB_ID_MAX + 1];        /* empty when unclaimed */
	char policy[ONB_NAME_MAX + 1];      /* empty: the default for its state */
	char cert_fp[ONB_FP_HEXLEN + 1];
	char cert_fp_next[ONB_FP_HEXLEN + 1];
	char cert_serial[ONB_FP_HEXLEN + 1];
	int64_t not_after;                  /* seconds since the epoch, 0 unknown */
	int64_t created_ms, updated_ms;
	/* rotation (docs/provisioning.md, "Certificate rotation") */
	char cert_serial_next[ONB_FP_HEXLEN + 1]; /* serial of cert_fp_next */
	int64_t not_after_next;             /* its expiry, s */
	int64_t rotate_deadline_ms;         /* cert_fp stops connecting at this time, 0 never */
	bool rotate_required;               /* an operator asked for a renewal (device rotate) */
	/* informational fields (added after the first contract) */
	char birth_fp[ONB_FP_HEXLEN + 1];   /* birth certificate, empty if none */
	char batch[ONB_BATCH_MAX + 1];      /* manufacturing batch, empty if none */
	char serial[ONB_ID_MAX + 1];        /* as listed or sent in RegisterThing, empty if none */
	char reason[ONB_REASON_MAX + 1];    /* reason given with the last state change */
	int64_t provisioned_ms, claimed_ms; /* 0 when never */
};

/* Who asked for a change and from where, for the audit stream. */
struct onb_actor {
	const char *who;    /* "cli:alice", "plugin", "claimsvc:<id>" */
	const char *source; /* address or host, may be NULL */
};

/* Looks up the device bound to a certificate fingerprint (its cert_fp or
 * cert_fp_next). ONB_ENOTFOUND when no device is bound; ONB_EREFUSED when fp
 * is the device's cert_fp and its rotate_deadline has passed (the
 * certificate was retired by a rotation); ONB_EUNAVAIL on Redis errors. */
int onb_registry_device_by_fp(redisContext *rc, const char *fp,
		struct onb_device *out, struct onb_err *err);

/* Reads one device. ONB_ENOTFOUND when absent. */
int onb_registry_device_get(redisContext *rc, const char *id,
		struct onb_device *out, struct onb_err *err);

struct onb_register_req {
	const char *id;
	const char *cert_fp;
	const char *cert_serial;
	int64_t not_after;
	enum onb_state state;   /* unclaimed or active */
	const char *tenant;     /* may be NULL */
};

/* Creates the device (or completes a manufactured one) and binds the
 * certificate. ONB_EEXIST when the certificate is bound to another device or
 * the device already has an operational certificate. */
int onb_registry_register(redisContext *rc, const struct onb_register_req *req,
		const struct onb_actor *actor, struct onb_err *err);

/* Moves a device to state `to` if onb_state_transition_allowed(from, to);
 * ONB_EREFUSED (and an audit entry, nothing else) otherwise. *from_out, if
 * non-NULL, receives the previous state on success. */
int onb_registry_set_state(redisContext *rc, const char *id, enum onb_state to,
		const char *reason, const struct onb_actor *actor,
		enum onb_state *from_out, struct onb_err *err);

/* Calls cb for each device (in no particular order), optionally only those
 * in state `only` (ONB_STATE_INVALID for all). Stops early if cb returns
 * non-zero and returns that value. */
int onb_registry_list(redisContext *rc, enum onb_state only,
		int (*cb)(const struct onb_device *dev, void *arg), void *arg,
		struct onb_err *err);

struct onb_audit_entry {
	const char *actor;   /* required */
	const char *source;  /* may be NULL */
	const char *action;  /* "connect", "register", "state", ... required */
	const char *device;  /* may be NULL */
	const char *result;  /* "allow", "deny", "ok", "refused", "error" required */
	const char *reason;  /* may be NULL */
	/* Who, as the broker saw it (connects and refusals); each may be NULL.
	 * The client id is attacker-chosen: only a valid id is ever passed. */
	const char *client;  /* MQTT client id */
	const char *idclass; /* "device", "claim", "birth", "service" */
	const char *fp;      /* SHA-256 fingerprint of the presented certificate */
	/* An aggregated entry (registry/auditagg.h): count more refusals like this
	 * one, from first_ms to last_ms; count 0 for an ordinary entry. */
	long count;
	int64_t first_ms, last_ms;
	/* When it happened (ms since the epoch); 0: when it is written. A writer
	 * that queues entries stamps them as it queues, so that an entry sent
	 * again after a timeout (Redis may have applied the first one: the
	 * trail is at-least-once) is the same entry, to the millisecond. */
	int64_t ts_ms;
};

/* Appends to onb:audit, trimming entries older than the retention. */
int onb_audit_append(redisContext *rc, const struct onb_audit_entry *e, struct onb_err *err);

/* Pipelined writes (the plugin's writer thread: one round trip for a batch
 * instead of one per entry). onb_audit_queue (and onb_session_queue,
 * registry/sessionfeed.h) validate and put the command in rc's output
 * buffer, sending nothing yet: ONB_EINVAL for a malformed entry (nothing
 * queued). onb_reg_queued_reply then sends what is buffered and reads the
 * next reply, in order: ONB_OK, ONB_EUNAVAIL with rc->err set when the
 * connection broke (the replies not read are lost: drop the connection),
 * or ONB_EUNAVAIL for a Redis error reply to that one command. */
int onb_audit_queue(redisContext *rc, const struct onb_audit_entry *e, struct onb_err *err);
int onb_reg_queued_reply(redisContext *rc, const char *what, struct onb_err *err);

/* The audit retention of this process, for every writer of onb:audit
 * (default ONB_AUDIT_RETENTION_DAYS): ONB_EINVAL outside 1..3650 days. */
int onb_audit_set_retention_days(int days);
/* The stream id (ms) below which onb:audit entries are trimmed now. */
int64_t onb_audit_minid(void);

/* An entry of onb:events. */
struct onb_event {
	char stream_id[ONB_STREAM_ID_MAX];
	char type[16];                     /* "state", "policy", "cert" */
	char device[ONB_ID_MAX + 1];       /* empty for fleet-wide events */
	enum onb_state state;
	char tenant[ONB_ID_MAX + 1];
	char policy[ONB_NAME_MAX + 1];
	/* "cert" events (rotation): the certificates that may connect now */
	char cert_fp[ONB_FP_HEXLEN + 1];
	char cert_fp_next[ONB_FP_HEXLEN + 1];
	int64_t deadline_ms;               /* cert_fp stops connecting then; 0 never */
	bool rotate_required;              /* an operator asked the device to renew */
};

/* Writes the id of the newest event into last_id ("0-0" when the stream is
 * empty), the position from which a new reader starts. */
int onb_events_tail(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], struct onb_err *err);

/* Reads up to max events after last_id, waiting at most block_ms (0: do not
 * wait) for the first; calls cb for each and advances last_id past it, so a
 * reader that reconnects resumes where it stopped. Returns the number of
 * events delivered or a negative ONB_E* code. */
int onb_events_read(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], int block_ms,
		int max, void (*cb)(const struct onb_event *ev, void *arg), void *arg,
		struct onb_err *err);

#endif
