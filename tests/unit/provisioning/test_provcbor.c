/* The CBOR fleet-provisioning documents (lib/provisioning/provcbor.c), the codec table
 * (lib/provisioning/provcodec.c) and the binary payloads of the envelopes (lib/provisioning/envelope.c,
 * lib/provisioning/provision.c): round trips, each strict-decoding refusal, size caps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cJSON.h>

#include "pki/csr.h"
#include "provisioning/provcbor.h"
#include "provisioning/provision.h"

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CSR_CBOR "$aws/certificates/create-from-csr/cbor"
#define REG_CBOR "$aws/provisioning-templates/default/provision/cbor"

/* The CBOR of a JSON text (through onb_provcbor_from_json). */
static struct onb_prov_doc cbor_of(const char *json)
{
	struct onb_prov_doc d;
	struct onb_err err;
	cJSON *j = cJSON_Parse(json);

	assert_non_null(j);
	assert_int_equal(onb_provcbor_from_json(j, &d, &err), ONB_OK);
	cJSON_Delete(j);
	return d;
}

/* The JSON text of a CBOR document (caller frees with cJSON_free). */
static char *json_of(const struct onb_prov_doc *d)
{
	struct onb_err err;
	cJSON *j = onb_provcbor_to_json(d->data, d->len, ONB_PROVCBOR_TOOL_DEPTH_MAX, &err);
	char *s;

	assert_non_null(j);
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

/* parse a CSR request of n bytes; the errorCode on failure, NULL on success */
static const char *csr_code(const void *buf, size_t n)
{
	const char *code = NULL;
	char *csr = NULL;
	size_t len = 0;
	struct onb_err err;
	int ret = onb_provcbor_csr_request_parse(buf, n, &csr, &len, &code, &err);

	free(csr);
	if(ret == ONB_OK) return NULL;
	assert_non_null(code);
	return code;
}

static const char *reg_code(const void *buf, size_t n)
{
	struct onb_prov_register_req req;
	const char *code = NULL;
	struct onb_err err;

	if(onb_provcbor_register_request_parse(buf, n, &req, &code, &err) == ONB_OK) return NULL;
	assert_non_null(code);
	return code;
}

static void requests_round_trip(void **state)
{
	struct onb_prov_doc d = cbor_of("{\"certificateSigningRequest\":\"-----BEGIN\\nx\",\"extra\":[1,{\"a\":null}]}");
	struct onb_prov_register_req req;
	const char *code = NULL;
	struct onb_err err;
	char *csr = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(onb_provcbor_csr_request_parse(d.data, d.len, &csr, &len, &code, &err), ONB_OK);
	assert_string_equal(csr, "-----BEGIN\nx");
	assert_int_equal(len, 12);
	free(csr);
	onb_prov_doc_clear(&d);
	assert_null(d.data);

	d = cbor_of("{\"certificateOwnershipToken\":\"tok\",\"parameters\":{\"SerialNumber\":\"SN1\",\"Site\":\"lab\"}}");
	assert_int_equal(onb_provcbor_register_request_parse(d.data, d.len, &req, &code, &err), ONB_OK);
	assert_string_equal(req.token, "tok");
	assert_int_equal(req.nparams, 2);
	assert_string_equal(onb_prov_param_get(&req, "SerialNumber"), "SN1");
	assert_string_equal(onb_prov_param_get(&req, "Site"), "lab");
	onb_prov_doc_clear(&d);

	/* parameters absent or null: none */
	d = cbor_of("{\"certificateOwnershipToken\":\"tok\",\"parameters\":null}");
	assert_int_equal(onb_provcbor_register_request_parse(d.data, d.len, &req, &code, &err), ONB_OK);
	assert_int_equal(req.nparams, 0);
	onb_prov_doc_clear(&d);

	/* CreateKeysAndCertificate: nothing, or any map */
	assert_int_equal(onb_provcbor_keys_request_parse("", 0, &code, &err), ONB_OK);
	assert_int_equal(onb_provcbor_keys_request_parse("\xa0", 1, &code, &err), ONB_OK);
	assert_int_not_equal(onb_provcbor_keys_request_parse("\x80", 1, &code, &err), ONB_OK);
	assert_string_equal(code, ONB_PE_INVALID_PAYLOAD);
}

/* Indefinite lengths, as a streaming encoder writes them: maps, chunked strings. */
static void indefinite_lengths(void **state)
{
	/* {_ "certificateSigningRequest": (_ "ab", "cd") } */
	static const unsigned char csr[] = "\xbf\x78\x19" "certificateSigningRequest" "\x7f\x62" "ab" "\x62" "cd" "\xff\xff";
	/* {_ "certificateOwnershipToken": "t", "parameters": {_ "S": "v" } } */
	static const unsigned char reg[] = "\xbf\x78\x19" "certificateOwnershipToken" "\x61t" "\x6a" "parameters"
		"\xbf\x61S\x61v\xff\xff";
	struct onb_prov_register_req req;
	const char *code = NULL;
	struct onb_err err;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(onb_provcbor_csr_request_parse(csr, sizeof(csr) - 1, &out, &len, &code, &err), ONB_OK);
	assert_string_equal(out, "abcd");
	free(out);
	assert_int_equal(onb_provcbor_register_request_parse(reg, sizeof(reg) - 1, &req, &code, &err), ONB_OK);
	assert_string_equal(req.token, "t");
	assert_string_equal(onb_prov_param_get(&req, "S"), "v");
	/* an indefinite key (chunked) is still the key */
	static const unsigned char chunked_key[] = "\xa1\x7f\x78\x18" "certificateSigningReques" "\x61t\xff\x61x";
	assert_null(csr_code(chunked_key, sizeof(chunked_key) - 1));
}

/* Each strict-decoding rule refuses with InvalidPayload. */
static void strict_refusals(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
	} bad[] = {
#define B(what, lit) { what, lit, sizeof(lit) - 1 }
		B("empty", ""),
		B("truncated map", "\xa1\x78\x19" "certificateSigningRequest" "\x63" "ab"),
		B("truncated head", "\xa1\x79"),
		B("array at the top", "\x81\xa0"),
		B("text at the top", "\x61x"),
		B("integer at the top", "\x01"),
		B("JSON text", "{\"certificateSigningRequest\":\"x\"}"),
		B("duplicate key", "\xa2\x78\x19" "certificateSigningRequest" "\x61x" "\x78\x19" "certificateSigningRequest" "\x61y"),
		B("integer key", "\xa2\x78\x19" "certificateSigningRequest" "\x61x" "\x01\x61y"),
		B("byte-string key", "\xa2\x78\x19" "certificateSigningRequest" "\x61x" "\x41k\x61y"),
		B("CSR as bytes", "\xa1\x78\x19" "certificateSigningRequest" "\x41x"),
		B("CSR as integer", "\xa1\x78\x19" "certificateSigningRequest" "\x01"),
		B("CSR missing", "\xa1\x61x\x61y"),
		B("NUL in the CSR", "\xa1\x78\x19" "certificateSigningRequest" "\x63" "a\0b"),
		B("tag", "\xa1\x78\x19" "certificateSigningRequest" "\xc0\x61x"),
		B("data after the map", "\xa1\x78\x19" "certificateSigningRequest" "\x61x\x00"),
		B("two maps", "\xa0\xa0"),
		B("indefinite map without its break", "\xbf\x78\x19" "certificateSigningRequest" "\x61x"),
		B("indefinite map with a key and no value", "\xbf\x78\x19" "certificateSigningRequest" "\x61x\x61y\xff"),
		B("stray break", "\xa1\x61x\xff"),
		B("break in a definite map", "\xa1\xff"),
		B("nested 5 deep", "\xa1\x61x\x81\x81\x81\x81\xa0"),
		B("nested 5 deep, indefinite", "\xa1\x61x\x9f\x9f\x9f\x9f\xa0\xff\xff\xff\xff"),
		B("map claims more pairs than bytes", "\xbb\x00\x00\x00\x01\x00\x00\x00\x00\xa0"),
		B("array claims 2^32 items", "\xa1\x61x\x9a\xff\xff\xff\xff\x00"),
		B("text claims 4 GiB", "\xa1\x61x\x7a\xff\xff\xff\xff" "abc"),
		B("reserved additional info", "\xa1\x61x\x1c"),
		B("number in an indefinite string", "\xa1\x61x\x7f\x01\xff"),
		B("bytes in an indefinite text string", "\xa1\x78\x19" "certificateSigningRequest" "\x7f\x41x\xff"),
#undef B
	};

	(void)state;
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		const char *c = csr_code(bad[i].bytes, bad[i].len);
		if(!c || strcmp(c, ONB_PE_INVALID_PAYLOAD) != 0){
			fail_msg("%s: %s", bad[i].what, c ? c : "accepted");
		}
	}
	/* four levels are fine (an unknown field may hold a small structure) */
	static const char four[] = "\xa2\x78\x19" "certificateSigningRequest" "\x61x" "\x61y\x81\x81\x81\xa0";
	assert_null(csr_code(four, sizeof(four) - 1));
}

/* The limits of the JSON path, and their errorCodes. */
static void size_caps(void **state)
{
	unsigned char *big = malloc(ONB_PROV_PAYLOAD_MAX + 16);
	char *s, key[80], *doc;
	struct onb_prov_doc d;

	(void)state;
	assert_non_null(big);
	memset(big, 0xa0, ONB_PROV_PAYLOAD_MAX + 16);
	assert_string_equal(csr_code(big, ONB_PROV_PAYLOAD_MAX + 1), ONB_PE_PAYLOAD_TOO_LARGE);
	assert_string_equal(reg_code(big, ONB_PROV_PAYLOAD_MAX + 1), ONB_PE_PAYLOAD_TOO_LARGE);
	free(big);

	/* CSR text: 16 KiB is fine (then not a CSR), one byte more is CsrTooLarge */
	s = malloc(ONB_CSR_MAX + 64);
	assert_non_null(s);
	for(size_t len = ONB_CSR_MAX; len <= ONB_CSR_MAX + 1; len++){
		cJSON *j = cJSON_CreateObject();
		memset(s, 'A', len);
		s[len] = '\0';
		cJSON_AddStringToObject(j, "certificateSigningRequest", s);
		assert_int_equal(onb_provcbor_from_json(j, &d, &(struct onb_err){ 0 }), ONB_OK);
		if(len == ONB_CSR_MAX) assert_null(csr_code(d.data, d.len));
		else assert_string_equal(csr_code(d.data, d.len), ONB_CSR_E_TOO_LARGE);
		onb_prov_doc_clear(&d);
		cJSON_Delete(j);
	}
	free(s);

	/* token: 128 bytes fine, 129 or empty InvalidCertificateOwnershipToken */
	{
		char tok[ONB_PROV_TOKEN_MAX + 2], json[512];
		memset(tok, 'a', sizeof(tok) - 1);
		tok[ONB_PROV_TOKEN_MAX] = '\0';
		snprintf(json, sizeof(json), "{\"certificateOwnershipToken\":\"%s\"}", tok);
		d = cbor_of(json);
		assert_null(reg_code(d.data, d.len));
		onb_prov_doc_clear(&d);
		tok[ONB_PROV_TOKEN_MAX] = 'a';
		tok[ONB_PROV_TOKEN_MAX + 1] = '\0';
		snprintf(json, sizeof(json), "{\"certificateOwnershipToken\":\"%s\"}", tok);
		d = cbor_of(json);
		assert_string_equal(reg_code(d.data, d.len), ONB_PE_TOKEN_INVALID);
		onb_prov_doc_clear(&d);
		d = cbor_of("{\"certificateOwnershipToken\":\"\"}");
		assert_string_equal(reg_code(d.data, d.len), ONB_PE_TOKEN_INVALID);
		onb_prov_doc_clear(&d);
		d = cbor_of("{\"certificateOwnershipToken\":7}");
		assert_string_equal(reg_code(d.data, d.len), ONB_PE_INVALID_PAYLOAD);
		onb_prov_doc_clear(&d);
	}

	/* parameters: 32 fine, 33 too many; a value of 256 fine, 257 too long;
	 * not a string, a bad name: InvalidParameters; not a map: InvalidPayload */
	for(int count = 32; count <= 33; count++){
		cJSON *j = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(j, "parameters");
		cJSON_AddStringToObject(j, "certificateOwnershipToken", "t");
		for(int i = 0; i < count; i++){
			snprintf(key, sizeof(key), "P%d", i);
			cJSON_AddStringToObject(p, key, "v");
		}
		assert_int_equal(onb_provcbor_from_json(j, &d, &(struct onb_err){ 0 }), ONB_OK);
		if(count == 32) assert_null(reg_code(d.data, d.len));
		else assert_string_equal(reg_code(d.data, d.len), ONB_PE_INVALID_PARAMS);
		onb_prov_doc_clear(&d);
		cJSON_Delete(j);
	}
	doc = malloc(ONB_PROV_PARAM_VALUE_MAX + 128);
	assert_non_null(doc);
	for(int len = ONB_PROV_PARAM_VALUE_MAX; len <= ONB_PROV_PARAM_VALUE_MAX + 1; len++){
		int k = snprintf(doc, 128, "{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"S\":\"");
		memset(doc + k, 'v', (size_t)len);
		memcpy(doc + k + len, "\"}}", 4);
		d = cbor_of(doc);
		if(len == ONB_PROV_PARAM_VALUE_MAX) assert_null(reg_code(d.data, d.len));
		else assert_string_equal(reg_code(d.data, d.len), ONB_PE_INVALID_PARAMS);
		onb_prov_doc_clear(&d);
	}
	free(doc);
	d = cbor_of("{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"S\":1}}");
	assert_string_equal(reg_code(d.data, d.len), ONB_PE_INVALID_PARAMS);
	onb_prov_doc_clear(&d);
	d = cbor_of("{\"certificateOwnershipToken\":\"t\",\"parameters\":{\"a b\":\"x\"}}");
	assert_string_equal(reg_code(d.data, d.len), ONB_PE_INVALID_PARAMS);
	onb_prov_doc_clear(&d);
	d = cbor_of("{\"certificateOwnershipToken\":\"t\",\"parameters\":[\"x\"]}");
	assert_string_equal(reg_code(d.data, d.len), ONB_PE_INVALID_PAYLOAD);
	onb_prov_doc_clear(&d);
	/* a parameter twice (same name, definite map): InvalidParameters as in JSON */
	static const unsigned char twice[] = "\xa2\x78\x19" "certificateOwnershipToken" "\x61t" "\x6a" "parameters"
		"\xa2\x61S\x61v\x61S\x61w";
	assert_string_equal(reg_code(twice, sizeof(twice) - 1), ONB_PE_INVALID_PARAMS);
	/* an integer parameter name: InvalidPayload (not text) */
	static const unsigned char intname[] = "\xa2\x78\x19" "certificateOwnershipToken" "\x61t" "\x6a" "parameters"
		"\xa1\x01\x61v";
	assert_string_equal(reg_code(intname, sizeof(intname) - 1), ONB_PE_INVALID_PAYLOAD);
}

static void replies(void **state)
{
	struct onb_prov_doc d;
	struct onb_err err;
	cJSON *cfg = cJSON_Parse("{\"interval\":30,\"ratio\":0.5,\"neg\":-300,\"big\":4294967296,\"on\":true,"
			"\"off\":false,\"none\":null,\"list\":[\"a\",{\"b\":[]}]}");
	char *s;

	(void)state;
	assert_int_equal(onb_provcbor_cert_accepted("id", "PEM", NULL, "tok", &d, &err), ONB_OK);
	assert_int_equal(d.format, ONB_PROV_CBOR);
	s = json_of(&d);
	assert_string_equal(s, "{\"certificateId\":\"id\",\"certificatePem\":\"PEM\",\"certificateOwnershipToken\":\"tok\"}");
	cJSON_free(s);
	onb_prov_doc_clear(&d);
	assert_int_equal(onb_provcbor_cert_accepted("id", "PEM", "KEY", "tok", &d, &err), ONB_OK);
	s = json_of(&d);
	assert_string_equal(s, "{\"certificateId\":\"id\",\"certificatePem\":\"PEM\",\"privateKey\":\"KEY\","
			"\"certificateOwnershipToken\":\"tok\"}");
	cJSON_free(s);
	onb_prov_doc_clear(&d);

	assert_int_equal(onb_provcbor_rejected(ONB_PE_THROTTLED, "slow down", &d, &err), ONB_OK);
	/* statusCode as a CBOR unsigned integer (0x19 0x01 0xad = 429) */
	assert_non_null(memchr(d.data, 0x19, d.len));
	s = json_of(&d);
	assert_string_equal(s, "{\"statusCode\":429,\"errorCode\":\"Throttling\",\"errorMessage\":\"slow down\"}");
	cJSON_free(s);
	onb_prov_doc_clear(&d);

	assert_int_equal(onb_provcbor_register_accepted(cfg, "SN1", &d, &err), ONB_OK);
	s = json_of(&d);
	assert_string_equal(s, "{\"deviceConfiguration\":{\"interval\":30,\"ratio\":0.5,\"neg\":-300,\"big\":4294967296,"
			"\"on\":true,\"off\":false,\"none\":null,\"list\":[\"a\",{\"b\":[]}]},\"thingName\":\"SN1\"}");
	cJSON_free(s);
	onb_prov_doc_clear(&d);
	/* fuzz_provcbor: a message quoting invalid UTF-8 reads back (printable
	 * ASCII); -0.0 stays a float (as an integer it would read back as 0) */
	assert_int_equal(onb_provcbor_rejected(ONB_PE_INVALID_PAYLOAD, "bad \xff\xfe\x01 name", &d, &err), ONB_OK);
	s = json_of(&d);
	assert_string_equal(s, "{\"statusCode\":400,\"errorCode\":\"InvalidPayload\",\"errorMessage\":\"bad ??? name\"}");
	cJSON_free(s);
	onb_prov_doc_clear(&d);
	{
		cJSON *neg = cJSON_Parse("{\"z\":-0.0}");
		assert_int_equal(onb_provcbor_from_json(neg, &d, &err), ONB_OK);
		assert_int_equal(d.data[3], 0xfb); /* a double, not the integer 0x00 */
		onb_prov_doc_clear(&d);
		cJSON_Delete(neg);
	}
	assert_int_equal(onb_provcbor_register_accepted(NULL, "SN1", &d, &err), ONB_OK);
	s = json_of(&d);
	assert_string_equal(s, "{\"deviceConfiguration\":{},\"thingName\":\"SN1\"}");
	cJSON_free(s);
	onb_prov_doc_clear(&d);
	cJSON_Delete(cfg);

	/* the same fields as the JSON documents, through the codec table */
	assert_string_equal(onb_prov_codec(ONB_PROV_JSON)->name, "json");
	assert_string_equal(onb_prov_codec(ONB_PROV_CBOR)->name, "cbor");
	assert_int_equal(onb_prov_codec(ONB_PROV_JSON)->rejected(ONB_PE_THROTTLED, "slow down", &d, &err), ONB_OK);
	assert_string_equal((char *)d.data, "{\"statusCode\":429,\"errorCode\":\"Throttling\",\"errorMessage\":\"slow down\"}");
	assert_int_equal(d.len, strlen((char *)d.data));
	onb_prov_doc_clear(&d);
}

static void base64(void **state)
{
	static const unsigned char bin[] = { 0x00, 0xa1, 0xff, 0x00, 0x10 };
	size_t n = 0;
	unsigned char *back;
	char *b64;

	(void)state;
	for(size_t len = 0; len <= sizeof(bin); len++){
		b64 = onb_b64_encode(bin, len);
		assert_non_null(b64);
		assert_int_equal(strlen(b64), (len + 2) / 3 * 4);
		back = onb_b64_decode(b64, strlen(b64), 16, &n);
		assert_non_null(back);
		assert_int_equal(n, len);
		assert_memory_equal(back, bin, len);
		assert_int_equal(back[n], 0);
		free(back);
		free(b64);
	}
	assert_null(onb_b64_decode("AAA", 3, 16, &n));       /* not a multiple of 4 */
	assert_null(onb_b64_decode("AA=A", 4, 16, &n));      /* padding in the middle */
	assert_null(onb_b64_decode("A===", 4, 16, &n));
	assert_null(onb_b64_decode("AA A", 4, 16, &n));      /* a blank */
	assert_null(onb_b64_decode("AA\nA", 4, 16, &n));
	assert_null(onb_b64_decode("AAAA", 4, 2, &n));       /* over max */
	assert_non_null(back = onb_b64_decode("AAA=", 4, 2, &n));
	assert_int_equal(n, 2);
	free(back);
}

/* A CBOR request crosses the broker as base64, NUL bytes and all. */
static void request_envelope_binary(void **state)
{
	static const unsigned char payload[] = { 0xa1, 0x61, 'x', 0x62, 0x00, 0xff };
	struct onb_requester_stamp who = { .client_id = "claim-abc", .idclass = "claim", .fp = FP, .address = "127.0.0.1" };
	enum onb_refusal refused = ONB_REFUSAL_NUL_BYTE;
	struct onb_prov_envelope env;
	struct onb_err err;
	size_t len = 0;
	char *text;
	unsigned char *big;

	(void)state;
	text = onb_envelope_request(&who, CSR_CBOR, payload, sizeof(payload), &len, &refused, &err);
	assert_non_null(text);
	assert_int_equal(refused, ONB_REFUSAL_NONE);
	assert_non_null(strstr(text, "\"payloadBase64\":\"oWF4YgD/\""));
	assert_null(strstr(text, "\"payload\":"));
	assert_int_equal(onb_prov_envelope_decode(text, len, &env, &err), ONB_OK);
	assert_int_equal(env.payload_len, sizeof(payload));
	assert_memory_equal(env.payload, payload, sizeof(payload));
	onb_prov_envelope_clear(&env);
	cJSON_free(text);

	/* the 64 KiB cap holds for CBOR too: a larger one travels as a refusal */
	big = calloc(1, ONB_PROV_PAYLOAD_MAX + 1);
	assert_non_null(big);
	text = onb_envelope_request(&who, CSR_CBOR, big, ONB_PROV_PAYLOAD_MAX + 1, &len, &refused, &err);
	assert_int_equal(refused, ONB_REFUSAL_TOO_LARGE);
	assert_null(strstr(text, "payloadBase64"));
	cJSON_free(text);
	/* exactly 64 KiB travels; a hand-made envelope over it decodes as too large */
	text = onb_envelope_request(&who, CSR_CBOR, big, ONB_PROV_PAYLOAD_MAX, &len, &refused, &err);
	assert_int_equal(refused, ONB_REFUSAL_NONE);
	assert_int_equal(onb_prov_envelope_decode(text, len, &env, &err), ONB_OK);
	assert_int_equal(env.payload_len, ONB_PROV_PAYLOAD_MAX);
	onb_prov_envelope_clear(&env);
	cJSON_free(text);
	{
		char *b64 = onb_b64_encode(big, ONB_PROV_PAYLOAD_MAX + 1);
		size_t cap = strlen(b64) + 512;
		char *hand = malloc(cap);
		int k = snprintf(hand, cap, "{\"v\":1,\"clientId\":\"c\",\"class\":\"claim\",\"fp\":\"" FP "\",\"topic\":\""
				CSR_CBOR "\",\"payloadBase64\":\"%s\"}", b64);
		assert_int_equal(onb_prov_envelope_decode(hand, (size_t)k, &env, &err), ONB_OK);
		assert_int_equal(env.refused, ONB_REFUSAL_TOO_LARGE);
		assert_int_equal(env.refused_len, ONB_PROV_PAYLOAD_MAX + 1);
		assert_null(env.payload);
		onb_prov_envelope_clear(&env);
		free(hand);
		free(b64);
	}
	free(big);

	/* each topic's own field only */
	static const char *const wrong[] = {
		"{\"v\":1,\"clientId\":\"c\",\"class\":\"claim\",\"fp\":\"" FP "\",\"topic\":\"" CSR_CBOR "\",\"payload\":\"{}\"}",
		"{\"v\":1,\"clientId\":\"c\",\"class\":\"claim\",\"fp\":\"" FP "\",\"topic\":\"$aws/certificates/create-from-csr/json\","
			"\"payloadBase64\":\"oA==\"}",
		"{\"v\":1,\"clientId\":\"c\",\"class\":\"claim\",\"fp\":\"" FP "\",\"topic\":\"" CSR_CBOR "\",\"payloadBase64\":\"o A=\"}",
		"{\"v\":1,\"clientId\":\"c\",\"class\":\"claim\",\"fp\":\"" FP "\",\"topic\":\"" CSR_CBOR "\",\"payloadBase64\":1}",
	};
	for(size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++){
		assert_int_equal(onb_prov_envelope_decode(wrong[i], strlen(wrong[i]), &env, &err), ONB_EINVAL);
	}
}

/* claimsvc's CBOR reply crosses back as base64; the plugin checks the pairing. */
static void reply_envelope_binary(void **state)
{
	static const unsigned char doc[] = { 0xa1, 0x61, 'x', 0x00 };
	struct onb_prov_doc d = { .data = (unsigned char *)doc, .len = sizeof(doc), .format = ONB_PROV_CBOR };
	struct onb_reply r;
	struct onb_err err;
	char *text;

	(void)state;
	text = onb_prov_doc_envelope("claim-abc", CSR_CBOR "/accepted", &d, &err);
	assert_non_null(text);
	assert_int_equal(onb_envelope_reply_parse(text, strlen(text), &r, &err), ONB_OK);
	assert_string_equal(r.topic, CSR_CBOR "/accepted");
	assert_int_equal(r.payload_len, sizeof(doc));
	assert_memory_equal(r.payload, doc, sizeof(doc));
	free(r.payload);
	onb_prov_free(text);
	assert_null(onb_envelope_reply_binary("claim-abc", "$aws/certificates/create-from-csr/json/accepted", doc,
			sizeof(doc), &err));
	assert_null(onb_envelope_reply_binary("claim-abc", CSR_CBOR "/accepted", doc, ONB_PROV_REPLY_MAX + 1, &err));

	static const char *const wrong[] = {
		"{\"v\":1,\"clientId\":\"c\",\"topic\":\"" CSR_CBOR "/accepted\",\"payload\":\"x\"}",
		"{\"v\":1,\"clientId\":\"c\",\"topic\":\"" CSR_CBOR "/accepted\",\"payloadBase64\":\"oA==\",\"payload\":\"x\"}",
		"{\"v\":1,\"clientId\":\"c\",\"topic\":\"$aws/certificates/create-from-csr/json/accepted\",\"payloadBase64\":\"oA==\"}",
		"{\"v\":1,\"clientId\":\"c\",\"topic\":\"" REG_CBOR "/rejected\",\"payloadBase64\":\"not base64\"}",
		"{\"v\":1,\"clientId\":\"c\",\"topic\":\"" REG_CBOR "/other\",\"payloadBase64\":\"oA==\"}",
	};
	for(size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++){
		assert_int_equal(onb_envelope_reply_parse(wrong[i], strlen(wrong[i]), &r, &err), ONB_EINVAL);
	}
	static const char ok[] = "{\"v\":1,\"clientId\":\"c\",\"topic\":\"" REG_CBOR "/rejected\",\"payloadBase64\":\"oA==\"}";
	assert_int_equal(onb_envelope_reply_parse(ok, strlen(ok), &r, &err), ONB_OK);
	assert_int_equal(r.payload_len, 1);
	free(r.payload);
}

/* The cbor topics are requests and replies like the json ones. */
static void topics(void **state)
{
	(void)state;
	assert_true(onb_prov_is_request_topic(CSR_CBOR));
	assert_true(onb_prov_is_request_topic("$aws/certificates/create/cbor"));
	assert_true(onb_prov_is_request_topic(REG_CBOR));
	assert_false(onb_prov_is_request_topic(CSR_CBOR "/accepted"));
	assert_true(onb_prov_is_reply_topic(CSR_CBOR "/accepted"));
	assert_true(onb_prov_is_reply_topic(REG_CBOR "/rejected"));
	assert_false(onb_prov_is_reply_topic(REG_CBOR "/other"));
	assert_true(onb_topic_handed_off(CSR_CBOR));
	assert_true(onb_topic_handed_off(REG_CBOR));
	assert_false(onb_topic_handed_off(CSR_CBOR "/accepted"));
	assert_string_equal(onb_request_route(REG_CBOR), ONB_TOPIC_PROV_REQUEST);
	assert_int_equal(onb_prov_topic_format(CSR_CBOR), ONB_PROV_CBOR);
	assert_int_equal(onb_prov_topic_format(REG_CBOR "/accepted"), ONB_PROV_CBOR);
	assert_int_equal(onb_prov_topic_format("$aws/certificates/create-from-csr/json"), ONB_PROV_JSON);
	assert_int_equal(onb_prov_topic_format("devices/d1/certificates/renew"), ONB_PROV_JSON);
	assert_int_equal(onb_prov_topic_format("x/cbor"), ONB_PROV_JSON);
	assert_int_equal(onb_prov_topic_format(NULL), ONB_PROV_JSON);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requests_round_trip),
		cmocka_unit_test(indefinite_lengths),
		cmocka_unit_test(strict_refusals),
		cmocka_unit_test(size_caps),
		cmocka_unit_test(replies),
		cmocka_unit_test(base64),
		cmocka_unit_test(request_envelope_binary),
		cmocka_unit_test(reply_envelope_binary),
		cmocka_unit_test(topics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
