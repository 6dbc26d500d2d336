/* One live session per device across the fleet (registry/sessionfeed.h).
 *
 * When a device is admitted, its session is announced on onb:sessions
 * through the writer (never on the broker's thread); every broker's watcher
 * reads the stream (events.c) and hands each announcement to fleet_apply on
 * the main thread. Stream order alone says which session is older, so two
 * simultaneous connects on two brokers end with exactly one session.
 *
 * Only device sessions are announced. Claim and birth certificates are
 * shared by many devices (their connections are not one device's session),
 * and a service identity (claimsvc, a tenant back-end) may legitimately hold
 * a connection to every broker under one client id. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "onboard.h"

static const struct onboard_config *config;

/* Sessions the rotation closed (fleet_note_replaced), main thread only: a
 * ring, oldest overwritten; an entry older than REPLACED_TTL_MS is ignored. */
#define REPLACED_MAX 64
#define REPLACED_TTL_MS 5000
static struct replaced {
	char id[ONB_ID_MAX + 1];
	char fp[ONB_FP_HEXLEN + 1];
	char source[ONB_SOURCE_MAX];
	int64_t at_mono;
} replaced[REPLACED_MAX];
static unsigned replaced_next;
static char instance[17];   /* 16 hex: this broker process, in every conn it announces */
static uint64_t next_conn;  /* main thread only */

int fleet_init(const struct onboard_config *cfg)
{
	unsigned char r[8];

	config = cfg;
	/* Not a secret: it only has to differ between processes, including two
	 * that a misconfiguration gave the same broker id. */
	if(RAND_bytes(r, sizeof(r)) != 1) return ONB_EINTERNAL;
	for(size_t i = 0; i < sizeof(r); i++) snprintf(instance + 2 * i, 3, "%02x", r[i]);
	next_conn = 1;
	return ONB_OK;
}

void fleet_announce(struct session *s, const char *source)
{
	struct onb_session_ann a;

	if(s->idclass != ONB_ID_DEVICE) return;
	memset(&a, 0, sizeof(a));
	snprintf(s->conn, sizeof(s->conn), "%s:%llu", instance, (unsigned long long)next_conn++);
	/* an address too long for the field is announced as unknown */
	if(source && strlen(source) < sizeof(s->source)) memcpy(s->source, source, strlen(source) + 1);
	else s->source[0] = '\0';
	memcpy(a.device, s->id, sizeof(a.device));
	memcpy(a.broker, config->broker_id, sizeof(a.broker));
	memcpy(a.conn, s->conn, sizeof(a.conn));
	memcpy(a.fp, s->fp, sizeof(a.fp));
	memcpy(a.source, s->source, sizeof(a.source));
	/* Dropped (the writer's queue is full): no later announcement can be
	 * shown newer than this session, so the session counts as the older. */
	s->ann_state = writer_announce(&a) ? ONB_ANN_PENDING : ONB_ANN_LOST;
}

/* Audits (and counts) that the older session of device id, on fp from
 * source, gives way to the newer one a announced. */
static void audit_takeover(const char *id, const char *fp, const char *source, const struct onb_session_ann *a,
		const char *how)
{
	bool clone = onb_session_possible_clone(fp, source, a->fp, a->source);
	bool other_cert = strcmp(fp, a->fp) != 0;
	char reason[2 * ONB_ID_MAX + ONB_SOURCE_MAX + 128];
	struct onb_audit_entry e = {
		.actor = "plugin",
		.source = source[0] ? source : NULL,
		.action = ONB_AA(SESSION_TAKEN_OVER),
		.device = id,
		.result = "ok",
		.reason = reason,
		.client = id,
		.idclass = onb_idclass_name(ONB_ID_DEVICE),
		.fp = fp,
	};

	snprintf(reason, sizeof(reason), "old_broker=%s new_broker=%s new_source=%s new_fp=%.16s possible_clone=%s%s",
			config->broker_id, a->broker, a->source[0] ? a->source : "-", a->fp, clone ? "yes" : "no",
			!clone ? "" : other_cert ? " (another certificate)" : " (another address)");
	writer_audit(&e);
	metrics.sessions_taken_over++;
	if(clone) metrics.possible_clones++;
	mosquitto_log_printf(clone ? MOSQ_LOG_WARNING : MOSQ_LOG_NOTICE, ONB_LOG_PREFIX
			"%s %s: a newer session on broker %s (%s)", how, id, a->broker, reason);
}

/* The older session of a->device is ours: audit, then close it. */
static void take_over(struct session *s, const struct onb_session_ann *a)
{
	char id[ONB_ID_MAX + 1];

	audit_takeover(s->id, s->fp, s->source, a, "disconnecting");
	/* The device is online elsewhere: its will ("offline") would be false. */
	s->deny_will = true;
	memcpy(id, s->id, sizeof(id));
	mosquitto_kick_client_by_clientid(id, false);
}

void fleet_note_replaced(const struct session *s)
{
	struct replaced *r;

	if(s->idclass != ONB_ID_DEVICE || !s->conn[0]) return;
	r = &replaced[replaced_next++ % REPLACED_MAX];
	memcpy(r->id, s->id, sizeof(r->id));
	memcpy(r->fp, s->fp, sizeof(r->fp));
	memcpy(r->source, s->source, sizeof(r->source));
	r->at_mono = onb_mono_ms();
}

/* A foreign announcement for a device with no live session here: if the
 * rotation closed its session moments ago (the newer connection promoted
 * its next certificate first), the takeover is audited all the same. */
static void replaced_by(const struct onb_session_ann *a)
{
	int64_t now = onb_mono_ms();

	if(!strncmp(a->conn, instance, strlen(instance)) && a->conn[strlen(instance)] == ':') return;
	for(unsigned i = 0; i < REPLACED_MAX; i++){
		struct replaced *r = &replaced[i];
		if(!r->id[0] || now - r->at_mono > REPLACED_TTL_MS || strcmp(r->id, a->device) != 0) continue;
		audit_takeover(r->id, r->fp, r->source, a, "closed");
		r->id[0] = '\0';
		return;
	}
}

void fleet_apply(const struct onb_session_ann *a)
{
	struct session *s = sessions_find(a->device);

	if(!s){
		replaced_by(a);
		return;
	}
	if(s->idclass != ONB_ID_DEVICE || !s->conn[0]) return;
	switch(onb_session_rival(instance, s->conn, (enum onb_ann_state)s->ann_state, a)){
	case ONB_RIVAL_OWN:
		s->ann_state = ONB_ANN_SEEN;
		break;
	case ONB_RIVAL_CLOSE:
		take_over(s, a);
		break;
	case ONB_RIVAL_IGNORE:
		break;
	}
}
