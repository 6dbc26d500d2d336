/* mosquitto_onboard: registration and teardown only. */
#include <string.h>

#include "onboard.h"

static mosquitto_plugin_id_t *plugin_id;
static struct onboard_config config;
static struct onb_ca_set cas;

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
} callbacks[] = {
	{ MOSQ_EVT_BASIC_AUTH, on_basic_auth },
	{ MOSQ_EVT_ACL_CHECK, on_acl_check },
	{ MOSQ_EVT_MESSAGE, on_message },
	{ MOSQ_EVT_DISCONNECT, on_disconnect },
	{ MOSQ_EVT_TICK, on_tick },
};
#define CALLBACK_COUNT (sizeof(callbacks) / sizeof(callbacks[0]))

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

static void unregister_all(void)
{
	for(size_t i = 0; i < CALLBACK_COUNT; i++){
		mosquitto_callback_unregister(plugin_id, callbacks[i].event, callbacks[i].cb, NULL);
	}
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *opts, int opt_count)
{
	struct onb_err err;
	const char *paths[ONB_ID_COUNT];

	plugin_id = identifier;
	*userdata = NULL;
	/* A security plugin that cannot do its job must not load. */
	if(config_load(&config, opts, opt_count) != ONB_OK) return MOSQ_ERR_INVAL;
	for(int c = 0; c < ONB_ID_COUNT; c++) paths[c] = config.ca_path[c];
	if(onb_ca_set_load(&cas, paths, &err) != ONB_OK){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "cannot load CA certificates: %s", err.msg);
		config_free(&config);
		return MOSQ_ERR_INVAL;
	}
	if(registry_link_init(&config) != ONB_OK){
		onb_ca_set_clear(&cas);
		config_free(&config);
		return MOSQ_ERR_UNKNOWN;
	}
	auth_init(&cas, &config);
	metrics_init(&config);
	if(events_start(&config) != ONB_OK){
		registry_link_close();
		onb_ca_set_clear(&cas);
		config_free(&config);
		return MOSQ_ERR_UNKNOWN;
	}
	for(size_t i = 0; i < CALLBACK_COUNT; i++){
		if(mosquitto_callback_register(plugin_id, callbacks[i].event, callbacks[i].cb, NULL, NULL)){
			mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "cannot register callback %d", callbacks[i].event);
			unregister_all();
			events_stop();
			registry_link_close();
			onb_ca_set_clear(&cas);
			config_free(&config);
			return MOSQ_ERR_UNKNOWN;
		}
	}
	mosquitto_log_printf(MOSQ_LOG_INFO, ONB_LOG_PREFIX "loaded (redis timeout %d ms, broker id %s, "
			"counters every %d s)", config.redis.timeout_ms, config.broker_id, config.metrics_interval_s);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	unregister_all();
	events_stop();
	registry_link_close();
	sessions_clear();
	policies_clear();
	onb_ca_set_clear(&cas);
	config_free(&config);
	return MOSQ_ERR_SUCCESS;
}
