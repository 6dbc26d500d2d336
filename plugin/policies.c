/* Parsed policy documents by name, shared by every session that holds one,
 * and the binding of a document to a session. A session keeps only its
 * compiled form, which does not refer to the document, so a cached document
 * can be replaced at any time. A handful of documents exist, hence a list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onboard.h"
#include "policy/policystore.h"

struct cached_policy {
	char name[ONB_NAME_MAX + 1];
	struct onb_policy *doc;
	struct cached_policy *next;
};

static struct cached_policy *cache;

static struct cached_policy **find(const char *name)
{
	struct cached_policy **p = &cache;
	while(*p && strcmp((*p)->name, name) != 0) p = &(*p)->next;
	return p;
}

void policies_put(const char *name, struct onb_policy *doc)
{
	struct cached_policy **p = find(name), *e = *p;

	if(e){
		onb_policy_free(e->doc);
		if(doc){
			e->doc = doc;
			return;
		}
		*p = e->next;
		mosquitto_free(e);
		return;
	}
	if(!doc) return;
	e = mosquitto_calloc(1, sizeof(*e));
	if(!e){
		onb_policy_free(doc);
		return;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->doc = doc;
	e->next = cache;
	cache = e;
}

const struct onb_policy *policies_get(redisContext *rc, const char *name, struct onb_err *err)
{
	struct cached_policy *e = *find(name);
	struct onb_policy *doc = NULL;
	char *json = NULL;
	size_t len = 0;

	if(e) return e->doc;
	if(!rc){
		onb_fail(err, ONB_EUNAVAIL, "policy %s not cached and registry unreachable", name);
		return NULL;
	}
	if(onb_policystore_get(rc, name, &json, &len, err) != ONB_OK) return NULL;
	if(onb_policy_parse(json, len, &doc, err) != ONB_OK){
		free(json);
		return NULL;
	}
	free(json);
	policies_put(name, doc);
	return doc;
}

void policies_clear(void)
{
	while(cache){
		struct cached_policy *next = cache->next;
		onb_policy_free(cache->doc);
		mosquitto_free(cache);
		cache = next;
	}
}

int session_bind(struct session *s, const char *policy_name, const struct onb_policy *doc)
{
	const char *state = s->idclass == ONB_ID_DEVICE ? onb_state_name(s->state) : NULL;
	struct onb_policy_vars vars = {
		.device_id = s->idclass == ONB_ID_DEVICE ? s->id : NULL,
		.client_id = s->id,
		.tenant_id = s->tenant,
		.cert_fp = s->fp,
		.state = state,
	};
	struct onb_compiled *compiled = NULL;
	struct onb_err err;
	int ret = ONB_ENOTFOUND;

	snprintf(s->policy_name, sizeof(s->policy_name), "%s", policy_name ? policy_name : "");
	if(doc){
		ret = onb_policy_compile(doc, &vars, &compiled, &err);
		if(ret != ONB_OK){
			mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "%s: cannot compile policy %s: %s",
					s->id, s->policy_name, err.msg);
		}
	}
	onb_compiled_free(s->policy);
	s->policy = compiled;
	return ret;
}
