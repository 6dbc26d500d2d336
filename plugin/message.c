/* Fleet-provisioning routing (docs/internal-topics.md). A device's request is
 * stamped with its verified identity and handed to claimsvc; claimsvc's
 * answer is delivered to the one connection that asked. Nothing is ever
 * published on the shared accepted/rejected topics. The same path carries a
 * device's certificate renewal (devices/<own id>/certificates/renew). Every
 * other message only pays onb_tkind_of's string checks.
 *
 * The message event never replaces a message's topic. Who frees a replaced
 * topic depends on the broker's version (2.0.11-2.0.14 leak it, 2.0.15 and
 * later free it, so a plugin that frees it too crashes those): the
 * envelope is a new message (mosquitto_broker_publish), and the original
 * goes on emptied, on its own topic, where acl.c lets nobody receive it
 * (onb_topic_handed_off). Replacing the payload and the retain flag is the
 * same on every version: the broker frees the old payload. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onboard.h"
#include "identity/authority.h"
#include "provisioning/envelope.h"
#include "provisioning/replyticket.h"
#include "registry/stats.h"

/* A request unanswered this long no longer counts against its connection's
 * in-flight budget (claimsvc answers nothing it drops). */
#define INFLIGHT_EXPIRE_MS 10000
#define CERT_BUCKETS 1024
/* A reply may be received this long after claimsvc sent it: time for the
 * broker to deliver it, or to recheck one it queued for an offline
 * persistent session when the device returns. 8,192 tickets cover 800
 * replies a second, four times what one broker can provision. */
#define REPLY_TICKET_MS 10000
#define REPLY_TICKETS 8192

static const struct onboard_config *config;
static struct onb_bucket_table *cert_budgets; /* claim and birth certificates by fingerprint */
static struct onb_reply_tickets *reply_tickets;

int message_init(const struct onboard_config *cfg)
{
	config = cfg;
	cert_budgets = onb_bucket_table_new(CERT_BUCKETS);
	reply_tickets = onb_reply_tickets_new(REPLY_TICKETS, REPLY_TICKET_MS);
	return cert_budgets && reply_tickets ? ONB_OK : ONB_EINTERNAL;
}

void message_free(void)
{
	onb_bucket_table_free(cert_budgets);
	cert_budgets = NULL;
	onb_reply_tickets_free(reply_tickets);
	reply_tickets = NULL;
}

bool message_reply_admitted(const struct session *s, const char *topic, const void *payload, size_t len)
{
	return onb_reply_tickets_admit(reply_tickets, s->id, topic, payload, len, onb_mono_ms());
}

void message_tick(void)
{
	metrics.prov_unheard += onb_reply_tickets_expire(reply_tickets, onb_mono_ms());
}

/* Whether s may hand claimsvc one more request now: a flood costs the
 * flooding connection (and the certificate it shares with its other
 * connections) its answers, not claimsvc's capacity for everyone else.
 * The first refusal of a kind in a window is audited, the rest counted. */
static bool within_budget(struct session *s, const struct mosquitto *client)
{
	int64_t now = onb_mono_ms();
	const char *why;

	if(s->inflight > 0 && now - s->inflight_at_ms > INFLIGHT_EXPIRE_MS) s->inflight = 0;
	if(config->request_inflight > 0 && s->inflight >= config->request_inflight){
		why = "request-inflight: too many requests without an answer on this connection";
	}else if(!onb_bucket_take(&s->requests, &config->request_rate, now)){
		why = "request-rate: this connection's request budget is spent";
	}else if(onb_idclass_provisioning(s->idclass)
			&& !onb_bucket_table_take(cert_budgets, s->fp, &config->request_cert_rate, now)){
		why = "request-cert-rate: this certificate's request budget is spent";
	}else{
		if(s->inflight++ == 0) s->inflight_at_ms = now;
		return true;
	}
	metrics.prov_shed++;
	refusals_note(s, client, ONB_AA(REQUEST), why);
	return false;
}

/* claimsvc answered one of the session's requests. */
static void answered(const char *client_id)
{
	struct session *s = sessions_find(client_id);

	if(s && s->inflight > 0){
		s->inflight--;
		s->inflight_at_ms = onb_mono_ms();
	}
}

/* The original of a message the plugin has handled goes on as an empty,
 * non-retained message on its own topic, which nobody may receive (acl.c):
 * the publisher gets a plain success (PUBACK 0), as from AWS. */
static int consumed(struct mosquitto_evt_message *ev)
{
	ev->payload = NULL; /* the broker frees the old payload */
	ev->payloadlen = 0;
	ev->retain = false;
	return MOSQ_ERR_SUCCESS;
}

/* Hands a request to claimsvc, stamped with who sent it. A payload the
 * broker will not forward (over 64 KiB, or holding a NUL byte) travels as a
 * small refusal envelope instead, so that claimsvc answers and audits it like
 * any other bad request: no Redis write here, and claimsvc's rate limits
 * bound what a flood of bad requests costs. Nothing answers the device when
 * no claimsvc runs, as for every other request (docs/internal-topics.md). */
static int stamp_request(struct mosquitto_evt_message *ev, const struct session *s, const char *route)
{
	struct onb_requester_stamp who = {
		.client_id = s->id,
		.idclass = onb_idclass_name(s->idclass),
		.fp = s->fp,
		.address = mosquitto_client_address(ev->client),
		.tenant = s->idclass == ONB_ID_SERVICE ? s->tenant : NULL,
	};
	enum onb_refusal refused = ONB_REFUSAL_NONE;
	struct onb_err err;
	size_t len = 0;
	char *envelope;
	void *payload;

	envelope = onb_envelope_request(&who, ev->topic, ev->payload, ev->payloadlen, &len, &refused, &err);
	if(!envelope){
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "dropping request from %s on %s: %s",
				s->id, ev->topic, err.msg);
		return MOSQ_ERR_ACL_DENIED;
	}
	if(refused != ONB_REFUSAL_NONE){
		metrics.prov_refused++;
		mosquitto_log_printf(MOSQ_LOG_DEBUG, ONB_LOG_PREFIX "refusing a %u-byte request from %s on %s (%s)",
				ev->payloadlen, s->id, ev->topic, onb_refusal_name(refused));
	}
	payload = mosquitto_malloc(len);
	if(!payload){
		cJSON_free(envelope);
		return MOSQ_ERR_ACL_DENIED;
	}
	memcpy(payload, envelope, len);
	cJSON_free(envelope);
	/* No client id: claimsvc's shared subscription picks one instance. The
	 * broker owns payload once it accepted it. */
	if(mosquitto_broker_publish(NULL, route, (int)len, payload, ev->qos > 1 ? 1 : ev->qos, false, NULL)
			!= MOSQ_ERR_SUCCESS){
		mosquitto_free(payload);
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "cannot hand the request from %s on %s to claimsvc",
				s->id, ev->topic);
		return MOSQ_ERR_ACL_DENIED;
	}
	return consumed(ev);
}

/* claimsvc's answer goes out on its reply topic like any message: the broker
 * delivers it only where a subscription matches, as AWS IoT does, and the
 * ticket lets only the asking connection's READ check pass (acl.c). */
static void deliver_reply(const struct mosquitto_evt_message *ev, const struct session *s)
{
	struct onb_reply reply;
	struct onb_err err;
	void *payload;

	if(onb_envelope_reply_parse(ev->payload, ev->payloadlen, &reply, &err) != ONB_OK){
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "bad reply envelope from %s: %s", s->id, err.msg);
		return;
	}
	answered(reply.client_id);
	if(onb_reply_tickets_issue(reply_tickets, reply.client_id, reply.topic, reply.payload, reply.payload_len,
			onb_mono_ms()) != ONB_OK){
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "dropping the reply to %s: no ticket", reply.client_id);
		goto cleanup;
	}
	payload = mosquitto_malloc(reply.payload_len ? reply.payload_len : 1);
	if(!payload) goto cleanup;
	memcpy(payload, reply.payload, reply.payload_len);
	/* The broker owns payload once it accepted it. */
	if(mosquitto_broker_publish(NULL, reply.topic, (int)reply.payload_len, payload, 1, false, NULL)
			== MOSQ_ERR_SUCCESS){
		metrics.prov_replies++;
	}else{
		mosquitto_free(payload);
	}
cleanup:
	free(reply.payload);
}

/* A service's counters on onb/internal/stats, republished retained as
 * $SYS/onboard/claimsvc/<its client id> (Mosquitto refuses every client
 * publish under $SYS, so the broker plugin publishes them). */
static void republish_stats(const struct mosquitto_evt_message *ev, const struct session *s)
{
	char topic[sizeof(ONB_SYS_TOPIC_PREFIX) + ONB_ID_MAX + 16];
	void *payload;

	if(ev->payloadlen == 0 || ev->payloadlen > ONB_STATS_DOC_MAX) return;
	payload = mosquitto_malloc(ev->payloadlen);
	if(!payload) return;
	memcpy(payload, ev->payload, ev->payloadlen);
	snprintf(topic, sizeof(topic), ONB_SYS_TOPIC_PREFIX "claimsvc/%s", s->id);
	if(mosquitto_broker_publish(NULL, topic, (int)ev->payloadlen, payload, 0, true, NULL) != MOSQ_ERR_SUCCESS){
		mosquitto_free(payload);
	}
}

int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ev = event_data;
	struct session *s = ev->client ? sessions_get(ev->client) : NULL;
	enum onb_tkind kind;
	struct onb_rule rule;

	if(!s || s->ended) return MOSQ_ERR_ACL_DENIED;
	/* The fixed rules of identity/authority.h; the policy has allowed the write. */
	kind = onb_tkind_of(ev->topic, s->id);
	rule = onb_authority(onb_role_of(s->idclass, s->tenant), ONB_DO_PUBLISH, kind);
	if(rule.verdict == ONB_V_POLICY) return MOSQ_ERR_SUCCESS;
	if(onb_tkind_internal(kind)){
		/* Only claimsvc's replies and counters come in here, and they go no
		 * further. */
		if(rule.verdict != ONB_V_TAKE){
			if(rule.why) refusals_note(s, ev->client, ONB_AA(PUBLISH), rule.why);
			return MOSQ_ERR_ACL_DENIED;
		}
		if(kind == ONB_TK_INT_REPLY) deliver_reply(ev, s);
		else republish_stats(ev, s);
		return consumed(ev);
	}
	if(rule.verdict != ONB_V_TAKE){
		metrics.prov_dropped++;
		refusals_note(s, ev->client, ONB_AA(REQUEST), rule.why ? rule.why : "request-forbidden");
		return MOSQ_ERR_ACL_DENIED;
	}
	if(kind == ONB_TK_RENEW_OWN) metrics.renew_requests++;
	metrics.prov_requests++;
	if(!within_budget(s, ev->client)) return MOSQ_ERR_ACL_DENIED;
	return stamp_request(ev, s, onb_request_route(ev->topic));
}
