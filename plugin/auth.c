/* CONNECT and DISCONNECT: translate the broker's view of a connection into
 * onb_admit() and keep the session table in step. */
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "onboard.h"
#include "identity/admission.h"
#include "identity/authority.h"
#include "registry/lifecycle.h"

static const struct onb_ca_set *cas;
static const struct onboard_config *config;
static bool client_offline; /* the broker raises CLIENT_OFFLINE (2.1) */

void auth_init(const struct onb_ca_set *ca_set, const struct onboard_config *cfg)
{
	cas = ca_set;
	config = cfg;
}

void auth_set_client_offline(bool has)
{
	client_offline = has;
}

/* address: the client's, copied when the decision is delayed (the broker
 * may have freed the client by then). */
static void record(const char *address, const char *client_id, const struct onb_admission *a)
{
	const char *who = a->dev.id[0] ? a->dev.id : "-";
	struct onb_audit_entry e = {
		.actor = "plugin",
		.source = address,
		.action = ONB_AA(CONNECT),
		.device = a->dev.id[0] ? a->dev.id : NULL,
		.result = a->allowed ? "allow" : "deny",
		.reason = a->allowed ? a->reason : a->detail,
		.client = onb_id_valid(client_id) ? client_id : NULL,
		.idclass = a->idclass != ONB_ID_NONE ? onb_idclass_name(a->idclass) : NULL,
		.fp = a->fp[0] ? a->fp : NULL,
	};
	char reason[ONB_REASON_MAX];
	bool shared = onb_idclass_provisioning(a->idclass);

	/* The client id is attacker-chosen: it is only logged once validated. */
	mosquitto_log_printf(a->allowed ? MOSQ_LOG_INFO : MOSQ_LOG_NOTICE, ONB_LOG_PREFIX
			"connect %s device=%s client=%s class=%s address=%s reason=%s (%s)",
			a->allowed ? "allow" : "deny", who,
			onb_id_valid(client_id) ? client_id : "<invalid>",
			onb_idclass_name(a->idclass), address ? address : "-", a->reason, a->detail);
	metrics_connect(a->allowed, a->reason);
	/* A device's or service's admission is on record one by one. Refusals,
	 * and the connects of claim and birth certificates (anyone holding a
	 * leaked claim certificate can repeat them at will), are aggregated per
	 * kind and window (refusals.c), so that no connect storm can erase the
	 * trail. */
	if(a->allowed && !shared){
		writer_audit(&e); /* written by the writer thread, in order */
		return;
	}
	if(!a->allowed){
		snprintf(reason, sizeof(reason), "%s: %.200s", a->reason, a->detail);
		e.reason = reason;
	}
	refusals_write(&e, shared || !e.client);
}

/* A device presenting its next certificate (issued by a renewal) makes it
 * the current one before it is admitted, and its previous certificate stops
 * working (rotate_promote.lua). Fail closed: if the registry cannot do it,
 * the connect is refused and the device tries again. */
static int promote(redisContext *rc, const char *address, struct onb_admission *a)
{
	struct onb_actor actor = { .who = "plugin", .source = address };
	struct onb_err err;
	int r;

	if(a->idclass != ONB_ID_DEVICE || !a->dev.cert_fp_next[0] || strcmp(a->fp, a->dev.cert_fp_next) != 0){
		return ONB_OK;
	}
	r = onb_rotation_promote(rc, a->dev.id, a->fp, &actor, &err);
	if(r == ONB_OK){
		metrics.rotation_promoted++;
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "%s: renewed certificate now current", a->dev.id);
		memcpy(a->dev.cert_fp, a->fp, sizeof(a->dev.cert_fp));
		a->dev.cert_fp_next[0] = '\0';
		a->dev.rotate_deadline_ms = 0;
		a->dev.rotate_required = false;
		return ONB_OK;
	}
	a->allowed = false;
	if(r == ONB_EUNAVAIL){
		a->reason = ONB_AR(REGISTRY_UNAVAILABLE);
		snprintf(a->detail, sizeof(a->detail), "promoting the renewed certificate: %.200s", err.msg);
		return ONB_EUNAVAIL;
	}
	a->reason = ONB_AR(NOT_REGISTERED);
	snprintf(a->detail, sizeof(a->detail), "%.200s", err.msg);
	return ONB_OK;
}

/* Gives an admitted connection its session and policy; on failure turns
 * the admission into a refusal with the reason. set_username: false when
 * the caller did it already (a delayed decision, whose client may be gone
 * by now: address is the copy made at CONNECT). */
static void open_session(redisContext *rc, struct mosquitto *client, bool set_username, const char *address,
		X509 *cert, const char *client_id, struct onb_admission *a)
{
	struct session s = { .client = client, .idclass = a->idclass, .state = a->dev.state };
	const struct session *live = sessions_find(client_id);
	const char *name;
	const struct onb_policy *doc;
	struct onb_err err;

	if(live && !onb_client_id_takeover(a->idclass, live->idclass)){
		a->allowed = false;
		a->reason = ONB_AR(CLIENT_ID_IN_USE);
		snprintf(a->detail, sizeof(a->detail), "client id is in use by a %s connection",
				onb_idclass_name(live->idclass));
		return;
	}
	memcpy(s.id, client_id, strlen(client_id) + 1);
	memcpy(s.fp, a->fp, sizeof(s.fp));
	if(a->idclass == ONB_ID_DEVICE){
		memcpy(s.tenant, a->dev.tenant, sizeof(s.tenant));
		memcpy(s.explicit_policy, a->dev.policy, sizeof(s.explicit_policy));
		rotation_session_init(&s, &a->dev);
	}else if(a->idclass == ONB_ID_SERVICE){
		onb_cert_tenant(cert, s.tenant);
	}
	name = onb_policy_for(&config->policies, s.idclass, s.state, s.tenant, s.explicit_policy);
	doc = name ? policies_get(rc, name, &err) : NULL;
	if(!doc){
		a->allowed = false;
		a->reason = ONB_AR(NO_POLICY);
		snprintf(a->detail, sizeof(a->detail), "policy %s unavailable: %.160s",
				name ? name : "-", name ? err.msg : "none for this state");
		return;
	}
	if(session_bind(&s, name, doc) != ONB_OK
			|| !onb_policy_allows(s.policy, ONB_ACT_CONNECT, client_id, NULL)){
		onb_compiled_free(s.policy);
		a->allowed = false;
		a->reason = ONB_AR(POLICY_DENIES_CONNECT);
		snprintf(a->detail, sizeof(a->detail), "policy %s does not allow connect", name);
		return;
	}
	if(sessions_put(&s) != ONB_OK){
		onb_compiled_free(s.policy);
		a->allowed = false;
		a->reason = ONB_AR(INTERNAL);
		snprintf(a->detail, sizeof(a->detail), "out of memory");
		return;
	}
	/* Tell the fleet: a session of this device elsewhere that is older closes. */
	fleet_announce(sessions_get(client), address);
	/* Later ACL checks and kicks by username name the device. */
	if(set_username) mosquitto_set_username(client, client_id);
}

/* Whether the broker has run our tick yet. Mosquitto before 2.0.15 never
 * runs it with per_listener_settings true: registry events (a revocation)
 * would then never reach live sessions, so nothing is admitted. A broker that
 * runs it has done so before any CONNECT can arrive (the TLS handshake alone
 * takes several turns of the loop, each with a tick). */
static bool tick_seen;

static bool refuse_without_tick(struct mosquitto *client, const char *client_id)
{
	static bool said;
	struct onb_admission a;
	sigset_t saved;

	if(tick_seen) return false;
	memset(&a, 0, sizeof(a));
	a.reason = ONB_AR(INTERNAL);
	snprintf(a.detail, sizeof(a.detail), "the broker does not run the plugin's tick "
			"(Mosquitto before 2.0.15 with per_listener_settings true)");
	if(!said){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "%s: refusing every connect; "
				"set per_listener_settings false", a.detail);
		said = true;
	}
	events_hold_wakeups(&saved);
	record(mosquitto_client_address(client), client_id, &a);
	events_release_wakeups(&saved);
	return true;
}

/* Promotes a renewed certificate, opens the session and records the
 * decision; whether the client is admitted. */
static bool finish(redisContext *rc, struct mosquitto *client, bool set_username, const char *address,
		X509 *cert, const char *client_id, struct onb_admission *a)
{
	if(a->allowed && promote(rc, address, a) == ONB_EUNAVAIL){
		registry_link_drop();
		rc = NULL;
	}
	if(a->allowed) open_session(rc, client, set_username, address, cert, client_id, a);
	record(address, client_id, a);
	return a->allowed;
}

/* Answers nothing: a view for the first pass when there is none. */
static const struct onb_admview *empty_view(void)
{
	static struct onb_admview *empty;
	if(!empty) empty = onb_admview_new(0); /* kept for the process's life */
	return empty;
}

int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ev = event_data;
	const char *client_id = mosquitto_client_id(ev->client);
	X509 *cert;
	struct onb_admission a;
	const struct onb_admview *view;
	redisContext *rc;
	sigset_t saved;
	bool decided, allowed;

	/* A new connection: an entry still holding this address is a freed one's. */
	sessions_forget_client(ev->client);
	if(refuse_without_tick(ev->client, client_id)) return MOSQ_ERR_AUTH;
	cert = mosquitto_client_certificate(ev->client);
	/* Username and password are the client's to send and ours to ignore:
	 * identity comes from the verified certificate alone. */
	events_hold_wakeups(&saved);
	/* Not a network call: the connection the connector thread keeps ready.
	 * Needed for a miss, a promotion, and a policy not cached yet. */
	rc = events_ready() ? registry_link_get() : NULL;
	/* 2.1 may run the tick up to 100 ms after the watcher queued a change */
	events_apply_view();
	view = admview_link_get();
	/* An empty view decides what needs no registry (certificate, CA,
	 * client id, services) and classifies the rest. */
	decided = onb_admit_view(view ? view : empty_view(), onb_now_ms(), cas, cert, client_id, &a) == ONB_OK;
	if(decided && view) metrics.admview_hits++;
	else if(view) metrics.admview_misses++;
	/* Only operational certificates: Mosquitto 2.1.2 drops a client that
	 * sends SUBSCRIBE or PUBLISH before its delayed CONNACK (protocol error,
	 * src/handle_subscribe.c), which MQTT allows and provisioning clients
	 * do; a device misses the view about once (its first CONNECT). */
	if(!decided && rc && a.idclass == ONB_ID_DEVICE && delayed_auth_available()
			&& delayed_auth_begin(ev->client, client_id, cert, &a) == ONB_OK){
		/* decided on the main thread later (delayed_auth.c) */
		metrics.auth_delayed++;
		events_release_wakeups(&saved);
		X509_free(cert);
		return delayed_auth_return_code();
	}
	if(!decided && onb_admit(rc, cas, cert, client_id, &a) == ONB_EUNAVAIL){
		registry_link_drop();
		rc = NULL;
	}
	allowed = finish(rc, ev->client, true, mosquitto_client_address(ev->client), cert, client_id, &a);
	events_release_wakeups(&saved);
	X509_free(cert);
	return allowed ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
}

bool auth_finish(struct mosquitto *client, const char *client_id, const char *address, X509 *cert,
		const struct onb_admit_prefetch *pre)
{
	struct onb_admission a;
	redisContext *rc;
	sigset_t saved;
	bool allowed;

	events_hold_wakeups(&saved);
	rc = events_ready() ? registry_link_get() : NULL;
	onb_admit_prefetched(pre, cas, cert, client_id, &a);
	allowed = finish(rc, client, false, address[0] ? address : NULL, cert, client_id, &a);
	events_release_wakeups(&saved);
	return allowed;
}

/* DISCONNECT, and on 2.1 CLIENT_OFFLINE (plugin.c): both events carry the
 * client in the same place. 2.1 raises CLIENT_OFFLINE when it keeps the
 * session and DISCONNECT when the session ends; 2.0 raises DISCONNECT for
 * both, and keeps the session of a client that did not ask for a clean one
 * (an MQTT 5 client with a zero session expiry is parked needlessly: its
 * entry goes when its id or its address comes back). */
int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ev = event_data;
	bool keeps = event == MOSQ_EVT_DISCONNECT
		? !client_offline && !mosquitto_client_clean_session(ev->client)
		: true;

	/* Not freed yet: every version checks the will after this callback. */
	sessions_end(ev->client, keeps);
	return MOSQ_ERR_SUCCESS;
}

/* Mosquitto 2.0 runs the tick at every turn of its loop (about every 100 ms
 * when idle) whatever the plugin says; 2.1 runs it when the plugin asks, in
 * the field 2.0's header calls next_ns and 2.1's next_ms (milliseconds; 0
 * means "at every turn of the loop", which without websockets may wait many
 * seconds when idle). 2.1 skips the tick until that time has passed, so a
 * registry event the watcher's wake-up signal announces would wait up to
 * next_ms (measured: revocations took 95 ms at 100). On 2.1 (known by its
 * CLIENT_OFFLINE event) the plugin therefore asks for 0, as 2.0 behaves,
 * and the watcher's heartbeat (events_set_heartbeat) turns the loop at least
 * every 100 ms: rotation deadlines and the counters rely on a steady tick. */
#define TICK_MS 100
#if LIBMOSQUITTO_VERSION_NUMBER >= 2001000
#define TICK_NEXT_MS(ev) ((ev)->next_ms)
#else
#define TICK_NEXT_MS(ev) ((ev)->next_ns)
#endif

int on_tick(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_tick *ev = event_data;

	/* 0 on 2.1: see above; delayed authentication (2.1 only) needs it too,
	 * or a delayed CONNECT's answer would wait up to 100 ms (delayed_auth.c
	 * wakes the loop when an answer is ready). */
	TICK_NEXT_MS(ev) = client_offline ? 0 : TICK_MS;
	tick_seen = true;
	sessions_reap();
	events_apply();
	admview_link_tick();
	delayed_auth_tick();
	rotation_tick();
	message_tick();
	metrics_tick();
	refusals_tick();
	return MOSQ_ERR_SUCCESS;
}
