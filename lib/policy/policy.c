/* Policy documents: parsing and validation (a pure function of a buffer, so
 * that tests/fuzz/fuzz_policy.c can drive it). Compilation and evaluation are
 * in policy_eval.c. Every error names the statement index and the field. */
#include "policy/policy.h"
#include "policy/topic.h"
#include "policy/policy_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION_MAX 64
#define SID_MAX 128
#define ACTIONS_MAX 16

static const char *const var_names[VAR_COUNT] = {
	"deviceId", "clientId", "tenantId", "certFingerprint", "state",
};

static const char *const action_names[ONB_ACT_COUNT] = {
	"connect", "publish", "subscribe", "receive",
};

const char *onb_policy_var_name(int i)
{
	return i >= 0 && i < VAR_COUNT ? var_names[i] : "?";
}

int onb_policy_var_at(const char *s, size_t *adv)
{
	const char *close = strchr(s + 2, '}');

	if(!close) return -2;
	for(int i = 0; i < VAR_COUNT; i++){
		size_t n = strlen(var_names[i]);
		if((size_t)(close - (s + 2)) == n && memcmp(s + 2, var_names[i], n) == 0){
			*adv = n + 3;
			return i;
		}
	}
	return -1;
}

bool onb_policy_applies(int type, int effect, enum onb_action a)
{
	switch(type){
	case RES_TOPIC:
		return a == ONB_ACT_PUBLISH || a == ONB_ACT_RECEIVE
			|| (a == ONB_ACT_SUBSCRIBE && effect == ONB_EFFECT_DENY);
	case RES_FILTER: return a == ONB_ACT_SUBSCRIBE;
	case RES_CLIENT: return a == ONB_ACT_CONNECT;
	default: return false;
	}
}

const char *onb_action_name(enum onb_action a)
{
	return (unsigned)a < ONB_ACT_COUNT ? action_names[a] : "invalid";
}

int onb_action_parse(const char *name)
{
	for(int a = 0; name && a < ONB_ACT_COUNT; a++){
		if(strcmp(name, action_names[a]) == 0) return a;
	}
	return ONB_EINVAL;
}

int onb_policy_var_set(struct onb_policy_vars *v, const char *name, const char *value)
{
	const char **slot[VAR_COUNT];

	if(!v || !name) return ONB_EINVAL;
	slot[VAR_DEVICE] = &v->device_id;
	slot[VAR_CLIENT] = &v->client_id;
	slot[VAR_TENANT] = &v->tenant_id;
	slot[VAR_CERTFP] = &v->cert_fp;
	slot[VAR_STATE] = &v->state;
	for(int i = 0; i < VAR_COUNT; i++){
		if(strcmp(name, var_names[i]) == 0){
			*slot[i] = value;
			return ONB_OK;
		}
	}
	return ONB_EINVAL;
}

size_t onb_policy_statements(const struct onb_policy *p)
{
	return p ? p->nstmt : 0;
}

const char *onb_policy_sid(const struct onb_policy *p, size_t i)
{
	return p && i < p->nstmt ? p->st[i].sid : NULL;
}

const char *onb_policy_version(const struct onb_policy *p)
{
	return p ? p->version : NULL;
}

void onb_policy_free(struct onb_policy *p)
{
	if(!p) return;
	for(size_t i = 0; i < p->nstmt; i++){
		for(size_t r = 0; r < p->st[i].nres; r++) free(p->st[i].res[r].text);
		free(p->st[i].res);
		free(p->st[i].sid);
	}
	free(p->st);
	free(p->version);
	free(p);
}

/* ---- validation helpers ------------------------------------------------ */

/* Copies up to 64 bytes of s for an error line, '?' for anything unprintable. */
static const char *shown(const char *s, char buf[72])
{
	size_t i = 0;

	for(; s && s[i] && i < 64; i++){
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	if(s && s[i]){
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if(d) memcpy(d, s, n);
	return d;
}

/* Checks a topic or topicfilter pattern: variables known and closed, '*'
 * only as a whole level; then the MQTT filter rules with every variable
 * standing for one literal character. NULL when fine, else the reason. */
static const char *check_topic_pattern(const char *pat, int type, uint8_t *vars, char *tmp,
	struct onb_err *why)
{
	size_t o = 0, lvstart = 0;

	for(size_t i = 0; pat[i];){
		if(pat[i] == '/'){
			tmp[o++] = '/';
			lvstart = ++i;
		}else if(pat[i] == '*'){
			if(i != lvstart || (pat[i + 1] && pat[i + 1] != '/')) return "'*' must be a whole level";
			tmp[o++] = '+';
			i++;
		}else if(pat[i] == '$' && pat[i + 1] == '{'){
			size_t adv = 0;
			int v = onb_policy_var_at(pat + i, &adv);
			if(v == -2) return "unterminated ${";
			if(v < 0) return "unknown variable (use ${deviceId} ${clientId} ${tenantId} ${certFingerprint} ${state})";
			*vars |= (uint8_t)(1u << v);
			tmp[o++] = 'v';
			i += adv;
		}else{
			tmp[o++] = pat[i++];
		}
	}
	if(onb_topic_check(tmp, o, ONB_TOPIC_FILTER, why) != ONB_OK) return why->msg;
	if(type == RES_FILTER && strncmp(pat, "$share/", 7) == 0){
		return "a topicfilter: cannot name a $share/ group (subscribe checks strip it)";
	}
	return NULL;
}

static const char *check_client_pattern(const char *pat, uint8_t *vars)
{
	if(!*pat) return "empty client id pattern";
	if(strlen(pat) > ONB_POLICY_MAX_CLIENT) return "client id pattern longer than 1024 bytes";
	for(size_t i = 0; pat[i]; i++){
		if(pat[i] == '$' && pat[i + 1] == '{'){
			size_t adv = 0;
			int v = onb_policy_var_at(pat + i, &adv);
			if(v == -2) return "unterminated ${";
			if(v < 0) return "unknown variable (use ${deviceId} ${clientId} ${tenantId} ${certFingerprint} ${state})";
			*vars |= (uint8_t)(1u << v);
			i += adv - 1;
		}
	}
	return NULL;
}

static int parse_resource(const cJSON *j, size_t si, size_t ri, struct pres *r, struct onb_err *err)
{
	static const struct { const char *prefix; int type; } types[] = {
		{"topic:", RES_TOPIC}, {"topicfilter:", RES_FILTER}, {"client:", RES_CLIENT},
	};
	char show[72];
	const char *why = NULL, *s;
	struct onb_err e2;
	char *tmp;
	size_t k;

	if(!cJSON_IsString(j)) return onb_fail(err, ONB_EINVAL, "statement[%zu].resource[%zu]: not a string", si, ri);
	s = j->valuestring;
	for(k = 0; k < sizeof(types) / sizeof(types[0]); k++){
		if(strncmp(s, types[k].prefix, strlen(types[k].prefix)) == 0) break;
	}
	if(k == sizeof(types) / sizeof(types[0])){
		return onb_fail(err, ONB_EINVAL, "statement[%zu].resource[%zu]: \"%s\" does not start with "
			"topic:, topicfilter: or client:", si, ri, shown(s, show));
	}
	r->text = dup_str(s);
	if(!r->text) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	r->pat = r->text + strlen(types[k].prefix);
	r->type = (uint8_t)types[k].type;
	if(r->type == RES_CLIENT){
		why = check_client_pattern(r->pat, &r->vars);
	}else{
		if(!(tmp = malloc(strlen(r->pat) + 1))) return onb_fail(err, ONB_EINTERNAL, "out of memory");
		why = check_topic_pattern(r->pat, r->type, &r->vars, tmp, &e2); /* static or e2.msg */
		free(tmp);
	}
	if(why){
		return onb_fail(err, ONB_EINVAL, "statement[%zu].resource[%zu]: %s in \"%s\"", si, ri, why,
			shown(r->pat, show));
	}
	return ONB_OK;
}

/* What a statement of this effect needs for action a, for error hints. */
static const char *needed(int effect, int a)
{
	switch(a){
	case ONB_ACT_CONNECT: return "client:";
	case ONB_ACT_SUBSCRIBE: return effect == ONB_EFFECT_ALLOW ? "topicfilter:" : "topicfilter: or topic:";
	default: return "topic:";
	}
}

static int parse_actions(const cJSON *j, size_t si, struct pstmt *st, int first_at[ONB_ACT_COUNT],
	struct onb_err *err)
{
	const cJSON *a;
	size_t ai = 0;
	char show[72];

	if(!cJSON_IsArray(j)) return onb_fail(err, ONB_EINVAL, "statement[%zu].action: not an array", si);
	cJSON_ArrayForEach(a, j){
		int act = -1;
		if(!cJSON_IsString(a)){
			return onb_fail(err, ONB_EINVAL, "statement[%zu].action[%zu]: not a string", si, ai);
		}
		if(ai >= ACTIONS_MAX){
			return onb_fail(err, ONB_EINVAL, "statement[%zu].action: more than %d entries", si, ACTIONS_MAX);
		}
		if(strcmp(a->valuestring, "*") == 0){
			st->actions = (1u << ONB_ACT_COUNT) - 1;
		}else if((act = onb_action_parse(a->valuestring)) >= 0){
			st->actions |= (uint8_t)(1u << act);
			if(first_at[act] < 0) first_at[act] = (int)ai;
		}else{
			return onb_fail(err, ONB_EINVAL, "statement[%zu].action[%zu]: unknown action \"%s\" "
				"(use connect, publish, subscribe, receive or *)", si, ai, shown(a->valuestring, show));
		}
		ai++;
	}
	if(ai == 0) return onb_fail(err, ONB_EINVAL, "statement[%zu].action: empty", si);
	return ONB_OK;
}

static int parse_resources(const cJSON *j, size_t si, struct pstmt *st, struct onb_err *err)
{
	const cJSON *r;
	size_t n, ri = 0;
	int rc;

	if(!cJSON_IsArray(j)) return onb_fail(err, ONB_EINVAL, "statement[%zu].resource: not an array", si);
	n = (size_t)cJSON_GetArraySize(j);
	if(n == 0) return onb_fail(err, ONB_EINVAL, "statement[%zu].resource: empty", si);
	if(n > ONB_POLICY_MAX_RESOURCES){
		return onb_fail(err, ONB_EINVAL, "statement[%zu].resource: %zu entries, over the limit of %d",
			si, n, ONB_POLICY_MAX_RESOURCES);
	}
	st->res = calloc(n, sizeof(*st->res));
	if(!st->res) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	cJSON_ArrayForEach(r, j){
		rc = parse_resource(r, si, ri, &st->res[ri], err);
		st->nres = (uint16_t)(ri + 1); /* so that free sees what was filled */
		if(rc != ONB_OK) return rc;
		st->vars |= st->res[ri].vars;
		ri++;
	}
	return ONB_OK;
}

/* Every resource must serve one of the statement's actions, and every action
 * listed by name must be served by one of its resources. */
static int check_fit(size_t si, const struct pstmt *st, const int first_at[ONB_ACT_COUNT],
	struct onb_err *err)
{
	static const char *const serves[] = {
		[RES_TOPIC] = "topic: serves publish and receive (and subscribe in a deny)",
		[RES_FILTER] = "topicfilter: serves subscribe",
		[RES_CLIENT] = "client: serves connect",
	};

	for(size_t ri = 0; ri < st->nres; ri++){
		bool any = false;
		for(int a = 0; a < ONB_ACT_COUNT; a++){
			if((st->actions & (1u << a)) && onb_policy_applies(st->res[ri].type, st->effect, (enum onb_action)a)) any = true;
		}
		if(!any){
			return onb_fail(err, ONB_EINVAL, "statement[%zu].resource[%zu]: serves none of the "
				"statement's actions (%s)", si, ri, serves[st->res[ri].type]);
		}
	}
	for(int a = 0; a < ONB_ACT_COUNT; a++){
		bool any = false;
		if(first_at[a] < 0) continue;
		for(size_t ri = 0; ri < st->nres; ri++){
			if(onb_policy_applies(st->res[ri].type, st->effect, (enum onb_action)a)) any = true;
		}
		if(!any){
			return onb_fail(err, ONB_EINVAL, "statement[%zu].action[%d]: no resource serves %s "
				"(it needs %s)", si, first_at[a], action_names[a], needed(st->effect, a));
		}
	}
	return ONB_OK;
}

static int parse_statement(const cJSON *js, size_t si, struct pstmt *st, struct onb_err *err)
{
	const cJSON *k, *effect = NULL, *action = NULL, *resource = NULL, *sid = NULL;
	int first_at[ONB_ACT_COUNT] = {-1, -1, -1, -1};
	char show[72];
	int rc;

	if(!cJSON_IsObject(js)) return onb_fail(err, ONB_EINVAL, "statement[%zu]: not an object", si);
	cJSON_ArrayForEach(k, js){
		const cJSON **slot = NULL;
		if(strcmp(k->string, "effect") == 0) slot = &effect;
		else if(strcmp(k->string, "action") == 0) slot = &action;
		else if(strcmp(k->string, "resource") == 0) slot = &resource;
		else if(strcmp(k->string, "sid") == 0) slot = &sid;
		else{
			return onb_fail(err, ONB_EINVAL, "statement[%zu]: unknown key \"%s\" "
				"(use sid, effect, action, resource)", si, shown(k->string, show));
		}
		if(*slot) return onb_fail(err, ONB_EINVAL, "statement[%zu].%s: given twice", si, k->string);
		*slot = k;
	}
	if(sid){
		if(!cJSON_IsString(sid) || strlen(sid->valuestring) > SID_MAX){
			return onb_fail(err, ONB_EINVAL, "statement[%zu].sid: not a string of at most %d bytes", si, SID_MAX);
		}
		if(!(st->sid = dup_str(sid->valuestring))) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	if(!effect) return onb_fail(err, ONB_EINVAL, "statement[%zu].effect: missing", si);
	if(cJSON_IsString(effect) && strcmp(effect->valuestring, "allow") == 0) st->effect = ONB_EFFECT_ALLOW;
	else if(cJSON_IsString(effect) && strcmp(effect->valuestring, "deny") == 0) st->effect = ONB_EFFECT_DENY;
	else if(cJSON_IsString(effect)){
		return onb_fail(err, ONB_EINVAL, "statement[%zu].effect: must be \"allow\" or \"deny\", not \"%s\"",
			si, shown(effect->valuestring, show));
	}else{
		return onb_fail(err, ONB_EINVAL, "statement[%zu].effect: must be the string \"allow\" or \"deny\"", si);
	}
	if(!action) return onb_fail(err, ONB_EINVAL, "statement[%zu].action: missing", si);
	if(!resource) return onb_fail(err, ONB_EINVAL, "statement[%zu].resource: missing", si);
	if((rc = parse_actions(action, si, st, first_at, err)) != ONB_OK) return rc;
	if((rc = parse_resources(resource, si, st, err)) != ONB_OK) return rc;
	return check_fit(si, st, first_at, err);
}

/* ---- the document ------------------------------------------------------ */

static int parse_root(const cJSON *root, struct onb_policy *p, struct onb_err *err)
{
	const cJSON *k, *version = NULL, *statement = NULL, *s;
	char show[72];
	size_t n, si = 0;
	int rc;

	if(!cJSON_IsObject(root)) return onb_fail(err, ONB_EINVAL, "policy: not a JSON object");
	cJSON_ArrayForEach(k, root){
		const cJSON **slot = NULL;
		if(strcmp(k->string, "version") == 0) slot = &version;
		else if(strcmp(k->string, "statement") == 0) slot = &statement;
		else{
			return onb_fail(err, ONB_EINVAL, "policy: unknown key \"%s\" (use version, statement)",
				shown(k->string, show));
		}
		if(*slot) return onb_fail(err, ONB_EINVAL, "policy.%s: given twice", k->string);
		*slot = k;
	}
	if(!version) return onb_fail(err, ONB_EINVAL, "policy.version: missing");
	if(!cJSON_IsString(version) || !version->valuestring[0] || strlen(version->valuestring) > VERSION_MAX){
		return onb_fail(err, ONB_EINVAL, "policy.version: not a string of 1 to %d bytes", VERSION_MAX);
	}
	if(!(p->version = dup_str(version->valuestring))) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	if(!statement) return onb_fail(err, ONB_EINVAL, "policy.statement: missing");
	if(!cJSON_IsArray(statement)) return onb_fail(err, ONB_EINVAL, "policy.statement: not an array");
	n = (size_t)cJSON_GetArraySize(statement);
	if(n > ONB_POLICY_MAX_STATEMENTS){
		return onb_fail(err, ONB_EINVAL, "policy.statement: %zu statements, over the limit of %d",
			n, ONB_POLICY_MAX_STATEMENTS);
	}
	if(n && !(p->st = calloc(n, sizeof(*p->st)))) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	cJSON_ArrayForEach(s, statement){
		p->nstmt = si + 1;
		if((rc = parse_statement(s, si, &p->st[si], err)) != ONB_OK) return rc;
		si++;
	}
	return ONB_OK;
}

int onb_policy_parse(const char *json, size_t len, struct onb_policy **out, struct onb_err *err)
{
	struct onb_policy *p = NULL;
	cJSON *root = NULL;
	const char *end = NULL;
	char *buf = NULL;
	int rc;

	if(!json || !out) return onb_fail(err, ONB_EINVAL, "policy: no document");
	if(len > ONB_POLICY_MAX_BYTES){
		return onb_fail(err, ONB_EINVAL, "policy: %zu bytes, over the limit of %d", len, ONB_POLICY_MAX_BYTES);
	}
	if(memchr(json, '\0', len)) return onb_fail(err, ONB_EINVAL, "policy: holds a NUL byte");
	/* cJSON would decode \u0000 and cut the string short, silently */
	for(size_t i = 0; i + 6 <= len; i++){
		if(json[i] == '\\' && memcmp(json + i + 1, "u0000", 5) == 0){
			return onb_fail(err, ONB_EINVAL, "policy: holds \\u0000 at byte %zu", i);
		}
		if(json[i] == '\\') i++; /* skip the escaped character */
	}
	/* cJSON reads a NUL-terminated copy: the caller's buffer need not be */
	if(!(buf = malloc(len + 1))) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	memcpy(buf, json, len);
	buf[len] = '\0';
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if(!root){
		rc = onb_fail(err, ONB_EINVAL, "policy: invalid JSON near byte %td", end ? end - buf : (ptrdiff_t)0);
		goto out;
	}
	for(const char *q = end; q < buf + len; q++){
		if(*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r'){
			rc = onb_fail(err, ONB_EINVAL, "policy: trailing data at byte %td", q - buf);
			goto out;
		}
	}
	if(!(p = calloc(1, sizeof(*p)))){
		rc = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto out;
	}
	if((rc = parse_root(root, p, err)) != ONB_OK) goto out;
	*out = p;
	p = NULL;
out:
	onb_policy_free(p);
	cJSON_Delete(root);
	free(buf);
	return rc;
}
