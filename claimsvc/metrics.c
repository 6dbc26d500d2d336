/* claimsvc's counters (docs/operations.md, "Metrics"): published retained on
 * $SYS/onboard/claimsvc/<client id> by main.c, stored in Redis for
 * `onboardctl stats`, and served on /metrics (http.c). Plain integers: one
 * instance is one thread, and the HTTP server runs on that thread too. */
#include "claimsvc.h"
#include "prom.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "provisioning/provision.h"

/* The metrics' labels are the audit stream's actions (core/vocab.h). */
static const enum onb_audit_action actions[] = { /* in enum csvc_action's order */
	ONB_AA_CREATE_FROM_CSR, ONB_AA_CREATE_KEYS, ONB_AA_REGISTER_THING, ONB_AA_RENEW, ONB_AA_CLAIM, ONB_AA_UNKNOWN,
};
_Static_assert(sizeof(actions) / sizeof(actions[0]) == CSVC_ACT_COUNT, "an audit action per csvc_action");
static const char *const result_names[CSVC_RES_COUNT] = { "accepted", "rejected", "dropped" };

const char *csvc_action_name(enum csvc_action a)
{
	return onb_audit_action_name(actions[(unsigned)a < CSVC_ACT_COUNT ? a : CSVC_ACT_UNKNOWN]);
}

void csvc_metrics_count(struct csvc *s, enum csvc_action a, enum csvc_result r)
{
	if((unsigned)a >= CSVC_ACT_COUNT) a = CSVC_ACT_UNKNOWN;
	s->handled++;
	if(r == CSVC_RES_ACCEPTED) s->accepted++;
	else if(r == CSVC_RES_REJECTED) s->rejected++;
	else s->dropped++;
	s->metrics.requests[a][r]++;
}

void csvc_metrics_reject(struct csvc *s, const char *code)
{
	struct csvc_metrics *m = &s->metrics;

	if(!code) code = ONB_PE_INTERNAL;
	for(int i = 0; i < m->ncodes; i++){
		if(m->rejected_by[i].code == code || !strcmp(m->rejected_by[i].code, code)){
			m->rejected_by[i].n++;
			return;
		}
	}
	if(m->ncodes >= CSVC_CODES_MAX){
		m->rejected_other++;
		return;
	}
	m->rejected_by[m->ncodes].code = code;
	m->rejected_by[m->ncodes].n = 1;
	m->ncodes++;
}

char *csvc_metrics_json(const struct csvc *s)
{
	const struct csvc_metrics *m = &s->metrics;
	int64_t now = onb_now_ms();
	cJSON *root = cJSON_CreateObject(), *by = NULL;
	char *out = NULL;
	bool ok;

	ok = root && cJSON_AddStringToObject(root, "service", "claimsvc")
		&& cJSON_AddStringToObject(root, "clientId", s->cfg.client_id)
		&& cJSON_AddNumberToObject(root, "ts", (double)now)
		&& cJSON_AddNumberToObject(root, "uptime_s", (double)((now - m->started_ms) / 1000))
		&& cJSON_AddNumberToObject(root, "handled", (double)s->handled)
		&& cJSON_AddNumberToObject(root, "accepted", (double)s->accepted)
		&& cJSON_AddNumberToObject(root, "rejected", (double)s->rejected)
		&& cJSON_AddNumberToObject(root, "dropped", (double)s->dropped)
		&& cJSON_AddNumberToObject(root, "renewed", (double)m->renewed)
		&& cJSON_AddNumberToObject(root, "register_replays", (double)m->register_replays)
		&& cJSON_AddNumberToObject(root, "redis_errors", (double)m->redis_errors)
		&& cJSON_AddBoolToObject(root, "ca_key_pkcs11", s->ca_key_pkcs11)
		&& (by = cJSON_AddObjectToObject(root, "rejected_by"));
	for(int i = 0; ok && i < m->ncodes; i++){
		ok = cJSON_AddNumberToObject(by, m->rejected_by[i].code, (double)m->rejected_by[i].n) != NULL;
	}
	if(ok && m->rejected_other) ok = cJSON_AddNumberToObject(by, "other", (double)m->rejected_other) != NULL;
	if(ok) out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

void csvc_metrics_prom(struct csvc *s, const struct csvc_link *links, size_t nlinks, struct csvc_text *t)
{
	const struct csvc_metrics *m = &s->metrics;
	const char *why = NULL;

	csvc_prom_family(t, "onboard_claimsvc_info", CSVC_PROM_GAUGE,
			"Always 1: this claimsvc instance, its MQTT client id and where its device CA key lives.");
	csvc_prom_sample(t, "onboard_claimsvc_info", "client_id", s->cfg.client_id, "ca_key",
			s->ca_key_pkcs11 ? "pkcs11" : "file", 1);
	csvc_prom_family(t, "onboard_claimsvc_start_time_seconds", CSVC_PROM_GAUGE,
			"When this instance started, Unix time in seconds.");
	csvc_prom_sample(t, "onboard_claimsvc_start_time_seconds", NULL, NULL, NULL, NULL,
			(double)m->started_ms / 1000.0);
	/* every (action, result) pair from the start, so that rate() sees the first one */
	csvc_prom_family(t, "onboard_claimsvc_requests_total", CSVC_PROM_COUNTER,
			"Requests handled, by action and result (dropped: an envelope that could not be answered).");
	for(int a = 0; a < CSVC_ACT_COUNT; a++){
		for(int r = 0; r < CSVC_RES_COUNT; r++){
			csvc_prom_sample(t, "onboard_claimsvc_requests_total", "action", csvc_action_name((enum csvc_action)a), "result",
					result_names[r], (double)m->requests[a][r]);
		}
	}
	csvc_prom_family(t, "onboard_claimsvc_rejected_total", CSVC_PROM_COUNTER,
			"Rejected requests by errorCode (docs/provisioning.md, docs/claiming.md); other: codes beyond the table.");
	for(int i = 0; i < m->ncodes; i++){
		csvc_prom_sample(t, "onboard_claimsvc_rejected_total", "error_code", m->rejected_by[i].code, NULL, NULL,
				(double)m->rejected_by[i].n);
	}
	csvc_prom_sample(t, "onboard_claimsvc_rejected_total", "error_code", "other", NULL, NULL,
			(double)m->rejected_other);
	csvc_prom_family(t, "onboard_claimsvc_renewals_total", CSVC_PROM_COUNTER, "Certificate renewals accepted.");
	csvc_prom_sample(t, "onboard_claimsvc_renewals_total", NULL, NULL, NULL, NULL, (double)m->renewed);
	csvc_prom_family(t, "onboard_claimsvc_register_replays_total", CSVC_PROM_COUNTER,
			"RegisterThing requests resent after their answer was lost, answered again (among accepted).");
	csvc_prom_sample(t, "onboard_claimsvc_register_replays_total", NULL, NULL, NULL, NULL,
			(double)m->register_replays);
	csvc_prom_family(t, "onboard_claimsvc_redis_errors_total", CSVC_PROM_COUNTER,
			"Failed Redis connects and dropped Redis connections.");
	csvc_prom_sample(t, "onboard_claimsvc_redis_errors_total", NULL, NULL, NULL, NULL, (double)m->redis_errors);
	csvc_prom_family(t, "onboard_claimsvc_redis_up", CSVC_PROM_GAUGE,
			"1 when Redis answered PING (checked at most once per second), 0 otherwise.");
	csvc_prom_sample(t, "onboard_claimsvc_redis_up", NULL, NULL, NULL, NULL, csvc_redis_healthy(s, &why) ? 1 : 0);
	csvc_prom_family(t, "onboard_claimsvc_broker_up", CSVC_PROM_GAUGE,
			"1 when the connection to this broker is up and serving the request subscriptions, 0 otherwise.");
	for(size_t i = 0; i < nlinks; i++){
		csvc_prom_sample(t, "onboard_claimsvc_broker_up", "address", links[i].address, NULL, NULL,
				links[i].connected && links[i].serving ? 1 : 0);
	}
}
