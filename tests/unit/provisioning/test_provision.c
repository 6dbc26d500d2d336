/* AWS fleet-provisioning JSON shapes and the internal envelope
 * (lib/provisioning/provision.c): exact field names, caps, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "pki/csr.h"
#include "provisioning/provision.h"

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CSR_TOPIC "$aws/certificates/create-from-csr/json"

/* ---- helpers ---- */

/* A request envelope with one field replaced (or removed when value is NULL)
 * or, with name NULL, the good one. value is raw JSON. */
static char *envelope_with(const char *name, const char *value)
{
	static const char *const fields[][2] = {
		{ "v", "1" }, { "clientId", "\"claim-abc\"" }, { "class", "\"claim\"" },
		{ "fp", "\"" FP "\"" }, { "address", "\"127.0.0.1\"" },
		{ "topic", "\"" CSR_TOPIC "\"" }, { "payload", "\"{\\\"certificateSigningRequest\\\":\\\"x\\\"}\"" },
	};
	size_t cap = 4096 + (value ? strlen(value) : 0), len = 0;
	char *buf = malloc(cap);
	bool replaced = false;

	len += (size_t)snprintf(buf + len, cap - len, "{");
	for(size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++){
		const char *v = fields[i][1];
		if(name && !strcmp(name, fields[i][0])){
			replaced = true;
			if(!value) continue;
			v = value;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\":%s", len > 1 ? "," : "", fields[i][0], v);
	}
	if(name && !replaced && value){
		len += (size_t)snprintf(buf + len, cap - len, ",\"%s\":%s", name, value);
	}
	snprintf(buf + len, cap - len, "}");
	return buf;
}

static int decode(const char *text, struct onb_prov_envelope *env)
{
	struct onb_err err;
	return onb_prov_envelope_decode(text, strlen(text), env, &err);
}

static void expect_envelope_refused(const char *name, const char *value)
{
	struct onb_prov_envelope env;
	char *text = envelope_with(name, value);

	memset(&env, 0, sizeof(env));
	if(decode(text, &env) == ONB_OK) fail_msg("envelope with %s=%s was accepted", name, value ? value : "(none)");
	free(text);
}

/* The string value of field name in a JSON document. */
static char *json_string(const char *doc, const char *name)
{
	cJSON *root = cJSON_Parse(doc);
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, name);
	char *out = cJSON_IsString(item) ? strdup(item->valuestring) : NULL;
	cJSON_Delete(root);
	return out;
}

/* Field names of a JSON object, comma-separated, in order. */
static void field_names(const char *doc, char *buf, size_t len)
{
	cJSON *root = cJSON_Parse(doc);
	size_t n = 0;

	assert_non_null(root);
	buf[0] = '\0';
	for(cJSON *c = root->child; c; c = c->next){
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", c->string);
	}
	cJSON_Delete(root);
}

/* ---- topics ---- */

static void topics(void **state)
{
	struct onb_prov_topic t;
	struct onb_err err;
	char buf[256];

	assert_int_equal(onb_prov_topic_parse(CSR_TOPIC, &t, &err), ONB_OK);
	assert_int_equal(t.kind, ONB_PROV_CREATE_FROM_CSR);
	assert_int_equal(onb_prov_topic_parse("$aws/certificates/create/json", &t, &err), ONB_OK);
	assert_int_equal(t.kind, ONB_PROV_CREATE_KEYS);
	assert_int_equal(onb_prov_topic_parse("$aws/provisioning-templates/fleet_1-a/provision/json", &t, &err), ONB_OK);
	assert_int_equal(t.kind, ONB_PROV_REGISTER_THING);
	assert_string_equal(t.template_name, "fleet_1-a");
	/* well-formed, but a name the service will answer InvalidTemplateName */
	assert_int_equal(onb_prov_topic_parse("$aws/provisioning-templates/a.b/provision/json", &t, &err), ONB_OK);
	assert_false(onb_prov_template_name_valid(t.template_name));

	assert_int_equal(t.format, ONB_PROV_JSON);
	/* the CBOR topics (issue 14): same kinds, format CBOR */
	assert_int_equal(onb_prov_topic_parse("$aws/certificates/create-from-csr/cbor", &t, &err), ONB_OK);
	assert_int_equal(t.kind, ONB_PROV_CREATE_FROM_CSR);
	assert_int_equal(t.format, ONB_PROV_CBOR);
	assert_int_equal(onb_prov_topic_parse("$aws/certificates/create/cbor", &t, &err), ONB_OK);
	assert_int_equal(t.kind, ONB_PROV_CREATE_KEYS);
	assert_int_equal(t.format, ONB_PROV_CBOR);
	assert_int_equal(onb_prov_topic_parse("$aws/provisioning-templates/fleet/provision/cbor", &t, &err), ONB_OK);
	assert_int_equal(t.kind, ONB_PROV_REGISTER_THING);
	assert_int_equal(t.format, ONB_PROV_CBOR);
	assert_string_equal(t.template_name, "fleet");
	assert_int_equal(onb_prov_topic_parse("devices/d1/certificates/renew", &t, &err), ONB_OK);
	assert_int_equal(t.format, ONB_PROV_JSON);
	assert_int_not_equal(onb_prov_topic_parse("$aws/certificates/create-from-csr/xml", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("$aws/certificates/create-from-csr/cbor/accepted", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("$aws/provisioning-templates/fleet/provision/cbor2", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("$aws/provisioning-templates/provision/cbor", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("devices/d1/certificates/renew/cbor", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("$aws/provisioning-templates//provision/json", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("$aws/provisioning-templates/a/b/provision/json", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("$aws/provisioning-templates/+/provision/json", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("$aws/provisioning-templates/#/provision/json", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse(CSR_TOPIC "/accepted", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse("devices/x", &t, &err), ONB_OK);
	assert_int_not_equal(onb_prov_topic_parse(NULL, &t, &err), ONB_OK);

	assert_int_equal(onb_prov_reply_topic(CSR_TOPIC, true, buf, sizeof(buf), &err), ONB_OK);
	assert_string_equal(buf, CSR_TOPIC "/accepted");
	assert_int_equal(onb_prov_reply_topic(CSR_TOPIC, false, buf, sizeof(buf), &err), ONB_OK);
	assert_string_equal(buf, CSR_TOPIC "/rejected");
	assert_int_not_equal(onb_prov_reply_topic(CSR_TOPIC, false, buf, 10, &err), ONB_OK);
}

/* What nobody may receive (acl.c): every request topic, whose original goes
 * on emptied once handed to claimsvc, and the internal tree but for the two
 * routes claimsvc reads. */
static void handed_off_topics(void **state)
{
	(void)state;
	assert_true(onb_topic_handed_off(CSR_TOPIC));
	assert_true(onb_topic_handed_off("$aws/certificates/create/json"));
	assert_true(onb_topic_handed_off("$aws/provisioning-templates/fleet/provision/json"));
	assert_true(onb_topic_handed_off("$aws/provisioning-templates/a.b/provision/json"));
	assert_true(onb_topic_handed_off("devices/dev-1/certificates/renew"));
	assert_true(onb_topic_handed_off(ONB_TOPIC_CLAIM));
	assert_true(onb_topic_handed_off(ONB_TOPIC_PROV_REPLY));
	assert_true(onb_topic_handed_off(ONB_TOPIC_STATS));
	assert_true(onb_topic_handed_off("onb/internal/anything"));

	assert_false(onb_topic_handed_off(ONB_TOPIC_PROV_REQUEST));
	assert_false(onb_topic_handed_off(ONB_TOPIC_CLAIM_REQUEST));
	assert_false(onb_topic_handed_off(CSR_TOPIC "/accepted"));
	assert_false(onb_topic_handed_off("onb/claim/json/accepted"));
	assert_false(onb_topic_handed_off("devices/dev-1/certificates/renew/accepted"));
	assert_false(onb_topic_handed_off("devices/dev-1/telemetry"));
	assert_false(onb_topic_handed_off("onb/other"));
	assert_false(onb_topic_handed_off("$SYS/onboard/broker/b1"));
	assert_false(onb_topic_handed_off("telemetry"));
	assert_false(onb_topic_handed_off(""));
	assert_false(onb_topic_handed_off(NULL));
}

static void template_names(void **state)
{
	assert_true(onb_prov_template_name_valid("default"));
	assert_true(onb_prov_template_name_valid("A-b_9"));
	assert_true(onb_prov_template_name_valid("123456789012345678901234567890123456"));
	assert_false(onb_prov_template_name_valid("1234567890123456789012345678901234567"));
	assert_false(onb_prov_template_name_valid(""));
	assert_false(onb_prov_template_name_valid("a.b"));
	assert_false(onb_prov_template_name_valid("a b"));
	assert_false(onb_prov_template_name_valid("a/b"));
	assert_false(onb_prov_template_name_valid(NULL));
}

static void statuses(void **state)
{
	assert_int_equal(onb_prov_status(ONB_PE_INVALID_PAYLOAD), 400);
	assert_int_equal(onb_prov_status(ONB_CSR_E_WEAK_KEY), 400);
	assert_int_equal(onb_prov_status(ONB_CSR_E_TOO_LARGE), 400);
	assert_int_equal(onb_prov_status(ONB_PE_PAYLOAD_TOO_LARGE), 413);
	assert_int_equal(onb_prov_status(ONB_PE_NOT_FOUND), 404);
	assert_int_equal(onb_prov_status(ONB_PE_TOKEN_INVALID), 403);
	assert_int_equal(onb_prov_status(ONB_PE_CREATE_DISABLED), 403);
	assert_int_equal(onb_prov_status(ONB_PE_THROTTLED), 429);
	assert_int_equal(onb_prov_status(ONB_PE_UNAVAILABLE), 500);
	assert_int_equal(onb_prov_status("NoSuchCode"), 500);
	assert_int_equal(onb_prov_status(NULL), 500);
}

/* ---- envelope ---- */

static void envelope_good(void **state)
{
	struct onb_prov_envelope env;
	char *text = envelope_with("extraField", "{\"ignored\":true}");

	assert_int_equal(decode(text, &env), ONB_OK);
	assert_string_equal(env.client_id, "claim-abc");
	assert_string_equal(env.idclass, "claim");
	assert_string_equal(env.fp, FP);
	assert_string_equal(env.address, "127.0.0.1");
	assert_string_equal(env.topic, CSR_TOPIC);
	assert_string_equal(env.payload, "{\"certificateSigningRequest\":\"x\"}");
	assert_int_equal(env.payload_len, strlen(env.payload));
	assert_false(env.payload_too_large);
	onb_prov_envelope_clear(&env);
	assert_null(env.payload);
	free(text);

	/* address may be absent, null or empty (the plugin sends "") */
	text = envelope_with("address", NULL);
	assert_int_equal(decode(text, &env), ONB_OK);
	assert_string_equal(env.address, "");
	onb_prov_envelope_clear(&env);
	free(text);
	text = envelope_with("address", "\"\"");
	assert_int_equal(decode(text, &env), ONB_OK);
	onb_prov_envelope_clear(&env);
	free(text);
}

static void envelope_refusals(void **state)
{
	static const char *const required[] = { "v", "clientId", "class", "fp", "topic", "payload" };
	char big[400];

	for(size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) expect_envelope_refused(required[i], NULL);
	expect_envelope_refused("v", "2");
	expect_envelope_refused("v", "\"1\"");
	expect_envelope_refused("clientId", "\"\"");
	expect_envelope_refused("clientId", "\"a/b\"");
	expect_envelope_refused("clientId", "\"dev+1\"");
	expect_envelope_refused("clientId", "7");
	memset(big, 'a', 129);
	big[0] = '"';
	big[130] = '"';
	big[131] = '\0';
	expect_envelope_refused("clientId", big);   /* 129 characters */
	expect_envelope_refused("class", "\"Claim\"");
	expect_envelope_refused("class", "\"\"");
	expect_envelope_refused("class", "\"averyveryverylongclass\"");
	expect_envelope_refused("fp", "\"0123\"");
	expect_envelope_refused("fp", "\"" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef" "\"");
	expect_envelope_refused("fp", "\"" FP "00\"");
	memset(big, 'a', sizeof(big));
	big[0] = '"';
	big[100] = '"';
	big[101] = '\0';
	expect_envelope_refused("address", big);
	expect_envelope_refused("address", "\"a\\u0001b\"");
	expect_envelope_refused("topic", "\"\"");
	expect_envelope_refused("topic", "\"a\\nb\"");
	expect_envelope_refused("payload", "{}");
	expect_envelope_refused("payload", "null");
}

static void envelope_malformed(void **state)
{
	struct onb_prov_envelope env;
	struct onb_err err;
	char *good = envelope_with(NULL, NULL), *dup;
	size_t n = strlen(good);
	char *big;

	assert_int_not_equal(decode("", &env), ONB_OK);
	assert_int_not_equal(decode("[]", &env), ONB_OK);
	assert_int_not_equal(decode("\"x\"", &env), ONB_OK);
	assert_int_not_equal(decode("{", &env), ONB_OK);
	/* trailing data after the document */
	dup = malloc(n + 8);
	snprintf(dup, n + 8, "%s {}", good);
	assert_int_not_equal(decode(dup, &env), ONB_OK);
	snprintf(dup, n + 8, "%s \n", good);
	assert_int_equal(decode(dup, &env), ONB_OK);
	onb_prov_envelope_clear(&env);
	free(dup);
	/* a field twice */
	dup = malloc(n + 32);
	snprintf(dup, n + 32, "{\"clientId\":\"evil\",%s", good + 1);
	assert_int_not_equal(decode(dup, &env), ONB_OK);
	free(dup);
	/* \u0000 anywhere */
	dup = envelope_with("payload", "\"{\\\"a\\\":\\\"x\\\\u0000y\\\"}\"");
	assert_int_equal(decode(dup, &env), ONB_OK); /* an escaped backslash-u is just text */
	onb_prov_envelope_clear(&env);
	free(dup);
	dup = envelope_with("payload", "\"x\\u0000y\"");
	assert_int_not_equal(decode(dup, &env), ONB_OK);
	free(dup);
	/* over the envelope cap */
	big = malloc(ONB_PROV_ENVELOPE_MAX + 2);
	memset(big, ' ', ONB_PROV_ENVELOPE_MAX + 1);
	memcpy(big, good, n);
	assert_int_not_equal(onb_prov_envelope_decode(big, ONB_PROV_ENVELOPE_MAX + 1, &env, &err), ONB_OK);
	/* not NUL-terminated: the length is what counts */
	assert_int_equal(onb_prov_envelope_decode(big, ONB_PROV_ENVELOPE_MAX, &env, &err), ONB_OK);
	onb_prov_envelope_clear(&env);
	free(big);
	free(good);
}

static void envelope_payload_too_large(void **state)
{
	struct onb_prov_envelope env;
	size_t n = ONB_PROV_PAYLOAD_MAX + 1;
	char *value = malloc(n + 3), *text;

	memset(value, 'x', n + 2);
	value[0] = '"';
	value[n + 1] = '"';
	value[n + 2] = '\0';
	text = envelope_with("payload", value);
	assert_int_equal(decode(text, &env), ONB_OK);
	assert_true(env.payload_too_large);
	assert_null(env.payload);
	assert_int_equal(env.payload_len, n);
	/* answered like the plugin's refusal of it */
	assert_int_equal(env.refused, ONB_REFUSAL_TOO_LARGE);
	assert_int_equal(env.refused_len, n);
	onb_prov_envelope_clear(&env);
	free(text);
	/* exactly at the cap is fine */
	value[n] = '"';
	value[n + 1] = '\0';
	text = envelope_with("payload", value);
	assert_int_equal(decode(text, &env), ONB_OK);
	assert_false(env.payload_too_large);
	assert_int_equal(strlen(env.payload), ONB_PROV_PAYLOAD_MAX);
	onb_prov_envelope_clear(&env);
	free(text);
	free(value);
}

/* What the plugin sends for a payload it refuses: identity, reason and
 * size, never the payload; decoded back as refused by lib/provisioning/provision.c. */
static void refusal_envelope_round_trip(void **state)
{
	const struct onb_requester_stamp who = { .client_id = "claim-abc", .idclass = "claim", .fp = FP,
		.address = "10.0.0.7" };
	const struct onb_requester_stamp app = { .client_id = "app-acme", .idclass = "service", .fp = FP,
		.tenant = "acme" };
	size_t big_len = ONB_PROV_PAYLOAD_MAX + 1000, len = 0;
	char *big = malloc(big_len), *text, msg[ONB_ERRLEN];
	enum onb_refusal why = ONB_REFUSAL_NONE;
	struct onb_prov_envelope env;
	struct onb_err err;
	cJSON *root;

	memset(big, 'A', big_len);
	text = onb_envelope_request(&who, CSR_TOPIC, big, big_len, &len, &why, &err);
	assert_non_null(text);
	assert_int_equal(why, ONB_REFUSAL_TOO_LARGE);
	assert_int_equal(len, strlen(text));
	assert_true(len < 512);                       /* a flood costs claimsvc small envelopes */
	assert_null(strstr(text, "AAAA"));            /* not one byte of the payload */
	root = cJSON_Parse(text);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "refused")), "too-large");
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(root, "size")), (int)big_len);
	assert_null(cJSON_GetObjectItemCaseSensitive(root, "payload"));
	cJSON_Delete(root);
	assert_int_equal(onb_prov_envelope_decode(text, len, &env, &err), ONB_OK);
	assert_int_equal(env.refused, ONB_REFUSAL_TOO_LARGE);
	assert_int_equal(env.refused_len, big_len);
	assert_true(env.payload_too_large);
	assert_null(env.payload);
	assert_string_equal(env.client_id, "claim-abc");
	assert_string_equal(env.idclass, "claim");
	assert_string_equal(env.fp, FP);
	assert_string_equal(env.address, "10.0.0.7");
	assert_string_equal(env.topic, CSR_TOPIC);
	assert_string_equal(onb_prov_refusal_error(&env, msg, sizeof(msg)), ONB_PE_PAYLOAD_TOO_LARGE);
	assert_non_null(strstr(msg, "66536 bytes"));
	onb_prov_envelope_clear(&env);
	cJSON_free(text);

	/* a NUL byte: a claim request from a tenant back-end keeps its tenant */
	why = ONB_REFUSAL_NONE;
	text = onb_envelope_request(&app, ONB_TOPIC_CLAIM, "{\"claimCode\":\"a\0b\"}", 17, &len, &why, &err);
	assert_non_null(text);
	assert_int_equal(why, ONB_REFUSAL_NUL_BYTE);
	assert_int_equal(onb_prov_envelope_decode(text, len, &env, &err), ONB_OK);
	assert_int_equal(env.refused, ONB_REFUSAL_NUL_BYTE);
	assert_int_equal(env.refused_len, 17);
	assert_false(env.payload_too_large);
	assert_string_equal(env.payload, "");          /* nothing of the device's bytes */
	assert_int_equal(env.payload_len, 0);
	assert_string_equal(env.tenant, "acme");
	assert_string_equal(env.idclass, "service");
	assert_string_equal(onb_prov_refusal_error(&env, msg, sizeof(msg)), ONB_PE_INVALID_PAYLOAD);
	assert_non_null(strstr(msg, "NUL"));
	onb_prov_envelope_clear(&env);
	cJSON_free(text);

	/* exactly 64 KiB without NUL travels as a request */
	why = ONB_REFUSAL_TOO_LARGE;
	text = onb_envelope_request(&who, CSR_TOPIC, big, ONB_PROV_PAYLOAD_MAX, &len, &why, &err);
	assert_non_null(text);
	assert_int_equal(why, ONB_REFUSAL_NONE);
	assert_int_equal(onb_prov_envelope_decode(text, len, &env, &err), ONB_OK);
	assert_int_equal(env.refused, ONB_REFUSAL_NONE);
	assert_int_equal(env.payload_len, ONB_PROV_PAYLOAD_MAX);
	assert_int_equal(memcmp(env.payload, big, ONB_PROV_PAYLOAD_MAX), 0);
	onb_prov_envelope_clear(&env);
	cJSON_free(text);
	free(big);

	assert_string_equal(onb_refusal_name(ONB_REFUSAL_NUL_BYTE), "nul-byte");
	assert_null(onb_refusal_name(ONB_REFUSAL_NONE));
	assert_int_equal(onb_refusal_parse("too-large"), ONB_REFUSAL_TOO_LARGE);
	assert_int_equal(onb_refusal_parse("Too-Large"), ONB_REFUSAL_NONE);
	assert_int_equal(onb_refusal_parse(NULL), ONB_REFUSAL_NONE);
}

/* A refusal envelope claimsvc cannot trust is dropped, not answered. */
static void refusal_envelope_malformed(void **state)
{
	struct onb_prov_envelope env;
	char *text;

	/* well-formed first, so each case below fails for its own reason */
	text = envelope_with("payload", NULL);
	strcpy(text + strlen(text) - 1, ",\"refused\":\"nul-byte\",\"size\":5}");
	assert_int_equal(decode(text, &env), ONB_OK);
	assert_int_equal(env.refused, ONB_REFUSAL_NUL_BYTE);
	onb_prov_envelope_clear(&env);
	free(text);

	static const char *const bad[][2] = {
		{ "\"why-not\"", "5" },          /* unknown reason */
		{ "\"\"", "5" },
		{ "1", "5" },                      /* not a string */
		{ "\"nul-byte\"", NULL },         /* no size */
		{ "\"nul-byte\"", "\"5\"" },
		{ "\"nul-byte\"", "-1" },
		{ "\"nul-byte\"", "2.5" },
		{ "\"nul-byte\"", "1e300" },
		{ "\"nul-byte\"", "70000" },      /* over 64 KiB is always too-large */
		{ "\"too-large\"", "65536" },     /* at the cap it is not */
		{ "\"too-large\"", "268435456" }, /* more than MQTT can carry */
	};
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		char extra[128];
		snprintf(extra, sizeof(extra), "%s%s", bad[i][1] ? ",\"size\":" : "", bad[i][1] ? bad[i][1] : "");
		text = envelope_with("payload", NULL);
		text = realloc(text, strlen(text) + 256);
		snprintf(text + strlen(text) - 1, 256, ",\"refused\":%s%s}", bad[i][0], extra);
		memset(&env, 0, sizeof(env));
		if(decode(text, &env) == ONB_OK) fail_msg("refusal envelope accepted: %s", text);
		free(text);
	}
	/* a refusal with a payload too, or the reason twice */
	expect_envelope_refused("refused", "\"nul-byte\",\"size\":5");
	text = envelope_with("payload", NULL);
	text = realloc(text, strlen(text) + 256);
	snprintf(text + strlen(text) - 1, 256, ",\"refused\":\"nul-byte\",\"refused\":\"nul-byte\",\"size\":5}");
	assert_int_not_equal(decode(text, &env), ONB_OK);
	free(text);
}

static void reply_round_trip(void **state)
{
	struct onb_err err;
	const char *doc = "{\"certificateId\":\"ab\",\"certificatePem\":\"-----BEGIN\\nX\\n\"}";
	char *env = onb_prov_reply_encode("claim-abc", CSR_TOPIC "/accepted", doc, &err);
	cJSON *root;
	char names[128];

	assert_non_null(env);
	field_names(env, names, sizeof(names));
	assert_string_equal(names, "v,clientId,topic,payload");
	root = cJSON_Parse(env);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(root, "v")->valueint, 1);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "clientId")->valuestring, "claim-abc");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "topic")->valuestring, CSR_TOPIC "/accepted");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "payload")->valuestring, doc);
	cJSON_Delete(root);
	onb_prov_free(env);

	assert_null(onb_prov_reply_encode("bad/id", "t", doc, &err));
	assert_null(onb_prov_reply_encode("ok", "", doc, &err));
	assert_null(onb_prov_reply_encode("ok", "t", NULL, &err));
	onb_prov_free(NULL);
}

/* ---- requests ---- */

static void csr_request(void **state)
{
	struct onb_err err;
	const char *code = NULL;
	char *csr = NULL, *big;
	size_t len = 0, n;
	const char *good = "{\"certificateSigningRequest\":\"-----BEGIN CERTIFICATE REQUEST-----\\nMII\\n\",\"other\":1}";

	assert_int_equal(onb_prov_csr_request_parse(good, strlen(good), &csr, &len, &code, &err), ONB_OK);
	assert_string_equal(csr, "-----BEGIN CERTIFICATE REQUEST-----\nMII\n");
	assert_int_equal(len, strlen(csr));
	free(csr);

#define REFUSED(text, want) do { \
		code = NULL; \
		assert_int_not_equal(onb_prov_csr_request_parse(text, strlen(text), &csr, &len, &code, &err), ONB_OK); \
		assert_non_null(code); \
		assert_string_equal(code, want); \
	} while(0)
	REFUSED("", ONB_PE_INVALID_PAYLOAD);
	REFUSED("-----BEGIN CERTIFICATE REQUEST-----", ONB_PE_INVALID_PAYLOAD); /* raw PEM, not JSON */
	REFUSED("{}", ONB_PE_INVALID_PAYLOAD);
	REFUSED("[\"x\"]", ONB_PE_INVALID_PAYLOAD);
	REFUSED("{\"certificateSigningRequest\":12}", ONB_PE_INVALID_PAYLOAD);
	REFUSED("{\"CertificateSigningRequest\":\"x\"}", ONB_PE_INVALID_PAYLOAD); /* case matters */
	REFUSED("{\"certificateSigningRequest\":\"x\",\"certificateSigningRequest\":\"y\"}", ONB_PE_INVALID_PAYLOAD);
	/* a CSR string one byte over the CSR cap */
	n = ONB_CSR_MAX + 1;
	big = malloc(n + 64);
	len = (size_t)snprintf(big, n + 64, "{\"certificateSigningRequest\":\"");
	memset(big + len, 'A', n);
	snprintf(big + len + n, 64, "\"}");
	REFUSED(big, ONB_CSR_E_TOO_LARGE);
	free(big);
	/* a payload over the payload cap */
	big = malloc(ONB_PROV_PAYLOAD_MAX + 2);
	memset(big, ' ', ONB_PROV_PAYLOAD_MAX + 1);
	big[ONB_PROV_PAYLOAD_MAX + 1] = '\0';
	REFUSED(big, ONB_PE_PAYLOAD_TOO_LARGE);
	free(big);
#undef REFUSED
}

static void keys_request(void **state)
{
	struct onb_err err;
	const char *code = NULL;

	assert_int_equal(onb_prov_keys_request_parse("", 0, &code, &err), ONB_OK);
	assert_int_equal(onb_prov_keys_request_parse("{}", 2, &code, &err), ONB_OK);
	assert_int_equal(onb_prov_keys_request_parse(" \n", 2, &code, &err), ONB_OK);
	assert_int_not_equal(onb_prov_keys_request_parse("[]", 2, &code, &err), ONB_OK);
	assert_string_equal(code, ONB_PE_INVALID_PAYLOAD);
}

static int reg_parse(const char *text, struct onb_prov_register_req *req, const char **code)
{
	struct onb_err err;
	*code = NULL;
	return onb_prov_register_request_parse(text, strlen(text), req, code, &err);
}

/* The canonical text of a RegisterThing request (how a resent request is
 * recognised): the parameters' order does not matter, anything else does. */
static void register_canonical(void **state)
{
	static const char *const same[] = {
		"{\"certificateOwnershipToken\":\"t1\",\"parameters\":{\"SerialNumber\":\"SN-1\",\"Site\":\"lab\"}}",
		"{\"parameters\":{\"Site\":\"lab\",\"SerialNumber\":\"SN-1\"},\"certificateOwnershipToken\":\"t2\",\"x\":1}",
	};
	static const char *const other[] = {
		"{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"SerialNumber\":\"SN-1\"}}",
		"{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"SerialNumber\":\"SN-2\",\"Site\":\"lab\"}}",
		"{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"SerialNumber\":\"SN-1\",\"Site\":\"lab\",\"X\":\"\"}}",
		/* values that would collide in a naive concatenation */
		"{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"SerialNumber\":\"SN-1\\\",\\\"Site\",\"lab\":\"\"}}",
	};
	struct onb_prov_register_req *req = calloc(1, sizeof(*req));
	struct onb_err err;
	const char *code;
	char *ref, *text;

	assert_int_equal(reg_parse(same[0], req, &code), ONB_OK);
	ref = onb_prov_register_canonical("default", req, &err);
	assert_string_equal(ref, "[\"default\",[\"SerialNumber\",\"SN-1\"],[\"Site\",\"lab\"]]");
	assert_int_equal(reg_parse(same[1], req, &code), ONB_OK);
	text = onb_prov_register_canonical("default", req, &err);
	assert_string_equal(text, ref);      /* the token is not part of it; order is not */
	cJSON_free(text);
	text = onb_prov_register_canonical("sensor", req, &err);
	assert_string_not_equal(text, ref);  /* another template */
	cJSON_free(text);
	for(size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++){
		assert_int_equal(reg_parse(other[i], req, &code), ONB_OK);
		text = onb_prov_register_canonical("default", req, &err);
		assert_non_null(text);
		if(!strcmp(text, ref)) fail_msg("%s is canonically the same as the reference", other[i]);
		cJSON_free(text);
	}
	assert_int_equal(reg_parse("{\"certificateOwnershipToken\":\"t\"}", req, &code), ONB_OK);
	text = onb_prov_register_canonical("default", req, &err);
	assert_string_equal(text, "[\"default\"]");
	cJSON_free(text);
	cJSON_free(ref);
	free(req);
}

static void register_request(void **state)
{
	struct onb_prov_register_req *req = calloc(1, sizeof(*req));
	const char *code;
	char *text;
	size_t cap = 8192, n;

	assert_int_equal(reg_parse("{\"certificateOwnershipToken\":\"tok\",\"parameters\":"
			"{\"SerialNumber\":\"SN-1\",\"Site\":\"lab\"},\"extra\":[1]}", req, &code), ONB_OK);
	assert_string_equal(req->token, "tok");
	assert_int_equal(req->nparams, 2);
	assert_string_equal(onb_prov_param_get(req, "SerialNumber"), "SN-1");
	assert_string_equal(onb_prov_param_get(req, "Site"), "lab");
	assert_null(onb_prov_param_get(req, "serialnumber"));
	assert_int_equal(reg_parse("{\"certificateOwnershipToken\":\"tok\"}", req, &code), ONB_OK);
	assert_int_equal(req->nparams, 0);
	assert_int_equal(reg_parse("{\"certificateOwnershipToken\":\"tok\",\"parameters\":null}", req, &code), ONB_OK);

#define REFUSED(t, want) do { \
		assert_int_not_equal(reg_parse(t, req, &code), ONB_OK); \
		assert_non_null(code); \
		assert_string_equal(code, want); \
	} while(0)
	REFUSED("{}", ONB_PE_INVALID_PAYLOAD);
	REFUSED("{\"certificateOwnershipToken\":5}", ONB_PE_INVALID_PAYLOAD);
	REFUSED("{\"certificateOwnershipToken\":\"\"}", ONB_PE_TOKEN_INVALID);
	REFUSED("{\"certificateOwnershipToken\":\"t\",\"parameters\":[]}", ONB_PE_INVALID_PAYLOAD);
	REFUSED("{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"a\":1}}", ONB_PE_INVALID_PARAMS);
	REFUSED("{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"a\":\"x\",\"a\":\"y\"}}", ONB_PE_INVALID_PARAMS);
	REFUSED("{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"\":\"x\"}}", ONB_PE_INVALID_PARAMS);
	REFUSED("{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"a b\":\"x\"}}", ONB_PE_INVALID_PARAMS);
	REFUSED("{\"certificateOwnershipToken\":\"t\",\"certificateOwnershipToken\":\"u\"}", ONB_PE_INVALID_PAYLOAD);

	text = malloc(cap);
	/* token, name, value one over their caps; one parameter too many */
	n = (size_t)snprintf(text, cap, "{\"certificateOwnershipToken\":\"");
	memset(text + n, 'a', ONB_PROV_TOKEN_MAX + 1);
	snprintf(text + n + ONB_PROV_TOKEN_MAX + 1, cap - n - ONB_PROV_TOKEN_MAX - 1, "\"}");
	REFUSED(text, ONB_PE_TOKEN_INVALID);
	n = (size_t)snprintf(text, cap, "{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"");
	memset(text + n, 'a', ONB_PROV_PARAM_NAME_MAX + 1);
	snprintf(text + n + ONB_PROV_PARAM_NAME_MAX + 1, cap - n - ONB_PROV_PARAM_NAME_MAX - 1, "\":\"x\"}}");
	REFUSED(text, ONB_PE_INVALID_PARAMS);
	n = (size_t)snprintf(text, cap, "{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"a\":\"");
	memset(text + n, 'v', ONB_PROV_PARAM_VALUE_MAX + 1);
	snprintf(text + n + ONB_PROV_PARAM_VALUE_MAX + 1, cap - n - ONB_PROV_PARAM_VALUE_MAX - 1, "\"}}");
	REFUSED(text, ONB_PE_INVALID_PARAMS);
	n = (size_t)snprintf(text, cap, "{\"certificateOwnershipToken\":\"t\",\"parameters\":{");
	for(int i = 0; i <= ONB_PROV_PARAMS_MAX; i++){
		n += (size_t)snprintf(text + n, cap - n, "%s\"p%d\":\"v\"", i ? "," : "", i);
	}
	snprintf(text + n, cap - n, "}}");
	REFUSED(text, ONB_PE_INVALID_PARAMS);
#undef REFUSED
	free(text);
	free(req);
}

/* ---- responses ---- */

static void accepted_documents(void **state)
{
	struct onb_err err;
	const char *pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	char names[256], *doc, *s;
	cJSON *cfg = cJSON_Parse("{\"telemetryTopic\":\"devices/a\",\"n\":3}");

	doc = onb_prov_cert_accepted("abc", pem, NULL, "tok", &err);
	assert_non_null(doc);
	field_names(doc, names, sizeof(names));
	assert_string_equal(names, "certificateId,certificatePem,certificateOwnershipToken");
	s = json_string(doc, "certificatePem");
	assert_string_equal(s, pem);
	free(s);
	onb_prov_free(doc);

	doc = onb_prov_cert_accepted("abc", pem, "-----BEGIN PRIVATE KEY-----\nK\n", "tok", &err);
	field_names(doc, names, sizeof(names));
	assert_string_equal(names, "certificateId,certificatePem,privateKey,certificateOwnershipToken");
	s = json_string(doc, "privateKey");
	assert_string_equal(s, "-----BEGIN PRIVATE KEY-----\nK\n");
	free(s);
	onb_prov_free(doc);

	doc = onb_prov_register_accepted(cfg, "SN-1", &err);
	field_names(doc, names, sizeof(names));
	assert_string_equal(names, "deviceConfiguration,thingName");
	assert_string_equal(doc, "{\"deviceConfiguration\":{\"telemetryTopic\":\"devices/a\",\"n\":3},\"thingName\":\"SN-1\"}");
	onb_prov_free(doc);
	doc = onb_prov_register_accepted(NULL, "SN-1", &err);
	assert_string_equal(doc, "{\"deviceConfiguration\":{},\"thingName\":\"SN-1\"}");
	onb_prov_free(doc);
	cJSON_Delete(cfg);

	doc = onb_prov_rejected(ONB_CSR_E_WEAK_KEY, "RSA key of 1024 bits is too weak", &err);
	assert_string_equal(doc, "{\"statusCode\":400,\"errorCode\":\"WeakKey\","
			"\"errorMessage\":\"RSA key of 1024 bits is too weak\"}");
	onb_prov_free(doc);
	doc = onb_prov_rejected(ONB_PE_THROTTLED, "slow down", &err);
	assert_non_null(strstr(doc, "\"statusCode\":429"));
	onb_prov_free(doc);
}

/* The pre-sized printer copes with the worst escaping (every byte \u00XX). */
static void worst_case_escaping(void **state)
{
	struct onb_err err;
	char ctl[2000], *doc, *s;

	for(size_t i = 0; i < sizeof(ctl) - 1; i++) ctl[i] = (char)(1 + i % 31);
	ctl[sizeof(ctl) - 1] = '\0';
	doc = onb_prov_cert_accepted(ctl, ctl, ctl, ctl, &err);
	assert_non_null(doc);
	s = json_string(doc, "privateKey");
	assert_string_equal(s, ctl);
	free(s);
	s = onb_prov_reply_encode("c", "t", doc, &err);
	assert_non_null(s);
	onb_prov_free(s);
	onb_prov_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(topics),
		cmocka_unit_test(handed_off_topics),
		cmocka_unit_test(template_names),
		cmocka_unit_test(statuses),
		cmocka_unit_test(envelope_good),
		cmocka_unit_test(envelope_refusals),
		cmocka_unit_test(envelope_malformed),
		cmocka_unit_test(envelope_payload_too_large),
		cmocka_unit_test(refusal_envelope_round_trip),
		cmocka_unit_test(refusal_envelope_malformed),
		cmocka_unit_test(reply_round_trip),
		cmocka_unit_test(csr_request),
		cmocka_unit_test(keys_request),
		cmocka_unit_test(register_request),
		cmocka_unit_test(register_canonical),
		cmocka_unit_test(accepted_documents),
		cmocka_unit_test(worst_case_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
