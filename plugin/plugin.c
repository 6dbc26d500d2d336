/* mosquitto_onboard: registration and teardown only. */
#include <dlfcn.h>
#include <string.h>

#include "onboard.h"

/* The plugin is built with hidden visibility (CMakeLists.txt, exports.map):
 * these three are all the broker may see. */
#define ONB_ENTRY_POINT __attribute__((visibility("default")))

static mosquitto_plugin_id_t *plugin_id;
static struct onboard_config config;
static struct onb_ca_set cas;

/* Mosquitto 2.1 raises CLIENT_OFFLINE instead of DISCONNECT when a
 * connection with a session that outlives it goes away (DISCONNECT then
 * comes when the session expires). Older brokers do not know the event and
 * refuse it (MOSQ_ERR_NOT_SUPPORTED); their DISCONNECT covers every
 * connection. */
#ifndef MOSQ_EVT_CLIENT_OFFLINE
#define MOSQ_EVT_CLIENT_OFFLINE 28
#endif

static struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
	bool optional;   /* an event some supported versions do not have */
	bool registered;
} callbacks[] = {
	{ MOSQ_EVT_BASIC_AUTH, on_basic_auth, false, false },
	{ MOSQ_EVT_ACL_CHECK, on_acl_check, false, false },
	{ MOSQ_EVT_MESSAGE, on_message, false, false },
	{ MOSQ_EVT_DISCONNECT, on_disconnect, false, false },
	{ MOSQ_EVT_CLIENT_OFFLINE, on_disconnect, true, false },
	{ MOSQ_EVT_TICK, on_tick, false, false },
};
#define CALLBACK_COUNT (sizeof(callbacks) / sizeof(callbacks[0]))

static bool has_client_offline(void)
{
	for(size_t i = 0; i < CALLBACK_COUNT; i++){
		if(callbacks[i].event == MOSQ_EVT_CLIENT_OFFLINE) return callbacks[i].registered;
	}
	return false;
}

/* Mosquitto 2.1's mosquitto_persist_client_delete() ends the session it
 * keeps for a client id (for persistence plugins, but any plugin may call
 * it). 2.0 has no such call: its broker is looked up at load time, so that
 * one build loads into both. */
static int (*broker_session_delete)(const char *client_id);

static bool end_kept_session(const char *client_id)
{
	if(broker_session_delete(client_id) != MOSQ_ERR_SUCCESS) return false;
	mosquitto_log_printf(MOSQ_LOG_DEBUG, ONB_LOG_PREFIX "ended the session kept for %s "
			"(a claim or birth certificate's)", client_id);
	return true;
}

static void find_session_ender(void)
{
	void *self = dlopen(NULL, RTLD_LAZY);

	/* a function pointer through a void * is POSIX's dlsym contract */
	if(self) *(void **)&broker_session_delete = dlsym(self, "mosquitto_persist_client_delete");
	if(self) dlclose(self);
	if(broker_session_delete){
		sessions_set_ender(end_kept_session);
	}else{
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "this broker cannot end a persistent session "
				"on request (Mosquitto < 2.1): a claim or birth connection that asks for one leaves it "
				"behind until persistent_client_expiration (docs/provisioning.md)");
	}
}

ONB_ENTRY_POINT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

static void unregister_all(void)
{
	for(size_t i = 0; i < CALLBACK_COUNT; i++){
		if(!callbacks[i].registered) continue;
		mosquitto_callback_unregister(plugin_id, callbacks[i].event, callbacks[i].cb, NULL);
		callbacks[i].registered = false;
	}
}

/* Registers every callback; an optional one the broker does not support is
 * left out (and said so once). */
static int register_all(void)
{
	for(size_t i = 0; i < CALLBACK_COUNT; i++){
		int rc = mosquitto_callback_register(plugin_id, callbacks[i].event, callbacks[i].cb, NULL, NULL);
		if(rc == MOSQ_ERR_SUCCESS){
			callbacks[i].registered = true;
		}else if(callbacks[i].optional && rc == MOSQ_ERR_NOT_SUPPORTED){
			mosquitto_log_printf(MOSQ_LOG_INFO, ONB_LOG_PREFIX "this broker has no event %d: "
					"DISCONNECT ends every session", callbacks[i].event);
		}else{
			mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "cannot register callback %d", callbacks[i].event);
			unregister_all();
			return MOSQ_ERR_UNKNOWN;
		}
	}
	return MOSQ_ERR_SUCCESS;
}

static struct events_view_hooks view_hooks = {
	.device_changed = delayed_auth_device_changed,
	.device = admview_link_device,
	.drop = admview_link_drop,
};

ONB_ENTRY_POINT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *opts, int opt_count)
{
	struct onb_err err;
	const char *paths[ONB_ID_COUNT];
	int rc = MOSQ_ERR_INVAL;

	*userdata = NULL;
	/* One broker, one instance: with per_listener_settings true a second
	 * listener's plugin line would initialise the same globals again. */
	if(plugin_id){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "already loaded: load it once, "
				"with per_listener_settings false");
		return MOSQ_ERR_INVAL;
	}
	/* A security plugin that cannot do its job must not load. */
	if(config_load(&config, opts, opt_count) != ONB_OK) return MOSQ_ERR_INVAL;
	for(int c = 0; c < ONB_ID_COUNT; c++) paths[c] = config.ca_path[c];
	if(onb_ca_set_load(&cas, paths, &err) != ONB_OK){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "cannot load CA certificates: %s", err.msg);
		goto fail_config;
	}
	rc = MOSQ_ERR_UNKNOWN;
	onb_audit_set_retention_days(config.audit_retention_days);
	if(registry_link_init(&config) != ONB_OK) goto fail_cas;
	auth_init(&cas, &config);
	metrics_init(&config);
	if(fleet_init(&config) != ONB_OK || writer_start(&config) != ONB_OK) goto fail_link;
	if(refusals_init(&config) != ONB_OK || message_init(&config) != ONB_OK) goto fail_link;
	view_hooks.view_enabled = config.admission_view_stale_ms > 0;
	if(events_start(&config, &view_hooks) != ONB_OK) goto fail_link;
	if(admview_link_start(&config) != ONB_OK || delayed_auth_start(&config, auth_finish) != ONB_OK){
		delayed_auth_stop();
		admview_link_stop();
		events_stop();
		goto fail_link;
	}
	plugin_id = identifier;
	find_session_ender();
	if(register_all() != MOSQ_ERR_SUCCESS){
		plugin_id = NULL;
		delayed_auth_stop();
		admview_link_stop();
		events_stop();
		goto fail_link;
	}
	auth_set_client_offline(has_client_offline());
	events_set_heartbeat(has_client_offline()); /* auth.c on_tick says why */
	/* marks the instance that cleanup tears down */
	*userdata = &config;
	mosquitto_log_printf(MOSQ_LOG_INFO, ONB_LOG_PREFIX "loaded (redis timeout %d ms, broker id %s, "
			"counters every %d s)", config.redis.timeout_ms, config.broker_id, config.metrics_interval_s);
	return MOSQ_ERR_SUCCESS;

fail_link:
	message_free();
	refusals_free();
	writer_stop();
	registry_link_close();
fail_cas:
	onb_ca_set_clear(&cas);
fail_config:
	config_free(&config);
	return rc;
}

ONB_ENTRY_POINT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	if(userdata != &config) return MOSQ_ERR_SUCCESS; /* an instance whose init failed */
	unregister_all();
	refusals_free(); /* the counts of open windows, which the writer writes before it stops */
	delayed_auth_stop();
	admview_link_stop();
	events_stop();
	writer_stop();
	message_free();
	registry_link_close();
	sessions_clear();
	sessions_set_ender(NULL);
	policies_clear();
	onb_ca_set_clear(&cas);
	config_free(&config);
	plugin_id = NULL;
	return MOSQ_ERR_SUCCESS;
}
