/* Provisioning templates (lib/provisioning/template.c): strict parsing, parameter
 * patterns, thing names, directory loading, and the shipped default. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provisioning/template.h"

static char dir[PATH_MAX];

/* ---- helpers ---- */

static struct onb_template *parse_ok(const char *json)
{
	struct onb_template *t = NULL;
	struct onb_err err;

	if(onb_template_parse(json, strlen(json), "t1", &t, &err) != ONB_OK) fail_msg("refused: %s", err.msg);
	return t;
}

/* Expects a refusal whose message contains want. */
static void parse_bad(const char *json, const char *want)
{
	struct onb_template *t = NULL;
	struct onb_err err = { "" };

	if(onb_template_parse(json, strlen(json), "t1", &t, &err) == ONB_OK){
		onb_template_free(t);
		fail_msg("accepted: %s", json);
	}
	assert_null(t);
	if(!strstr(err.msg, want)) fail_msg("message \"%s\" lacks \"%s\" for %s", err.msg, want, json);
}

/* Copies s into dst[cap]; the test fails when it does not fit. */
static void put(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if(n >= cap) fail_msg("test value too long");
	memcpy(dst, s, n + 1);
}

/* A register request with up to two parameters (NULL name: none). */
static struct onb_prov_register_req *req_with(const char *n1, const char *v1, const char *n2, const char *v2)
{
	struct onb_prov_register_req *r = calloc(1, sizeof(*r));

	put(r->token, sizeof(r->token), "tok");
	if(n1){
		put(r->params[r->nparams].name, sizeof(r->params[0].name), n1);
		put(r->params[r->nparams++].value, sizeof(r->params[0].value), v1);
	}
	if(n2){
		put(r->params[r->nparams].name, sizeof(r->params[0].name), n2);
		put(r->params[r->nparams++].value, sizeof(r->params[0].value), v2);
	}
	return r;
}

/* Applies t to one SerialNumber value; returns the rc, thing name in out. */
static int apply1(const struct onb_template *t, const char *serial, struct onb_template_result *res)
{
	struct onb_prov_register_req *r = req_with(serial ? "SerialNumber" : NULL, serial, NULL, NULL);
	struct onb_err err;
	int rc = onb_template_apply(t, r, res, &err);

	free(r);
	return rc;
}

static void write_file(const char *name, const char *content)
{
	char path[sizeof(dir) + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void remove_file(const char *name)
{
	char path[sizeof(dir) + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static int group_setup(void **state)
{
	const char *tmp = getenv("ONB_TEST_TMP");

	if(!tmp || !*tmp) tmp = "/tmp";
	mkdir(tmp, 0700);
	snprintf(dir, sizeof(dir), "%s/tpl.XXXXXX", tmp);
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	static const char *const files[] = { "a.json", "b.json", "README.txt", ".hidden.json",
		"bad name.json", "broken.json" };

	for(size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) remove_file(files[i]);
	rmdir(dir);
	return 0;
}

/* ---- tests ---- */

static void minimal_and_defaults(void **state)
{
	struct onb_template *t = parse_ok("{\"parameters\":{\"SerialNumber\":{}},\"thingName\":\"${SerialNumber}\"}");
	struct onb_template_result res;

	assert_string_equal(t->name, "t1");
	assert_int_equal(t->nparams, 1);
	assert_true(t->params[0].required);
	assert_int_equal(t->params[0].max_length, ONB_TEMPLATE_DEFAULT_MAXLEN);
	assert_int_equal(t->state, ONB_STATE_UNCLAIMED);
	assert_true(t->allowlist_required);
	assert_int_equal(t->reprovision, ONB_REPROV_NEVER);
	assert_string_equal(t->policy, "");
	assert_string_equal(t->tenant, "");
	assert_string_equal(t->serial_param, "SerialNumber");
	assert_true(cJSON_IsObject(t->device_config));
	assert_int_equal(apply1(t, "SN-1", &res), ONB_OK);
	assert_string_equal(res.thing_name, "SN-1");
	assert_string_equal(res.serial, "SN-1");
	assert_int_not_equal(apply1(t, NULL, &res), ONB_OK);
	assert_int_not_equal(apply1(t, "a/b", &res), ONB_OK);          /* not a device id */
	assert_int_not_equal(apply1(t, "", &res), ONB_OK);
	onb_template_free(t);
}

static void full_template(void **state)
{
	struct onb_template *t = parse_ok(
		"{\"name\":\"t1\",\"description\":\"x\","
		"\"parameters\":{\"SerialNumber\":{\"required\":true,\"pattern\":\"[0-9]+\",\"maxLength\":8},"
		"\"Site\":{\"required\":false,\"default\":\"lab\",\"pattern\":\"^[a-z]+$\",\"description\":\"d\"},"
		"\"Note\":{\"required\":false}},"
		"\"thingName\":\"sensor-${SerialNumber}.${Site}\",\"serialParameter\":\"SerialNumber\","
		"\"policy\":\"sensor-v1\",\"state\":\"active\",\"tenant\":\"acme\",\"allowlist\":\"optional\","
		"\"deviceConfiguration\":{\"interval\":30,\"topics\":[\"a\"]}}");
	struct onb_prov_register_req *r;
	struct onb_template_result res;
	struct onb_err err;

	assert_int_equal(t->nparams, 3);
	assert_string_equal(t->policy, "sensor-v1");
	assert_int_equal(t->state, ONB_STATE_ACTIVE);
	assert_string_equal(t->tenant, "acme");
	assert_false(t->allowlist_required);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(t->device_config, "interval")->valueint, 30);

	assert_int_equal(apply1(t, "0042", &res), ONB_OK);
	assert_string_equal(res.thing_name, "sensor-0042.lab");
	r = req_with("SerialNumber", "7", "Site", "paris");
	assert_int_equal(onb_template_apply(t, r, &res, &err), ONB_OK);
	assert_string_equal(res.thing_name, "sensor-7.paris");
	free(r);
	/* patterns must match the whole value */
	assert_int_not_equal(apply1(t, "12a", &res), ONB_OK);
	assert_int_not_equal(apply1(t, "a12", &res), ONB_OK);
	assert_int_not_equal(apply1(t, "123456789", &res), ONB_OK);   /* maxLength 8 */
	r = req_with("SerialNumber", "7", "Site", "Paris");
	assert_int_not_equal(onb_template_apply(t, r, &res, &err), ONB_OK);
	assert_non_null(strstr(err.msg, "Site"));
	free(r);
	/* undeclared parameters are ignored; control characters never pass */
	r = req_with("SerialNumber", "7", "Unknown", "whatever");
	assert_int_equal(onb_template_apply(t, r, &res, &err), ONB_OK);
	free(r);
	r = req_with("SerialNumber", "7", "Note", "a\tb");
	assert_int_not_equal(onb_template_apply(t, r, &res, &err), ONB_OK);
	free(r);
	onb_template_free(t);
}

static void alternation_cannot_unanchor(void **state)
{
	struct onb_template *t = parse_ok("{\"parameters\":{\"SerialNumber\":{\"pattern\":\"a|b\"}},"
			"\"thingName\":\"${SerialNumber}\"}");
	struct onb_template *u = parse_ok("{\"parameters\":{\"SerialNumber\":{\"pattern\":\"^a$|^b$\"}},"
			"\"thingName\":\"${SerialNumber}\"}");
	struct onb_template_result res;

	assert_int_equal(apply1(t, "a", &res), ONB_OK);
	assert_int_equal(apply1(t, "b", &res), ONB_OK);
	assert_int_not_equal(apply1(t, "ab", &res), ONB_OK);
	assert_int_not_equal(apply1(t, "ba", &res), ONB_OK);
	assert_int_equal(apply1(u, "b", &res), ONB_OK);
	assert_int_not_equal(apply1(u, "ab", &res), ONB_OK);
	onb_template_free(t);
	onb_template_free(u);
}

/* Long but flat patterns are fine; only nesting multiplies. */
static void pattern_cost(void **state)
{
	struct onb_template *t = parse_ok("{\"parameters\":{\"SerialNumber\":{\"pattern\":"
			"\"^[A-Z]+-[0-9]+-[a-z]+-[0-9]+-[A-Z]+-[0-9]+-[a-z]+-[0-9]+-[A-Z]+-[0-9]+-[a-z]+-[0-9]+$\"}},"
			"\"thingName\":\"${SerialNumber}\"}");
	struct onb_template *u = parse_ok("{\"parameters\":{\"SerialNumber\":{\"pattern\":"
			"\"([A-Z]{2}[0-9]{1,8}){1,4}|x{255}|\\\\{300}\"}},\"thingName\":\"${SerialNumber}\"}");
	struct onb_template_result res;

	assert_int_equal(apply1(t, "AB-1-c-2-D-3-e-4-F-5-g-6", &res), ONB_OK);
	assert_int_equal(apply1(u, "AB12CD3", &res), ONB_OK);
	onb_template_free(t);
	onb_template_free(u);
}

static void thing_name_limits(void **state)
{
	struct onb_template *t = parse_ok("{\"parameters\":{\"SerialNumber\":{\"maxLength\":256}},"
			"\"thingName\":\"prefix-${SerialNumber}\"}");
	struct onb_template_result res;
	char v[200];

	memset(v, 'x', sizeof(v));
	v[121] = '\0'; /* 7 + 121 = 128 */
	assert_int_equal(apply1(t, v, &res), ONB_OK);
	assert_int_equal(strlen(res.thing_name), 128);
	v[121] = 'x';
	v[122] = '\0';
	assert_int_not_equal(apply1(t, v, &res), ONB_OK);
	assert_int_not_equal(apply1(t, "with space", &res), ONB_OK);
	assert_int_not_equal(apply1(t, "x+y", &res), ONB_OK);
	onb_template_free(t);
}

static void parse_errors(void **state)
{
	parse_bad("", "empty");
	parse_bad("{", "not valid JSON");
	parse_bad("[]", "not a JSON object");
	parse_bad("{} x", "after the JSON document");
	parse_bad("{\"thingName\":\"x\",\"bogus\":1}", "unknown key");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"thingName\":\"${S}\"}", "appears twice");
	parse_bad("{\"parameters\":{\"S\":{}}}", "thingName\" is required");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${T}\"}", "undeclared parameter T");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"a/${S}\"}", "literal text");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"$S\"}", "${Parameter}");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S\"}", "${Parameter}");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"fixed\"}", "at least one");
	parse_bad("{\"parameters\":{\"S\":{\"required\":false}},\"thingName\":\"${S}\"}", "no default");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"state\":\"revoked\"}", "unclaimed or active");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"state\":\"active\"}", "tenant");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"tenant\":\"acme\"}", "tenant");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"state\":\"active\",\"tenant\":\"a/b\"}", "tenant");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"allowlist\":\"maybe\"}", "allowlist");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"policy\":\"a b\"}", "policy");
	parse_bad("{\"name\":\"other\",\"parameters\":{\"S\":{}},\"thingName\":\"${S}\"}", "file name");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"deviceConfiguration\":[]}", "deviceConfiguration");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"serialParameter\":\"X\"}", "serialParameter");
	parse_bad("{\"parameters\":[],\"thingName\":\"x\"}", "must be an object");
	parse_bad("{\"parameters\":{\"S\":1},\"thingName\":\"${S}\"}", "must be an object");
	parse_bad("{\"parameters\":{\"Serial Number\":{}},\"thingName\":\"x\"}", "parameter names");
	parse_bad("{\"parameters\":{\"S\":{\"pattern\":\"(ab\"}},\"thingName\":\"${S}\"}", "bad pattern");
	parse_bad("{\"parameters\":{\"S\":{\"pattern\":\"[a-z\"}},\"thingName\":\"${S}\"}", "unterminated");
	parse_bad("{\"parameters\":{\"S\":{\"pattern\":\"\"}},\"thingName\":\"${S}\"}", "empty");
	parse_bad("{\"parameters\":{\"S\":{\"pattern\":\"a{300}\"}},\"thingName\":\"${S}\"}", "bound");
	parse_bad("{\"parameters\":{\"S\":{\"pattern\":\"((a{100}){100}){100}\"}},\"thingName\":\"${S}\"}", "too complex");
	parse_bad("{\"parameters\":{\"S\":{\"pattern\":\"[0-9]++++++++++++++++++++++++++++++{2,8}\"}},\"thingName\":\"${S}\"}", "too complex");
	parse_bad("{\"parameters\":{\"S\":{\"pattern\":\"((((((((((((((((((a))))))))))))))))))\"}},\"thingName\":\"${S}\"}", "nested");
	parse_bad("{\"parameters\":{\"S\":{\"maxLength\":0}},\"thingName\":\"${S}\"}", "maxLength");
	parse_bad("{\"parameters\":{\"S\":{\"maxLength\":257}},\"thingName\":\"${S}\"}", "maxLength");
	parse_bad("{\"parameters\":{\"S\":{\"maxLength\":1.5}},\"thingName\":\"${S}\"}", "maxLength");
	parse_bad("{\"parameters\":{\"S\":{\"required\":\"yes\"}},\"thingName\":\"${S}\"}", "required");
	parse_bad("{\"parameters\":{\"S\":{\"default\":\"x\"}},\"thingName\":\"${S}\"}", "no default");
	parse_bad("{\"parameters\":{\"S\":{},\"O\":{\"required\":false,\"default\":\"UP\",\"pattern\":\"[a-z]+\"}},"
			"\"thingName\":\"${S}\"}", "default");
	parse_bad("{\"parameters\":{\"S\":{},\"S\":{}},\"thingName\":\"${S}\"}", "twice");
	parse_bad("{\"parameters\":{\"S\":{\"bogus\":1}},\"thingName\":\"${S}\"}", "unknown key");
	parse_bad("{\"thingName\":\"x\\u0000\"}", "\\u0000");
}

static void limits(void **state)
{
	char buf[4096];
	size_t n;
	char *big;
	struct onb_template *t = NULL;
	struct onb_err err;

	/* 17 parameters */
	n = (size_t)snprintf(buf, sizeof(buf), "{\"parameters\":{");
	for(int i = 0; i <= ONB_TEMPLATE_PARAMS_MAX; i++) n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"P%d\":{}", i ? "," : "", i);
	snprintf(buf + n, sizeof(buf) - n, "},\"thingName\":\"${P0}\"}");
	parse_bad(buf, "more than");
	/* a deviceConfiguration over its cap */
	big = malloc(ONB_TEMPLATE_CONFIG_MAX + 256);
	n = (size_t)snprintf(big, 256, "{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"deviceConfiguration\":{\"k\":\"");
	memset(big + n, 'v', ONB_TEMPLATE_CONFIG_MAX);
	snprintf(big + n + ONB_TEMPLATE_CONFIG_MAX, 64, "\"}}");
	parse_bad(big, "larger than");
	free(big);
	/* a file over its cap */
	big = malloc(ONB_TEMPLATE_FILE_MAX + 2);
	memset(big, ' ', ONB_TEMPLATE_FILE_MAX + 1);
	big[ONB_TEMPLATE_FILE_MAX + 1] = '\0';
	parse_bad(big, "larger than");
	free(big);
	/* a bad template name */
	assert_int_not_equal(onb_template_parse("{}", 2, "a.b", &t, &err), ONB_OK);
	assert_null(t);
}

static void shipped_default(void **state)
{
	const char *src = getenv("ONB_SOURCE_DIR");
	char path[sizeof(dir) + 64];
	struct onb_template_set *set = NULL;
	const struct onb_template *t;
	struct onb_template_result res;
	struct onb_err err;

	if(!src) src = ".";
	snprintf(path, sizeof(path), "%s/config/templates", src);
	if(onb_template_set_load(path, &set, &err) != ONB_OK) fail_msg("%s", err.msg);
	t = onb_template_find(set, "default");
	assert_non_null(t);
	assert_true(t->allowlist_required);
	assert_int_equal(t->state, ONB_STATE_UNCLAIMED);
	assert_int_equal(t->reprovision, ONB_REPROV_NEVER); /* safe with a shared claim certificate */
	assert_string_equal(t->serial_param, "SerialNumber");
	/* the thing name is the serial as written, as `onboardctl allowlist import` stores it */
	assert_int_equal(apply1(t, "SN-0001", &res), ONB_OK);
	assert_string_equal(res.thing_name, "SN-0001");
	assert_string_equal(res.serial, "SN-0001");
	assert_int_equal(apply1(t, "a:b.c_d-e", &res), ONB_OK);
	assert_int_not_equal(apply1(t, NULL, &res), ONB_OK);
	assert_int_not_equal(apply1(t, "SN 1", &res), ONB_OK);
	onb_template_set_free(set);
}

/* "reprovision": the three names, the default, and clear refusals of
 * anything else (a typo must stop claimsvc, not fall back to a policy). */
static void reprovision_policy(void **state)
{
	static const struct {
		const char *value;
		enum onb_reprovision want;
	} good[] = {
		{ "never", ONB_REPROV_NEVER },
		{ "same-identity", ONB_REPROV_SAME_IDENTITY },
		{ "replace", ONB_REPROV_REPLACE },
	};
	static const char *const bad[] = {
		"\"Never\"", "\"same_identity\"", "\"sameidentity\"", "\"always\"", "\"\"", "\"replace \"",
		"true", "1", "null", "[\"replace\"]", "{}",
	};
	char json[256];

	(void)state;
	for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++){
		struct onb_template *t;

		snprintf(json, sizeof(json), "{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\","
				"\"reprovision\":\"%s\"}", good[i].value);
		t = parse_ok(json);
		assert_int_equal(t->reprovision, good[i].want);
		assert_string_equal(onb_reprovision_name(t->reprovision), good[i].value);
		onb_template_free(t);
	}
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		snprintf(json, sizeof(json), "{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\","
				"\"reprovision\":%s}", bad[i]);
		parse_bad(json, bad[i][0] == '"' ? "\"reprovision\" must be never, same-identity or replace"
				: "\"reprovision\" must be a string");
	}
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"reprovision\":\"never\","
			"\"reprovision\":\"replace\"}", "appears twice");
	parse_bad("{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\",\"reprovisioning\":\"replace\"}",
			"unknown key \"reprovisioning\"");

	/* the vocabulary itself */
	{
		enum onb_reprovision p = ONB_REPROV_REPLACE;

		assert_false(onb_reprovision_parse(NULL, &p));
		assert_false(onb_reprovision_parse("", &p));
		assert_false(onb_reprovision_parse("REPLACE", &p));
		assert_int_equal(p, ONB_REPROV_REPLACE); /* untouched on refusal */
		assert_true(onb_reprovision_parse("never", &p));
		assert_int_equal(p, ONB_REPROV_NEVER);
		assert_string_equal(onb_reprovision_name((enum onb_reprovision)42), "");
	}
}

static void directory(void **state)
{
	struct onb_template_set *set = NULL;
	struct onb_err err;
	char missing[PATH_MAX + 16];
	const char *tpl = "{\"parameters\":{\"S\":{}},\"thingName\":\"${S}\"}";

	assert_int_equal(onb_template_set_load(dir, &set, &err), ONB_ENOTFOUND);
	write_file("b.json", tpl);
	write_file("a.json", tpl);
	write_file("README.txt", "not a template");
	write_file(".hidden.json", "garbage");
	assert_int_equal(onb_template_set_load(dir, &set, &err), ONB_OK);
	assert_int_equal(set->n, 2);
	assert_non_null(onb_template_find(set, "a"));
	assert_non_null(onb_template_find(set, "b"));
	assert_null(onb_template_find(set, "c"));
	assert_null(onb_template_find(set, "README"));
	onb_template_set_free(set);
	set = NULL;

	write_file("broken.json", "{\"thingName\":");
	assert_int_equal(onb_template_set_load(dir, &set, &err), ONB_EINVAL);
	assert_null(set);
	assert_non_null(strstr(err.msg, "broken.json"));
	remove_file("broken.json");
	write_file("bad name.json", tpl);
	assert_int_equal(onb_template_set_load(dir, &set, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "template names"));
	remove_file("bad name.json");

	snprintf(missing, sizeof(missing), "%s/nope", dir);
	assert_int_equal(onb_template_set_load(missing, &set, &err), ONB_EUNAVAIL);
	onb_template_set_free(NULL);
	onb_template_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_and_defaults),
		cmocka_unit_test(full_template),
		cmocka_unit_test(alternation_cannot_unanchor),
		cmocka_unit_test(pattern_cost),
		cmocka_unit_test(thing_name_limits),
		cmocka_unit_test(parse_errors),
		cmocka_unit_test(limits),
		cmocka_unit_test(shipped_default),
		cmocka_unit_test(reprovision_policy),
		cmocka_unit_test(directory),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
