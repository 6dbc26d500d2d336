/* Every publish, subscribe and delivery: one in-memory evaluation of the
 * session's compiled policy. No Redis, no allocation. Anything we cannot
 * attribute to an admitted session is denied. */
#include "onboard.h"

int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = event_data;
	const struct session *s = sessions_get(ev->client);
	enum onb_action action;

	switch(ev->access){
	case MOSQ_ACL_WRITE: action = ONB_ACT_PUBLISH; break;
	case MOSQ_ACL_READ: action = ONB_ACT_RECEIVE; break;
	case MOSQ_ACL_SUBSCRIBE: action = ONB_ACT_SUBSCRIBE; break;
	case MOSQ_ACL_UNSUBSCRIBE: return MOSQ_ERR_SUCCESS; /* giving up access is always fine */
	default: return MOSQ_ERR_ACL_DENIED;
	}
	if(!s || !s->policy) return MOSQ_ERR_ACL_DENIED;
	return onb_policy_allows(s->policy, action, ev->topic, NULL) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}
