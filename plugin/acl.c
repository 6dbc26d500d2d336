/* Every publish, subscribe and delivery: one in-memory evaluation of the
 * session's compiled policy. No Redis, no allocation; a denial increments
 * one counter. Anything we cannot attribute to an admitted session is denied. */
#include "onboard.h"

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
	if(!s || !s->policy){
		metrics.acl_denied[M_ACL_NO_SESSION]++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if(onb_policy_allows(s->policy, action, ev->topic, NULL)) return MOSQ_ERR_SUCCESS;
	metrics.acl_denied[m]++;
	return MOSQ_ERR_ACL_DENIED;
}
