/* Every publish, subscribe and delivery: one in-memory evaluation of the
 * session's compiled policy. No Redis, no allocation; a denial increments
 * one counter. Anything we cannot attribute to an admitted session is denied. */
#include "onboard.h"
#include "onb/envelope.h"
#include "onb/topic.h"

/* A check on an ended session (sessions.c) comes from context__send_will():
 * the broker publishing the connection's will after its DISCONNECT event or
 * during a takeover. Only that WRITE is judged; anything else on a
 * connection that is gone is denied, as before it ended. */
static int will_check(const struct session *s, const struct mosquitto_evt_acl_check *ev)
{
	const char *why;

	if(ev->access != MOSQ_ACL_WRITE){
		metrics.acl_denied[M_ACL_NO_SESSION]++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if(s->deny_will){
		why = "its device was disconnected for a change of state";
	}else if(onb_topic_is_internal(ev->topic) || onb_request_route(ev->topic)){
		/* A will skips MOSQ_EVT_MESSAGE, where requests are stamped and
		 * routed and internal replies swallowed: it must not go raw. */
		why = "wills may not use internal or provisioning request topics";
	}else if(!onb_policy_allows(s->policy, ONB_ACT_PUBLISH, ev->topic, NULL)){
		why = "its policy does not allow publishing there";
	}else{
		metrics.wills_published++;
		return MOSQ_ERR_SUCCESS;
	}
	metrics.acl_denied[M_ACL_WILL]++;
	/* The broker logs no denied will itself; the topic passed its UTF-8
	 * checks (no control characters). */
	mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "denied will of %s to '%.200s': %s",
			s->id, ev->topic, why);
	return MOSQ_ERR_ACL_DENIED;
}

/* claimsvc: a service identity of no tenant (a tenant's back-end is a
 * service identity too). */
static bool is_claimsvc(const struct session *s)
{
	return s->idclass == ONB_ID_SERVICE && !s->tenant[0];
}

/* The internal tree carries stamped requests (CSRs, ownership tokens) and
 * claimsvc's answers: only claimsvc may read it, whatever a policy says, so an
 * operator's generous policy ('#') can neither read it nor join claimsvc's
 * shared subscription and swallow requests. (Publishing there is refused in
 * on_message.) A filter counts when it names the tree literally; a wildcard
 * one ('#', 'onb/+/...') is allowed to stand but its deliveries from the tree
 * are refused here, as READ checks. */
static bool reaches_internal(enum onb_action action, const char *topic)
{
	if(action == ONB_ACT_SUBSCRIBE) topic = onb_filter_unshare(topic);
	return topic && onb_topic_is_internal(topic);
}

/* Counts a denial and audits it, aggregated per session, action and reason
 * (refusals.c): a device probing other devices' topics is on record, with a
 * sample topic, at a cost of at most two entries a window. */
static int denied(const struct session *s, const struct mosquitto_evt_acl_check *ev, enum metrics_acl m,
		const char *why)
{
	static const enum onb_audit_action actions[M_ACL_COUNT] = {
		[M_ACL_PUBLISH] = ONB_AA_PUBLISH, [M_ACL_SUBSCRIBE] = ONB_AA_SUBSCRIBE, [M_ACL_RECEIVE] = ONB_AA_RECEIVE,
		[M_ACL_NO_SESSION] = ONB_AA_UNKNOWN, [M_ACL_WILL] = ONB_AA_UNKNOWN,
	};
	char reason[ONB_REASON_MAX];

	metrics.acl_denied[m]++;
	/* the topic passed the broker's UTF-8 checks: no control characters */
	snprintf(reason, sizeof(reason), "%s; sample '%.160s'", why, ev->topic);
	refusals_note(s, ev->client, onb_audit_action_name(actions[m]), reason);
	return MOSQ_ERR_ACL_DENIED;
}

int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = event_data;
	const struct session *s = sessions_get(ev->client);
	enum onb_action action;
	enum metrics_acl m;

	switch(ev->access){
	case MOSQ_ACL_WRITE: action = ONB_ACT_PUBLISH; m = M_ACL_PUBLISH; break;
	case MOSQ_ACL_READ: action = ONB_ACT_RECEIVE; m = M_ACL_RECEIVE; break;
	case MOSQ_ACL_SUBSCRIBE: action = ONB_ACT_SUBSCRIBE; m = M_ACL_SUBSCRIBE; break;
	case MOSQ_ACL_UNSUBSCRIBE: return MOSQ_ERR_SUCCESS; /* giving up access is always fine */
	default:
		metrics.acl_denied[M_ACL_NO_SESSION]++;
		return MOSQ_ERR_ACL_DENIED;
	}
	/* A parked entry (sessions.c) answers for the messages the broker
	 * queues for its offline session; anything else on an ended one is its
	 * will. */
	if(s && s->ended && !(s->parked && ev->access == MOSQ_ACL_READ)) return will_check(s, ev);
	if(!s && ev->access == MOSQ_ACL_WRITE){
		/* Every admitted connection has an entry until the tick after its
		 * DISCONNECT: this is an MQTT 5 delayed will (docs/policies.md). The
		 * broker passes a live connection, so asking its id is safe. */
		const char *id = mosquitto_client_id(ev->client);
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "denied will of %s to '%.200s': "
				"its connection has ended (delayed wills are not supported)",
				onb_id_valid(id) ? id : "<invalid>", ev->topic);
	}
	if(!s || !s->policy){
		metrics.acl_denied[M_ACL_NO_SESSION]++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if(action == ONB_ACT_RECEIVE && onb_prov_is_reply_topic(ev->topic)){
		/* A provisioning answer reaches the one connection it answers, where
		 * it subscribed; the others subscribed to the same reply topic, and
		 * any look-alike a client published, are refused without a note:
		 * many devices provision at once, and none of them did wrong. */
		return message_reply_admitted(s, ev->topic, ev->payload, ev->payloadlen)
			? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	}
	if(action == ONB_ACT_RECEIVE && ev->payloadlen == 0 && onb_topic_handed_off(ev->topic)){
		/* the emptied original of a request, reply or counters message that
		 * message.c has handled: nobody's to read. Only an empty message can
		 * be one (on_message empties or refuses every message on such a
		 * topic, and will_check refuses wills there), so a delivery with a
		 * payload skips the topic test. Every version passes the stored
		 * message's length to the READ check (subs.c, retain.c). */
		metrics.acl_denied[m]++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if(action != ONB_ACT_PUBLISH && !is_claimsvc(s) && reaches_internal(action, ev->topic)){
		return denied(s, ev, m, "internal-topic: only claimsvc may read");
	}
	/* a delivery's topic was validated when the broker accepted the message */
	if(action == ONB_ACT_RECEIVE ? onb_policy_allows_receive(s->policy, ev->topic, NULL)
			: onb_policy_allows(s->policy, action, ev->topic, NULL)){
		return MOSQ_ERR_SUCCESS;
	}
	return denied(s, ev, m, "policy-denies: not allowed by the session's policy");
}
