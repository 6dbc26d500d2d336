/* Fleet-provisioning routing (docs/internal-topics.md). A device's request is
 * stamped with its verified identity and re-routed to claimsvc; claimsvc's
 * answer is delivered to the one connection that asked. Nothing is ever
 * published on the shared accepted/rejected topics. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "onboard.h"
#include "onb/envelope.h"

static int stamp_request(struct mosquitto_evt_message *ev, const struct session *s)
{
	struct onb_requester_stamp who = {
		.client_id = s->id,
		.idclass = onb_idclass_name(s->idclass),
		.fp = s->fp,
		.address = mosquitto_client_address(ev->client),
	};
	struct onb_err err;
	size_t len = 0;
	char *envelope, *topic;
	void *payload;

	envelope = onb_envelope_request(&who, ev->topic, ev->payload, ev->payloadlen, &len, &err);
	if(!envelope){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "dropping request from %s on %s: %s",
				s->id, ev->topic, err.msg);
		return MOSQ_ERR_ACL_DENIED;
	}
	topic = mosquitto_strdup(ONB_TOPIC_PROV_REQUEST);
	payload = mosquitto_malloc(len);
	if(!topic || !payload){
		mosquitto_free(topic);
		mosquitto_free(payload);
		cJSON_free(envelope);
		return MOSQ_ERR_ACL_DENIED;
	}
	memcpy(payload, envelope, len);
	cJSON_free(envelope);
	mosquitto_free(ev->topic);
	ev->topic = topic;
	/* The broker frees the payload it handed us. */
	ev->payload = payload;
	ev->payloadlen = (uint32_t)len;
	ev->retain = false;
	return MOSQ_ERR_SUCCESS;
}

static void deliver_reply(const struct mosquitto_evt_message *ev, const struct session *s)
{
	struct onb_reply reply;
	struct onb_err err;
	void *payload;

	if(onb_envelope_reply_parse(ev->payload, ev->payloadlen, &reply, &err) != ONB_OK){
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "bad reply envelope from %s: %s", s->id, err.msg);
		return;
	}
	payload = mosquitto_malloc(reply.payload_len ? reply.payload_len : 1);
	if(payload){
		memcpy(payload, reply.payload, reply.payload_len);
		/* With a client id the broker delivers to that connection only. */
		mosquitto_broker_publish(reply.client_id, reply.topic, (int)reply.payload_len, payload, 1, false, NULL);
	}
	free(reply.payload);
}

int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ev = event_data;
	const struct session *s = ev->client ? sessions_get(ev->client) : NULL;

	if(!s) return MOSQ_ERR_ACL_DENIED;
	if(onb_topic_is_internal(ev->topic)){
		/* Only claimsvc's replies come in here, and they go no further. */
		if(s->idclass == ONB_ID_SERVICE && !strcmp(ev->topic, ONB_TOPIC_PROV_REPLY)) deliver_reply(ev, s);
		return MOSQ_ERR_ACL_DENIED;
	}
	if(onb_prov_is_request_topic(ev->topic)){
		if(s->idclass != ONB_ID_CLAIM && s->idclass != ONB_ID_BIRTH && s->idclass != ONB_ID_DEVICE){
			return MOSQ_ERR_ACL_DENIED;
		}
		return stamp_request(ev, s);
	}
	return MOSQ_ERR_SUCCESS;
}
