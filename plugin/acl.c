/* Every publish, subscribe and delivery: one in-memory evaluation of the
 * session's compiled policy. No Redis, no allocation; a denial increments
 * one counter. Anything we cannot attribute to an admitted session is denied. */
#include "onboard.h"
#include "identity/authority.h"
#include "policy/topic.h"

/* The fixed rule (identity/authority.h) for s doing deed on a topic of kind k. */
static struct onb_rule fixed_rule(const struct session *s, enum onb_deed deed, enum onb_tkind k)
{
	return onb_authority(onb_role_of(s->idclass, s->tenant), deed, k);
}

/* A check on an ended session (sessions.c) comes from context__send_will():
 * the broker publishing the connection's will after its DISCONNECT event or
 * during a takeover. Only that WRITE is judged; anything else on a
 * connection that is gone is denied, as before it ended. */
static int will_check(const struct session *s, const struct mosquitto_evt_acl_check *ev)
{
	struct onb_rule rule;
	const char *why;

	if(ev->access != MOSQ_ACL_WRITE){
		metrics.acl_denied[M_ACL_NO_SESSION]++;
		return MOSQ_ERR_ACL_DENIED;
	}
	rule = fixed_rule(s, ONB_DO_WILL, onb_tkind_of(ev->topic, NULL));
	if(s->deny_will){
		why = "its device was disconnected for a change of state";
	}else if(rule.verdict != ONB_V_POLICY){
		why = rule.why ? rule.why : "a fixed rule denies it";
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
	struct onb_rule rule = { ONB_V_POLICY, NULL };
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
	/* The fixed rules of identity/authority.h. A live PUBLISH meets them in
	 * on_message; here only its policy. A filter reaches the internal tree
	 * when it names it literally; a wildcard one ('#', 'onb/+/...') may
	 * stand, but its deliveries from the tree are refused, as READ checks.
	 * Every version passes the stored message's length to the READ check
	 * (subs.c, retain.c): an emptied original is told by it. */
	if(action == ONB_ACT_RECEIVE){
		rule = fixed_rule(s, ONB_DO_RECEIVE, onb_tkind_delivery(ev->topic, ev->payloadlen));
	}else if(action == ONB_ACT_SUBSCRIBE){
		rule = fixed_rule(s, ONB_DO_SUBSCRIBE, onb_tkind_of(onb_filter_unshare(ev->topic), NULL));
	}
	switch(rule.verdict){
	case ONB_V_POLICY:
		break;
	case ONB_V_TICKET:
		/* a provisioning answer: the asking connection only */
		return message_reply_admitted(s, ev->topic, ev->payload, ev->payloadlen)
			? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	default:
		if(rule.why) return denied(s, ev, m, rule.why);
		metrics.acl_denied[m]++;
		return MOSQ_ERR_ACL_DENIED;
	}
	/* a delivery's topic was validated when the broker accepted the message */
	if(action == ONB_ACT_RECEIVE ? onb_policy_allows_receive(s->policy, ev->topic, NULL)
			: onb_policy_allows(s->policy, action, ev->topic, NULL)){
		return MOSQ_ERR_SUCCESS;
	}
	return denied(s, ev, m, "policy-denies: not allowed by the session's policy");
}
