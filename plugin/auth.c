/* CONNECT and DISCONNECT: translate the broker's view of a connection into
 * onb_admit() and keep the session table in step. */
#include <openssl/x509.h>
#include <string.h>

#include "onboard.h"
#include "onb/admission.h"

static const struct onb_ca_set *cas;

void auth_init(const struct onb_ca_set *ca_set, const struct onboard_config *cfg)
{
	(void)cfg;
	cas = ca_set;
}

static void record(struct mosquitto *client, const char *client_id, const struct onb_admission *a)
{
	const char *address = mosquitto_client_address(client);
	const char *who = a->dev.id[0] ? a->dev.id : "-";
	struct onb_audit_entry e = {
		.actor = "plugin",
		.source = address,
		.action = "connect",
		.device = a->dev.id[0] ? a->dev.id : NULL,
		.result = a->allowed ? "allow" : "deny",
		.reason = a->allowed ? a->reason : a->detail,
	};

	/* The client id is attacker-chosen: it is only logged once validated. */
	mosquitto_log_printf(a->allowed ? MOSQ_LOG_INFO : MOSQ_LOG_NOTICE, ONB_LOG_PREFIX
			"connect %s device=%s client=%s class=%s address=%s reason=%s (%s)",
			a->allowed ? "allow" : "deny", who,
			onb_id_valid(client_id) ? client_id : "<invalid>",
			onb_idclass_name(a->idclass), address ? address : "-", a->reason, a->detail);
	registry_link_audit(&e);
}

int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ev = event_data;
	const char *client_id = mosquitto_client_id(ev->client);
	X509 *cert = mosquitto_client_certificate(ev->client);
	struct onb_admission a;
	redisContext *rc;
	sigset_t saved;
	int ret = MOSQ_ERR_AUTH;

	/* Username and password are the client's to send and ours to ignore:
	 * identity comes from the verified certificate alone. */
	events_hold_wakeups(&saved);
	rc = events_ready() ? registry_link_get() : NULL;
	if(onb_admit(rc, cas, cert, client_id, &a) == ONB_EUNAVAIL) registry_link_drop();
	if(a.allowed){
		struct session s = { .client = ev->client, .idclass = a.idclass, .state = a.dev.state };
		memcpy(s.id, a.dev.id, sizeof(s.id));
		if(sessions_put(&s) == ONB_OK
				&& mosquitto_set_username(ev->client, a.dev.id) == MOSQ_ERR_SUCCESS){
			ret = MOSQ_ERR_SUCCESS;
		}else{
			a.allowed = false;
			a.reason = "internal";
			snprintf(a.detail, sizeof(a.detail), "out of memory");
		}
	}
	record(ev->client, client_id, &a);
	events_release_wakeups(&saved);
	X509_free(cert);
	return ret;
}

int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ev = event_data;
	sessions_remove(ev->client);
	return MOSQ_ERR_SUCCESS;
}

int on_tick(int event, void *event_data, void *userdata)
{
	events_apply();
	return MOSQ_ERR_SUCCESS;
}
