/* claimsvc's counters (docs/operations.md, "Metrics"): published retained on
 * $SYS/onboard/claimsvc/<client id> by main.c and stored in Redis for
 * `onboardctl stats`. Plain integers: one instance is one thread. */
#include "claimsvc.h"

#include <string.h>

#include <cjson/cJSON.h>

void csvc_metrics_reject(struct csvc *s, const char *code)
{
	struct csvc_metrics *m = &s->metrics;

	if(!code) code = "InternalError";
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
