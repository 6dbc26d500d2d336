/* Every publish, subscribe and delivery. Pure in-memory: no Redis here.
 * Anything we cannot attribute to an admitted session is denied. */
#include <string.h>

#include "onboard.h"

/* The skeleton's built-in rule, until policies land: an unclaimed or active
 * device lives in devices/<id>/...; a quarantined one may only report its
 * status. */
static bool in_namespace(const char *id, const char *topic)
{
	size_t n = strlen(id);
	return !strncmp(topic, "devices/", 8) && !strncmp(topic + 8, id, n)
		&& topic[8 + n] == '/' && topic[9 + n] != '\0';
}

static bool builtin_allows(const struct session *s, int access, const char *topic)
{
	if(s->idclass != ONB_ID_DEVICE) return false;
	if(s->state == ONB_STATE_QUARANTINED){
		char status[ONB_ID_MAX + 16];
		snprintf(status, sizeof(status), "devices/%s/status", s->id);
		return access == MOSQ_ACL_WRITE && !strcmp(topic, status);
	}
	if(s->state != ONB_STATE_UNCLAIMED && s->state != ONB_STATE_ACTIVE) return false;
	if(access == MOSQ_ACL_SUBSCRIBE && !strncmp(topic, "$share/", 7)){
		const char *slash = strchr(topic + 7, '/');
		if(!slash || slash == topic + 7) return false;
		topic = slash + 1;
	}
	/* devices/<id>/ is literal, so wildcards after it stay inside. */
	return in_namespace(s->id, topic);
}

int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = event_data;
	const struct session *s = sessions_get(ev->client);

	if(!s || !ev->topic) return MOSQ_ERR_ACL_DENIED;
	switch(ev->access){
	case MOSQ_ACL_WRITE:
	case MOSQ_ACL_READ:
	case MOSQ_ACL_SUBSCRIBE:
		return builtin_allows(s, ev->access, ev->topic) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	case MOSQ_ACL_UNSUBSCRIBE:
		return MOSQ_ERR_SUCCESS;
	default:
		return MOSQ_ERR_ACL_DENIED;
	}
}
