/* Provisioning templates: strict parsing, parameter checks, thing names, and
 * loading a directory of them (contract: provisioning/template.h). */
#include "provisioning/template.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policystore.h"

#define BOUND_MAX 255            /* largest {m,n} bound in a pattern */
#define BOUND_MAX_TEXT "255"
#define PATTERN_COST_MAX 2048    /* elements after regcomp expands repetitions */
#define PATTERN_DEPTH_MAX 16     /* nested groups */

static const char *const template_keys[] = {
	"name", "description", "parameters", "thingName", "serialParameter", "policy", "state",
	"tenant", "allowlist", "reprovision", "deviceConfiguration", NULL,
};
static const char *const param_keys[] = {
	"required", "default", "pattern", "maxLength", "description", NULL,
};

/* ---------------------------------------------------------------- helpers */

/* Every member of obj is named in keys[] and appears once. */
static int check_keys(const cJSON *obj, const char *const keys[], const char *where,
		struct onb_err *err)
{
	for(const cJSON *c = obj->child; c; c = c->next){
		bool known = false;

		for(size_t i = 0; keys[i] && !known; i++) known = !strcmp(keys[i], c->string);
		if(!known) return onb_fail(err, ONB_EINVAL, "%s: unknown key \"%.64s\"", where, c->string);
		for(const cJSON *d = c->next; d; d = d->next){
			if(!strcmp(c->string, d->string)){
				return onb_fail(err, ONB_EINVAL, "%s: key \"%.64s\" appears twice", where, c->string);
			}
		}
	}
	return ONB_OK;
}

/* An optional string member: *out NULL when absent; error when not a string
 * or longer than max. */
static int opt_string(const cJSON *obj, const char *key, size_t max, const char **out,
		const char *where, struct onb_err *err)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if(!item) return ONB_OK;
	if(!cJSON_IsString(item) || !item->valuestring){
		return onb_fail(err, ONB_EINVAL, "%s: \"%s\" must be a string", where, key);
	}
	if(strlen(item->valuestring) > max){
		return onb_fail(err, ONB_EINVAL, "%s: \"%s\" is longer than %zu bytes", where, key, max);
	}
	*out = item->valuestring;
	return ONB_OK;
}

static bool param_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= ONB_PROV_PARAM_NAME_MAX
		&& strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		|| c == '.' || c == '_' || c == ':' || c == '-';
}

static bool has_controls(const char *s)
{
	for(; *s; s++){
		if((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f) return true;
	}
	return false;
}

static struct onb_template_param *find_param(const struct onb_template *t, const char *name,
		size_t len)
{
	for(size_t i = 0; i < t->nparams; i++){
		struct onb_template_param *p = (struct onb_template_param *)&t->params[i];
		if(strlen(p->name) == len && !strncmp(p->name, name, len)) return p;
	}
	return NULL;
}

/* --------------------------------------------------------------- patterns */

/* glibc's regcomp copies the tree under x+ and x{m,n} (n copies), so nested
 * repetitions grow exponentially. est_* estimate the expanded size of an ERE
 * (saturating at PATTERN_COST_MAX + 1); malformed syntax is left to regcomp. */
struct est {
	const char *p;
	int depth;
	const char *bad;  /* why the pattern is refused, or NULL */
};

static unsigned long sat_add(unsigned long a, unsigned long b)
{
	return a + b > PATTERN_COST_MAX ? PATTERN_COST_MAX + 1 : a + b;
}

static unsigned long sat_mul(unsigned long a, unsigned long b)
{
	return b != 0 && a > (PATTERN_COST_MAX + 1) / b ? PATTERN_COST_MAX + 1
		: (a * b > PATTERN_COST_MAX ? PATTERN_COST_MAX + 1 : a * b);
}

/* Skips a bracket expression starting at e->p ('['). */
static void est_bracket(struct est *e)
{
	const char *p = e->p + 1;

	if(*p == '^') p++;
	if(*p == ']') p++;
	while(*p && *p != ']'){
		if(*p == '[' && p[1] && strchr(":=.", p[1])){
			char close[3] = { p[1], ']', '\0' };
			const char *end = strstr(p + 2, close);
			if(!end){
				e->bad = "unterminated [: in a bracket expression";
				p += strlen(p);
				break;
			}
			p = end + 2;
		}else{
			p++;
		}
	}
	if(!*p) e->bad = "unterminated bracket expression";
	e->p = *p ? p + 1 : p;
}

/* Reads "{m}", "{m,}" or "{m,n}" at e->p; returns the copies made, 0 when
 * the brace does not start a bound (regcomp decides what it is). */
static unsigned long est_bound(struct est *e)
{
	const char *p = e->p + 1;
	unsigned long lo = 0, hi;

	if(*p < '0' || *p > '9') return 0;
	while(*p >= '0' && *p <= '9' && lo <= BOUND_MAX) lo = lo * 10 + (unsigned long)(*p++ - '0');
	hi = lo;
	if(*p == ','){
		p++;
		if(*p >= '0' && *p <= '9'){
			hi = 0;
			while(*p >= '0' && *p <= '9' && hi <= BOUND_MAX) hi = hi * 10 + (unsigned long)(*p++ - '0');
		}
	}
	if(lo > BOUND_MAX || hi > BOUND_MAX){
		e->bad = "a {m,n} bound above " BOUND_MAX_TEXT;
		return 0;
	}
	while(*p && *p != '}') p++;
	e->p = *p ? p + 1 : p;
	return (hi > lo ? hi : lo) + 1;
}

static unsigned long est_alt(struct est *e);

/* One atom and the repetition operators after it. */
static unsigned long est_piece(struct est *e)
{
	unsigned long cost = 1, f;

	if(*e->p == '('){
		e->p++;
		if(++e->depth > PATTERN_DEPTH_MAX){
			e->bad = "groups nested too deeply";
			e->p += strlen(e->p);
			return PATTERN_COST_MAX + 1;
		}
		cost = sat_add(est_alt(e), 1);
		e->depth--;
		if(*e->p == ')') e->p++;
	}else if(*e->p == '['){
		est_bracket(e);
	}else if(*e->p == '\\'){
		e->p += e->p[1] ? 2 : 1;
	}else{
		e->p++;
	}
	for(;;){
		if(*e->p == '*' || *e->p == '?'){
			cost = sat_add(cost, 1);
			e->p++;
		}else if(*e->p == '+'){
			cost = sat_mul(cost, 2);
			e->p++;
		}else if(*e->p == '{' && (f = est_bound(e)) > 0){
			cost = sat_mul(cost, f);
		}else{
			return cost;
		}
	}
}

/* Alternatives of sequences, up to an unmatched ')' or the end. */
static unsigned long est_alt(struct est *e)
{
	unsigned long cost = 0;

	while(*e->p && *e->p != ')' && !e->bad){
		if(*e->p == '|'){
			e->p++;
			cost = sat_add(cost, 1);
			continue;
		}
		cost = sat_add(cost, est_piece(e));
	}
	return cost;
}

/* Refuses patterns regcomp would expand into a huge automaton. */
static int pattern_check(const char *pat, struct onb_err *err)
{
	struct est e = { .p = pat };
	unsigned long cost = 0;

	while(*e.p && !e.bad){
		cost = sat_add(cost, est_alt(&e));
		if(*e.p == ')') e.p++; /* unbalanced: regcomp will say so */
	}
	if(e.bad) return onb_fail(err, ONB_EINVAL, "pattern: %s", e.bad);
	if(cost > PATTERN_COST_MAX){
		return onb_fail(err, ONB_EINVAL, "pattern is too complex (its repetitions expand "
				"beyond %d elements)", PATTERN_COST_MAX);
	}
	return ONB_OK;
}

/* True when re matches all of value (POSIX leftmost-longest, so a full
 * match is found whenever one exists). */
static bool full_match(const regex_t *re, const char *value)
{
	regmatch_t m[1];

	if(regexec(re, value, 1, m, 0) != 0) return false;
	return m[0].rm_so == 0 && (size_t)m[0].rm_eo == strlen(value);
}

/* Checks one effective value against its parameter definition. */
static int value_check(const struct onb_template_param *p, const char *value, struct onb_err *err)
{
	if(strlen(value) > p->max_length){
		return onb_fail(err, ONB_EINVAL, "parameter %s is longer than %zu characters",
				p->name, p->max_length);
	}
	if(has_controls(value)){
		return onb_fail(err, ONB_EINVAL, "parameter %s contains control characters", p->name);
	}
	if(p->has_pattern && !full_match(&p->re, value)){
		return onb_fail(err, ONB_EINVAL, "parameter %s does not match its pattern", p->name);
	}
	return ONB_OK;
}

/* ------------------------------------------------------------------ parse */

static int parse_param(const cJSON *def, struct onb_template_param *p, struct onb_err *err)
{
	char where[ONB_PROV_PARAM_NAME_MAX + 16];
	struct onb_err inner;
	const cJSON *item;
	const char *s;
	int ret, rc;

	snprintf(where, sizeof(where), "parameter %s", p->name);
	if(!cJSON_IsObject(def)) return onb_fail(err, ONB_EINVAL, "%s: must be an object", where);
	ret = check_keys(def, param_keys, where, err);
	if(ret != ONB_OK) return ret;
	p->required = true;
	item = cJSON_GetObjectItemCaseSensitive(def, "required");
	if(item){
		if(!cJSON_IsBool(item)) return onb_fail(err, ONB_EINVAL, "%s: \"required\" must be true or false", where);
		p->required = cJSON_IsTrue(item);
	}
	p->max_length = ONB_TEMPLATE_DEFAULT_MAXLEN;
	item = cJSON_GetObjectItemCaseSensitive(def, "maxLength");
	if(item){
		if(!cJSON_IsNumber(item) || item->valuedouble < 1 || item->valuedouble > ONB_PROV_PARAM_VALUE_MAX
				|| item->valuedouble != (double)item->valueint){
			return onb_fail(err, ONB_EINVAL, "%s: \"maxLength\" must be an integer 1..%d",
					where, ONB_PROV_PARAM_VALUE_MAX);
		}
		p->max_length = (size_t)item->valueint;
	}
	ret = opt_string(def, "description", 1024, &s, where, err);
	if(ret != ONB_OK) return ret;
	ret = opt_string(def, "pattern", ONB_TEMPLATE_PATTERN_MAX, &s, where, err);
	if(ret != ONB_OK) return ret;
	if(s){
		char ebuf[128];
		if(!*s) return onb_fail(err, ONB_EINVAL, "%s: \"pattern\" is empty", where);
		ret = pattern_check(s, &inner);
		if(ret != ONB_OK) return onb_fail(err, ret, "%s: %s", where, inner.msg);
		rc = regcomp(&p->re, s, REG_EXTENDED);
		if(rc != 0){
			regerror(rc, &p->re, ebuf, sizeof(ebuf));
			return onb_fail(err, ONB_EINVAL, "%s: bad pattern: %s", where, ebuf);
		}
		p->has_pattern = true;
	}
	ret = opt_string(def, "default", ONB_PROV_PARAM_VALUE_MAX, &s, where, err);
	if(ret != ONB_OK) return ret;
	if(s){
		if(p->required) return onb_fail(err, ONB_EINVAL, "%s: a required parameter has no default", where);
		memcpy(p->default_value, s, strlen(s) + 1);
		p->has_default = true;
		ret = value_check(p, p->default_value, &inner);
		if(ret != ONB_OK) return onb_fail(err, ret, "%s: default: %s", where, inner.msg);
	}
	return ONB_OK;
}

static int parse_params(const cJSON *params, struct onb_template *t, struct onb_err *err)
{
	int ret;

	if(!cJSON_IsObject(params)) return onb_fail(err, ONB_EINVAL, "\"parameters\" must be an object");
	for(const cJSON *c = params->child; c; c = c->next){
		struct onb_template_param *p;

		if(!param_name_valid(c->string)){
			return onb_fail(err, ONB_EINVAL, "parameter names must match [A-Za-z0-9_]{1,%d}",
					ONB_PROV_PARAM_NAME_MAX);
		}
		if(find_param(t, c->string, strlen(c->string))){
			return onb_fail(err, ONB_EINVAL, "parameter %s is declared twice", c->string);
		}
		if(t->nparams >= ONB_TEMPLATE_PARAMS_MAX){
			return onb_fail(err, ONB_EINVAL, "more than %d parameters", ONB_TEMPLATE_PARAMS_MAX);
		}
		p = &t->params[t->nparams++];
		memcpy(p->name, c->string, strlen(c->string) + 1);
		ret = parse_param(c, p, err);
		if(ret != ONB_OK) return ret;
	}
	return ONB_OK;
}

/* Checks a thingName expression: literal id characters and ${Param}
 * references to parameters that always have a value; at least one. */
static int check_expr(const struct onb_template *t, const char *expr, struct onb_err *err)
{
	int refs = 0;

	for(const char *s = expr; *s; ){
		if(*s == '$'){
			const char *name = s + 2, *end;
			const struct onb_template_param *p;

			if(s[1] != '{' || !(end = strchr(name, '}'))){
				return onb_fail(err, ONB_EINVAL, "thingName: '$' must start a ${Parameter} reference");
			}
			p = find_param(t, name, (size_t)(end - name));
			if(!p){
				return onb_fail(err, ONB_EINVAL, "thingName refers to undeclared parameter %.*s",
						(int)(end - name > 64 ? 64 : end - name), name);
			}
			if(!p->required && !p->has_default){
				return onb_fail(err, ONB_EINVAL, "thingName uses %s, which is optional and has "
						"no default", p->name);
			}
			refs++;
			s = end + 1;
		}else if(!id_char(*s)){
			return onb_fail(err, ONB_EINVAL, "thingName: literal text may only use [A-Za-z0-9._:-]");
		}else{
			s++;
		}
	}
	if(refs == 0) return onb_fail(err, ONB_EINVAL, "thingName must use at least one ${Parameter}");
	return ONB_OK;
}

static int parse_root(const cJSON *root, const char *name, struct onb_template *t,
		struct onb_err *err)
{
	const cJSON *item;
	const char *s;
	int ret;

	ret = check_keys(root, template_keys, "template", err);
	if(ret != ONB_OK) return ret;
	ret = opt_string(root, "name", ONB_PROV_TEMPLATE_NAME_MAX + 1, &s, "template", err);
	if(ret != ONB_OK) return ret;
	if(s && strcmp(s, name) != 0) return onb_fail(err, ONB_EINVAL, "\"name\" differs from the file name");
	ret = opt_string(root, "description", 1024, &s, "template", err);
	if(ret != ONB_OK) return ret;

	item = cJSON_GetObjectItemCaseSensitive(root, "parameters");
	if(item){
		ret = parse_params(item, t, err);
		if(ret != ONB_OK) return ret;
	}
	ret = opt_string(root, "thingName", ONB_TEMPLATE_EXPR_MAX, &s, "template", err);
	if(ret != ONB_OK) return ret;
	if(!s) return onb_fail(err, ONB_EINVAL, "\"thingName\" is required");
	ret = check_expr(t, s, err);
	if(ret != ONB_OK) return ret;
	memcpy(t->thing_name, s, strlen(s) + 1);

	ret = opt_string(root, "serialParameter", ONB_PROV_PARAM_NAME_MAX, &s, "template", err);
	if(ret != ONB_OK) return ret;
	if(s && !find_param(t, s, strlen(s))) return onb_fail(err, ONB_EINVAL, "serialParameter names no parameter");
	if(!s && find_param(t, "SerialNumber", 12)) s = "SerialNumber";
	if(s) memcpy(t->serial_param, s, strlen(s) + 1);

	ret = opt_string(root, "policy", ONB_NAME_MAX, &s, "template", err);
	if(ret != ONB_OK) return ret;
	if(s && *s){
		if(!onb_policy_name_valid(s)) return onb_fail(err, ONB_EINVAL, "\"policy\" is not a valid policy name");
		memcpy(t->policy, s, strlen(s) + 1);
	}
	ret = opt_string(root, "state", 32, &s, "template", err);
	if(ret != ONB_OK) return ret;
	t->state = s ? onb_state_parse(s) : ONB_STATE_UNCLAIMED;
	if(t->state != ONB_STATE_UNCLAIMED && t->state != ONB_STATE_ACTIVE){
		return onb_fail(err, ONB_EINVAL, "\"state\" must be unclaimed or active");
	}
	ret = opt_string(root, "tenant", ONB_ID_MAX, &s, "template", err);
	if(ret != ONB_OK) return ret;
	if(s){
		if(!onb_id_valid(s)) return onb_fail(err, ONB_EINVAL, "\"tenant\" is not a valid id");
		memcpy(t->tenant, s, strlen(s) + 1);
	}
	if((t->state == ONB_STATE_ACTIVE) != (t->tenant[0] != '\0')){
		return onb_fail(err, ONB_EINVAL, "\"tenant\" is required with state active and only then");
	}
	ret = opt_string(root, "allowlist", 16, &s, "template", err);
	if(ret != ONB_OK) return ret;
	if(!s || !strcmp(s, "required")){
		t->allowlist_required = true;
	}else if(!strcmp(s, "optional")){
		t->allowlist_required = false;
	}else{
		return onb_fail(err, ONB_EINVAL, "\"allowlist\" must be required or optional");
	}
	/* never by default: with a shared claim certificate anyone holding it
	 * could otherwise take over a provisioned device's identity */
	ret = opt_string(root, "reprovision", 32, &s, "template", err);
	if(ret != ONB_OK) return ret;
	t->reprovision = ONB_REPROV_NEVER;
	if(s && !onb_reprovision_parse(s, &t->reprovision)){
		return onb_fail(err, ONB_EINVAL, "\"reprovision\" must be never, same-identity or replace, "
				"not \"%.32s\"", s);
	}

	item = cJSON_GetObjectItemCaseSensitive(root, "deviceConfiguration");
	if(item){
		char *printed;
		size_t n;

		if(!cJSON_IsObject(item)) return onb_fail(err, ONB_EINVAL, "\"deviceConfiguration\" must be an object");
		printed = cJSON_PrintUnformatted(item);
		n = printed ? strlen(printed) : 0;
		cJSON_free(printed);
		if(!printed) return onb_fail(err, ONB_EINTERNAL, "out of memory");
		if(n > ONB_TEMPLATE_CONFIG_MAX){
			return onb_fail(err, ONB_EINVAL, "\"deviceConfiguration\" is larger than %d bytes",
					ONB_TEMPLATE_CONFIG_MAX);
		}
		t->device_config = cJSON_Duplicate(item, true);
	}else{
		t->device_config = cJSON_CreateObject();
	}
	if(!t->device_config) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	return ONB_OK;
}

int onb_template_parse(const char *json, size_t len, const char *name,
		struct onb_template **out, struct onb_err *err)
{
	int ret;
	cJSON *root = NULL;
	struct onb_template *t = NULL;
	const char *end = NULL;

	if(!out) return onb_fail(err, ONB_EINVAL, "template: no output");
	if(!onb_prov_template_name_valid(name)){
		return onb_fail(err, ONB_EINVAL, "template names must match [0-9A-Za-z_-]{1,%d}",
				ONB_PROV_TEMPLATE_NAME_MAX);
	}
	if(!json || len == 0) return onb_fail(err, ONB_EINVAL, "template is empty");
	if(len > ONB_TEMPLATE_FILE_MAX) return onb_fail(err, ONB_EINVAL, "template is larger than %d bytes",
			ONB_TEMPLATE_FILE_MAX);
	if(onb_json_has_nul_escape(json, len)) return onb_fail(err, ONB_EINVAL, "template contains \\u0000");
	root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if(!root){
		size_t at = (end && end >= json && (size_t)(end - json) <= len) ? (size_t)(end - json) : 0;
		const char *e = cJSON_GetErrorPtr();
		if(e && e >= json && (size_t)(e - json) <= len) at = (size_t)(e - json);
		return onb_fail(err, ONB_EINVAL, "template is not valid JSON (near byte %zu)", at);
	}
	for(size_t i = (size_t)(end - json); i < len; i++){
		if(json[i] != ' ' && json[i] != '\t' && json[i] != '\r' && json[i] != '\n'){
			ret = onb_fail(err, ONB_EINVAL, "template has data after the JSON document");
			goto cleanup;
		}
	}
	if(!cJSON_IsObject(root)){
		ret = onb_fail(err, ONB_EINVAL, "template is not a JSON object");
		goto cleanup;
	}
	t = calloc(1, sizeof(*t));
	if(!t){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	memcpy(t->name, name, strlen(name) + 1);
	ret = parse_root(root, name, t, err);
	if(ret != ONB_OK) goto cleanup;
	*out = t;
	t = NULL;
cleanup:
	onb_template_free(t);
	cJSON_Delete(root);
	return ret;
}

void onb_template_free(struct onb_template *t)
{
	if(!t) return;
	for(size_t i = 0; i < t->nparams; i++){
		if(t->params[i].has_pattern) regfree(&t->params[i].re);
	}
	cJSON_Delete(t->device_config);
	free(t);
}

/* ------------------------------------------------------------------ apply */

int onb_template_apply(const struct onb_template *t, const struct onb_prov_register_req *req,
		struct onb_template_result *out, struct onb_err *err)
{
	const char *values[ONB_TEMPLATE_PARAMS_MAX] = { NULL };
	struct onb_template_result res;
	size_t len = 0;
	int ret;

	if(!t || !req || !out) return onb_fail(err, ONB_EINVAL, "template: bad arguments");
	memset(&res, 0, sizeof(res));
	for(size_t i = 0; i < t->nparams; i++){
		const struct onb_template_param *p = &t->params[i];
		const char *v = onb_prov_param_get(req, p->name);

		if(!v && p->required) return onb_fail(err, ONB_EINVAL, "parameter %s is required", p->name);
		if(!v && p->has_default) v = p->default_value;
		if(!v) continue;
		ret = value_check(p, v, err);
		if(ret != ONB_OK) return ret;
		values[i] = v;
	}
	for(const char *s = t->thing_name; *s; ){
		const char *piece = s;
		size_t n = 1;

		if(*s == '$'){
			const char *name = s + 2, *end = strchr(name, '}');
			const struct onb_template_param *p = end ? find_param(t, name, (size_t)(end - name)) : NULL;

			if(!p || !values[p - t->params]){
				return onb_fail(err, ONB_EINTERNAL, "template %s: thingName cannot be evaluated", t->name);
			}
			piece = values[p - t->params];
			n = strlen(piece);
			s = end + 1;
		}else{
			s++;
		}
		if(len + n > ONB_ID_MAX){
			return onb_fail(err, ONB_EINVAL, "the thing name would be longer than %d characters",
					ONB_ID_MAX);
		}
		memcpy(res.thing_name + len, piece, n);
		len += n;
	}
	res.thing_name[len] = '\0';
	if(!onb_id_valid(res.thing_name)){
		return onb_fail(err, ONB_EINVAL, "the thing name made from the parameters is not a valid "
				"device id ([A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	}
	if(t->serial_param[0]){
		const struct onb_template_param *p = find_param(t, t->serial_param, strlen(t->serial_param));
		const char *v = p ? values[p - t->params] : NULL;
		if(v) memcpy(res.serial, v, strlen(v) + 1);
	}
	*out = res;
	return ONB_OK;
}

/* -------------------------------------------------------------- directory */

/* Reads a regular file of at most ONB_TEMPLATE_FILE_MAX bytes. */
static int read_file(const char *path, char **buf_out, size_t *len_out, struct onb_err *err)
{
	int fd, ret = ONB_EUNAVAIL;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if(fd < 0) return onb_fail(err, ONB_EUNAVAIL, "cannot open %s: %s", path, strerror(errno));
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		ret = onb_fail(err, ONB_EINVAL, "%s is not a regular file", path);
		goto cleanup;
	}
	if(st.st_size > ONB_TEMPLATE_FILE_MAX){
		ret = onb_fail(err, ONB_EINVAL, "%s is larger than %d bytes", path, ONB_TEMPLATE_FILE_MAX);
		goto cleanup;
	}
	buf = malloc((size_t)st.st_size + 1);
	if(!buf){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	while(got < (size_t)st.st_size){
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if(r < 0 && errno == EINTR) continue;
		if(r <= 0){
			ret = onb_fail(err, ONB_EUNAVAIL, "cannot read %s: %s", path, r < 0 ? strerror(errno) : "short read");
			goto cleanup;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	*buf_out = buf;
	*len_out = got;
	buf = NULL;
	ret = ONB_OK;
cleanup:
	free(buf);
	close(fd);
	return ret;
}

static int cmp_template(const void *a, const void *b)
{
	const struct onb_template *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

int onb_template_set_load(const char *dir, struct onb_template_set **out, struct onb_err *err)
{
	int ret = ONB_OK;
	DIR *d = NULL;
	struct dirent *de;
	struct onb_template_set *set = NULL;
	struct onb_err perr;

	if(!dir || !*dir || !out) return onb_fail(err, ONB_EINVAL, "no templates directory given");
	d = opendir(dir);
	if(!d) return onb_fail(err, ONB_EUNAVAIL, "cannot open templates directory %s: %s", dir, strerror(errno));
	set = calloc(1, sizeof(*set));
	if(!set || !(set->v = calloc(ONB_TEMPLATE_SET_MAX, sizeof(*set->v)))){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	while((de = readdir(d)) != NULL){
		char name[256], path[PATH_MAX];
		size_t nl = strlen(de->d_name);
		char *buf = NULL;
		size_t len = 0;
		struct stat st;

		if(de->d_name[0] == '.' || nl <= 5 || strcmp(de->d_name + nl - 5, ".json") != 0) continue;
		if(snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path)){
			ret = onb_fail(err, ONB_EINVAL, "template path too long in %s", dir);
			goto cleanup;
		}
		if(stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
		memcpy(name, de->d_name, nl - 5);
		name[nl - 5] = '\0';
		if(!onb_prov_template_name_valid(name)){
			ret = onb_fail(err, ONB_EINVAL, "%s: template names must match [0-9A-Za-z_-]{1,%d}",
					path, ONB_PROV_TEMPLATE_NAME_MAX);
			goto cleanup;
		}
		if(set->n >= ONB_TEMPLATE_SET_MAX){
			ret = onb_fail(err, ONB_EINVAL, "more than %d templates in %s", ONB_TEMPLATE_SET_MAX, dir);
			goto cleanup;
		}
		ret = read_file(path, &buf, &len, err);
		if(ret == ONB_OK){
			ret = onb_template_parse(buf, len, name, &set->v[set->n], &perr);
			if(ret != ONB_OK) onb_fail(err, ret, "%s: %s", path, perr.msg);
		}
		free(buf);
		if(ret != ONB_OK) goto cleanup;
		set->n++;
	}
	if(set->n == 0){
		ret = onb_fail(err, ONB_ENOTFOUND, "no templates (NAME.json) in %s", dir);
		goto cleanup;
	}
	qsort(set->v, set->n, sizeof(*set->v), cmp_template);
	*out = set;
	set = NULL;
cleanup:
	onb_template_set_free(set);
	if(d) closedir(d);
	return ret;
}

const struct onb_template *onb_template_find(const struct onb_template_set *set, const char *name)
{
	size_t lo = 0, hi;

	if(!set || !name) return NULL;
	hi = set->n;
	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, set->v[mid]->name);
		if(c == 0) return set->v[mid];
		if(c < 0) hi = mid; else lo = mid + 1;
	}
	return NULL;
}

void onb_template_set_free(struct onb_template_set *set)
{
	if(!set) return;
	for(size_t i = 0; i < set->n; i++) onb_template_free(set->v[i]);
	free(set->v);
	free(set);
}
