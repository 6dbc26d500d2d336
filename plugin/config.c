/* plugin_opt_* lines: every key is known, checked and range-limited. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onboard.h"
#include "policy/policystore.h"

static const char *const ca_keys[ONB_ID_COUNT] = {
	[ONB_ID_DEVICE] = "device_ca",
	[ONB_ID_CLAIM] = "claim_ca",
	[ONB_ID_BIRTH] = "birth_ca",
	[ONB_ID_SERVICE] = "service_ca",
};

#define POLICY_OPT(field) { "policy_" #field, offsetof(struct onb_policy_names, field) }
static const struct {
	const char *key;
	size_t off; /* of the name it replaces in onb_policy_names */
} policy_opts[] = {
	POLICY_OPT(device), POLICY_OPT(device_tenant), POLICY_OPT(quarantine), POLICY_OPT(claim),
	POLICY_OPT(service), POLICY_OPT(tenant_app),
};
#undef POLICY_OPT
_Static_assert(sizeof(policy_opts) / sizeof(policy_opts[0]) == ONBOARD_POLICY_OPTS,
		"a policy_* option for every default policy");

/* The whole-number options, with their ranges. */
#define INT_OPT(key, min, max, field) { key, min, max, offsetof(struct onboard_config, field) }
static const struct {
	const char *key;
	long min, max;
	size_t off; /* of an int in struct onboard_config */
} int_opts[] = {
	INT_OPT("redis_timeout_ms", 1, 10000, redis.timeout_ms),
	INT_OPT("redis_retry_ms", 10, 60000, redis_retry_ms),
	INT_OPT("metrics_interval_s", 0, 3600, metrics_interval_s),
	/* 0: no view, every CONNECT reads Redis (docs/operations.md) */
	INT_OPT("admission_view_stale_ms", 0, 600000, admission_view_stale_ms),
	INT_OPT("audit_retention_days", 1, 3650, audit_retention_days),
	INT_OPT("audit_queue_max", 1, 1000000, audit_queue_max),
	INT_OPT("audit_window_s", 1, 3600, audit_window_s),
	INT_OPT("request_inflight", 0, 1000, request_inflight),
};
#undef INT_OPT

/* The host name with every character a device id may not hold replaced by
 * '-'; "broker" when there is none. */
static void default_broker_id(char *buf, size_t len)
{
	char host[ONB_ID_MAX + 1];

	if(gethostname(host, sizeof(host)) != 0 || !host[0]){
		snprintf(buf, len, "broker");
		return;
	}
	host[sizeof(host) - 1] = '\0';
	for(char *p = host; *p; p++){
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
			|| *p == '.' || *p == '_' || *p == ':' || *p == '-';
		if(!ok) *p = '-';
	}
	snprintf(buf, len, "%s", host);
}

static int bad(const char *key, const char *why)
{
	mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "plugin_opt_%s: %s", key, why);
	return ONB_EINVAL;
}

static int parse_long(const char *key, const char *value, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if(errno || end == value || *end || v < min || v > max){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX
				"plugin_opt_%s: '%s' is not a whole number from %ld to %ld", key, value, min, max);
		return ONB_EINVAL;
	}
	*out = v;
	return ONB_OK;
}

static int set_ca(struct onboard_config *cfg, int c, const char *value)
{
	char *copy = mosquitto_strdup(value);
	if(!copy) return ONB_EINTERNAL;
	mosquitto_free(cfg->ca_path[c]);
	cfg->ca_path[c] = copy;
	return ONB_OK;
}

static int apply(struct onboard_config *cfg, const char *key, const char *value)
{
	struct onb_err err;
	long v;

	for(int c = ONB_ID_DEVICE; c < ONB_ID_COUNT; c++){
		if(!strcmp(key, ca_keys[c])) return set_ca(cfg, c, value);
	}
	for(size_t i = 0; i < ONBOARD_POLICY_OPTS; i++){
		if(strcmp(key, policy_opts[i].key) != 0) continue;
		if(!onb_policy_name_valid(value)) return bad(key, "not a policy name ([A-Za-z0-9._-]{1,64})");
		mosquitto_free(cfg->names[i]);
		cfg->names[i] = mosquitto_strdup(value);
		return cfg->names[i] ? ONB_OK : ONB_EINTERNAL;
	}
	if(!strcmp(key, "redis_url")){
		int timeout = cfg->redis.timeout_ms;
		if(onb_redis_parse_url(value, &cfg->redis, &err) != ONB_OK) return bad(key, err.msg);
		cfg->redis.timeout_ms = timeout;
		return ONB_OK;
	}
	for(size_t i = 0; i < sizeof(int_opts) / sizeof(int_opts[0]); i++){
		if(strcmp(key, int_opts[i].key) != 0) continue;
		if(parse_long(key, value, int_opts[i].min, int_opts[i].max, &v) != ONB_OK) return ONB_EINVAL;
		*(int *)((char *)cfg + int_opts[i].off) = (int)v;
		return ONB_OK;
	}
	if(!strcmp(key, "broker_id")){
		if(!onb_id_valid(value)) return bad(key, "not a valid id ([A-Za-z0-9._:-]{1,128})");
		snprintf(cfg->broker_id, sizeof(cfg->broker_id), "%s", value);
		return ONB_OK;
	}
	if(!strcmp(key, "audit_maxlen")){
		/* an older configuration: accepted, so that the broker still starts */
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "ignoring plugin_opt_audit_maxlen: the audit "
				"stream is kept by time now (plugin_opt_audit_retention_days, default %d)",
				ONB_AUDIT_RETENTION_DAYS);
		return ONB_OK;
	}
	if(!strcmp(key, "request_rate") || !strcmp(key, "request_cert_rate")){
		if(parse_long(key, value, 0, 100000, &v) != ONB_OK) return ONB_EINVAL;
		(strstr(key, "_cert_") ? &cfg->request_cert_rate : &cfg->request_rate)->per_s = (double)v;
		return ONB_OK;
	}
	if(!strcmp(key, "request_burst") || !strcmp(key, "request_cert_burst")){
		if(parse_long(key, value, 1, 1000000, &v) != ONB_OK) return ONB_EINVAL;
		(strstr(key, "_cert_") ? &cfg->request_cert_rate : &cfg->request_rate)->burst = (double)v;
		return ONB_OK;
	}
	mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "ignoring unknown option plugin_opt_%s", key);
	return ONB_OK;
}

int config_load(struct onboard_config *cfg, struct mosquitto_opt *opts, int count)
{
	struct onb_err err;

	memset(cfg, 0, sizeof(*cfg));
	if(onb_redis_parse_url(ONB_REDIS_DEFAULT_URL, &cfg->redis, &err) != ONB_OK) return ONB_EINTERNAL;
	cfg->redis.timeout_ms = 50;
	cfg->redis_retry_ms = 250;
	cfg->audit_retention_days = ONB_AUDIT_RETENTION_DAYS;
	cfg->metrics_interval_s = 10;
	cfg->admission_view_stale_ms = 1000;
	cfg->audit_window_s = 60;
	cfg->audit_queue_max = 16384; /* writer.c says why */
	/* A device needs two requests to provision and one to renew: a burst of
	 * 10, then one a second, leaves room for retries. A claim certificate is
	 * shared by a whole production line: 200 a second is about what one
	 * broker can provision (two mTLS connects per device). */
	cfg->request_rate = (struct onb_rate){ .per_s = 1, .burst = 10 };
	cfg->request_inflight = 4;
	cfg->request_cert_rate = (struct onb_rate){ .per_s = 200, .burst = 400 };
	default_broker_id(cfg->broker_id, sizeof(cfg->broker_id));

	for(int i = 0; i < count; i++){
		if(apply(cfg, opts[i].key, opts[i].value) != ONB_OK){
			config_free(cfg);
			return ONB_EINVAL;
		}
	}
	cfg->policies = onb_policy_names_default;
	for(size_t i = 0; i < ONBOARD_POLICY_OPTS; i++){
		if(cfg->names[i]) *(const char **)((char *)&cfg->policies + policy_opts[i].off) = cfg->names[i];
	}
	if(!cfg->ca_path[ONB_ID_DEVICE]){
		config_free(cfg);
		return bad("device_ca", "required option missing (the CA that issues operational device certificates)");
	}
	return ONB_OK;
}

void config_free(struct onboard_config *cfg)
{
	for(int c = 0; c < ONB_ID_COUNT; c++){
		mosquitto_free(cfg->ca_path[c]);
		cfg->ca_path[c] = NULL;
	}
	for(size_t i = 0; i < ONBOARD_POLICY_OPTS; i++){
		mosquitto_free(cfg->names[i]);
		cfg->names[i] = NULL;
	}
}
