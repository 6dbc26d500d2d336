/* Fleet-provisioning registry (lib/provisioning/provreg.c) against a real, throwaway
 * redis-server (redis_fixture.c): ownership tokens, RegisterThing (the
 * allowlist: test_allowlist.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "registry/lifecycle.h"
#include "provisioning/provreg.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };

/* --------------------------------------------------------------- helpers */

static void make_fp(char out[ONB_FP_HEXLEN + 1], unsigned n)
{
	snprintf(out, ONB_FP_HEXLEN + 1, "%064x", n);
}

static void sha256_hex(const char *s, char out[ONB_FP_HEXLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL), 1);
	for(unsigned i = 0; i < n; i++){
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A requester: its certificate fingerprint is make_fp(fpn). */
struct who {
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_requester r;
};

static void who_init(struct who *w, const char *client_id, const char *idclass, unsigned fpn)
{
	make_fp(w->fp, fpn);
	w->r.client_id = client_id;
	w->r.idclass = idclass;
	w->r.fp = w->fp;
}

/* Issues a token for certificate make_fp(certn) to w. */
static void issue(const struct who *w, unsigned certn, int ttl_s, char token[ONB_TOKEN_HEXLEN + 1])
{
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_err err;

	make_fp(fp, certn);
	if(onb_token_issue(rc, fp, "7f01", 1900000000, &w->r, ttl_s, token, &err) != ONB_OK){
		fail_msg("token issue: %s", err.msg);
	}
}

/* Canonical requests (onb_prov_register_canonical) as claimsvc passes them. */
#define REQUEST_A "[\"default\",[\"SerialNumber\",\"SN-1\"]]"
#define REQUEST_B "[\"default\",[\"SerialNumber\",\"SN-1\"],[\"Site\",\"lab\"]]"

static struct onb_register_thing rt_req(const char *token, const struct who *w, const char *id,
		const char *serial, bool required)
{
	struct onb_register_thing req = {
		.token = token, .requester = &w->r, .device_id = id, .serial = serial,
		.allowlist_required = required, .state = ONB_STATE_UNCLAIMED, .request = REQUEST_A,
	};
	return req;
}

/* What the last rt() said about a replay. */
static bool replayed;

/* RegisterThing; returns the rc and the reason ("" when none). */
static int rt(const struct onb_register_thing *req, const char **reason)
{
	struct onb_err err;

	*reason = "";
	replayed = false;
	return onb_register_thing(rc, req, &actor, &replayed, reason, &err);
}

static void allow(const char *id, const char *serial, const char *birth_fp, const char *batch,
		enum onb_allow_result want)
{
	struct onb_allow_entry e = { .device_id = id, .serial = serial, .birth_fp = birth_fp, .batch = batch };
	enum onb_allow_result res = (enum onb_allow_result)-1;
	struct onb_err err;

	if(onb_allowlist_add(rc, &e, 1, &res, &actor, &err) != ONB_OK) fail_msg("allowlist: %s", err.msg);
	assert_int_equal(res, want);
}

static bool has_bytes(const redisReply *r, const char *needle)
{
	size_t n = strlen(needle);

	if(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS){
		for(size_t i = 0; i + n <= r->len; i++){
			if(!memcmp(r->str + i, needle, n)) return true;
		}
		return false;
	}
	if(r->type == REDIS_REPLY_ARRAY){
		for(size_t i = 0; i < r->elements; i++){
			if(has_bytes(r->element[i], needle)) return true;
		}
	}
	return false;
}

/* True when needle appears in any key name or any value of the database. */
static bool db_contains(const char *needle)
{
	char cursor[32] = "0";
	bool found = false;

	do{
		redisReply *s = redisCommand(rc, "SCAN %s COUNT 1000", cursor);
		assert_non_null(s);
		assert_int_equal(s->type, REDIS_REPLY_ARRAY);
		snprintf(cursor, sizeof(cursor), "%s", s->element[0]->str);
		for(size_t i = 0; i < s->element[1]->elements && !found; i++){
			const redisReply *k = s->element[1]->element[i];
			redisReply *t = redisCommand(rc, "TYPE %b", k->str, k->len), *v = NULL;
			assert_non_null(t);
			if(has_bytes(k, needle)) found = true;
			if(!strcmp(t->str, "hash")) v = redisCommand(rc, "HGETALL %b", k->str, k->len);
			else if(!strcmp(t->str, "string")) v = redisCommand(rc, "GET %b", k->str, k->len);
			else if(!strcmp(t->str, "stream")) v = redisCommand(rc, "XRANGE %b - +", k->str, k->len);
			else fail_msg("unexpected key type %s", t->str);
			assert_non_null(v);
			if(has_bytes(v, needle)) found = true;
			freeReplyObject(v);
			freeReplyObject(t);
		}
		freeReplyObject(s);
	}while(!found && strcmp(cursor, "0") != 0);
	return found;
}

static long long pttl(const char *key) { return int_cmd("PTTL", key); }
static long long exists(const char *key) { return int_cmd("EXISTS", key); }

static void tok_key(const char *token, char *key, size_t len)
{
	char hash[ONB_FP_HEXLEN + 1];
	sha256_hex(token, hash);
	snprintf(key, len, ONB_KEY_TOKEN_FMT, hash);
}

static void pending_key(unsigned certn, char *key, size_t len)
{
	char fp[ONB_FP_HEXLEN + 1];
	make_fp(fp, certn);
	snprintf(key, len, ONB_KEY_PENDING_FMT, fp);
}

/* A snapshot of what a refusal must not change. */
struct snap {
	long long keys, events, audit;
};

static struct snap snap(void)
{
	struct snap s = { dbsize(), exists(ONB_KEY_EVENTS) ? xlen(ONB_KEY_EVENTS) : 0,
		exists(ONB_KEY_AUDIT) ? xlen(ONB_KEY_AUDIT) : 0 };
	return s;
}

/* Nothing but one more audit entry (which may have created the stream). */
static void only_audited(struct snap before, const char *reason)
{
	struct snap now = snap();

	assert_int_equal(now.audit, before.audit + 1);
	assert_int_equal(now.keys, before.keys + (before.audit == 0 ? 1 : 0));
	assert_int_equal(now.events, before.events);
	assert_newest(ONB_KEY_AUDIT, "action", "register-thing");
	assert_newest(ONB_KEY_AUDIT, "result", "refused");
	assert_newest(ONB_KEY_AUDIT, "reason", reason);
}

/* ------------------------------------------------------------------ tokens */

static void token_issue_stores_only_the_hash(void **state)
{
	char t1[ONB_TOKEN_HEXLEN + 1], t2[ONB_TOKEN_HEXLEN + 1], key[128], pend[128], fp[ONB_FP_HEXLEN + 1];
	struct who w;
	redisReply *r;
	int64_t t0 = onb_now_ms();

	(void)state;
	who_init(&w, "claim-1", "claim", 900);
	issue(&w, 1, 3600, t1);
	issue(&w, 2, 3600, t2);
	assert_int_equal(strlen(t1), ONB_TOKEN_HEXLEN);
	assert_int_equal(strspn(t1, "0123456789abcdef"), ONB_TOKEN_HEXLEN);
	assert_string_not_equal(t1, t2);

	/* two token records and two pending entries, nothing else */
	assert_int_equal(dbsize(), 4);
	assert_false(db_contains(t1));
	assert_false(db_contains(t2));

	tok_key(t1, key, sizeof(key));
	pending_key(1, pend, sizeof(pend));
	assert_int_equal(exists(key), 1);
	assert_true(pttl(key) > 3590000 && pttl(key) <= 3600000);
	assert_true(pttl(pend) > 3590000 && pttl(pend) <= 3600000);

	make_fp(fp, 1);
	r = redisCommand(rc, "HMGET %s cert_fp cert_serial not_after client_id idclass requester_fp created", key);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_string_equal(r->element[0]->str, fp);
	assert_string_equal(r->element[1]->str, "7f01");
	assert_string_equal(r->element[2]->str, "1900000000");
	assert_string_equal(r->element[3]->str, "claim-1");
	assert_string_equal(r->element[4]->str, "claim");
	assert_string_equal(r->element[5]->str, w.fp);
	assert_true(strtoll(r->element[6]->str, NULL, 10) >= t0);
	freeReplyObject(r);
	/* the pending entry names the token record, not the token */
	r = redisCommand(rc, "GET %s", pend);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(key + strlen("onb:tok:"), r->str);
	freeReplyObject(r);
	/* issuing writes no audit entry (there is no actor: claimsvc audits the signing) */
	assert_int_equal(exists(ONB_KEY_AUDIT), 0);
}

static void token_issue_refusals(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1] = "untouched", fp[ONB_FP_HEXLEN + 1], dev[ONB_FP_HEXLEN + 1];
	struct onb_register_req reg = { .id = "dev-1", .cert_serial = "01", .not_after = 1900000000,
		.state = ONB_STATE_UNCLAIMED };
	struct onb_err err;
	struct who w, bad;

	(void)state;
	who_init(&w, "claim-1", "claim", 900);
	make_fp(fp, 1);
	/* a second token for one certificate */
	issue(&w, 1, 60, token);
	assert_int_equal(onb_token_issue(rc, fp, "7f01", 1900000000, &w.r, 60, token, &err), ONB_EEXIST);
	/* a certificate already bound */
	make_fp(dev, 2);
	reg.cert_fp = dev;
	assert_int_equal(onb_registry_register(rc, &reg, &actor, &err), ONB_OK);
	memcpy(token, "untouched", 10);
	assert_int_equal(onb_token_issue(rc, dev, "7f01", 1900000000, &w.r, 60, token, &err), ONB_EEXIST);
	assert_string_equal(token, "untouched");

	/* bad arguments: nothing sent */
	long long keys = dbsize();
	make_fp(fp, 3);
	assert_int_equal(onb_token_issue(rc, "ABC", "7f01", 0, &w.r, 60, token, &err), ONB_EINVAL);
	assert_int_equal(onb_token_issue(rc, fp, "7F01", 0, &w.r, 60, token, &err), ONB_EINVAL);
	assert_int_equal(onb_token_issue(rc, fp, "", 0, &w.r, 60, token, &err), ONB_EINVAL);
	assert_int_equal(onb_token_issue(rc, fp, "01", -1, &w.r, 60, token, &err), ONB_EINVAL);
	assert_int_equal(onb_token_issue(rc, fp, "01", 0, &w.r, 0, token, &err), ONB_EINVAL);
	assert_int_equal(onb_token_issue(rc, fp, "01", 0, &w.r, ONB_TOKEN_TTL_MAX + 1, token, &err), ONB_EINVAL);
	assert_int_equal(onb_token_issue(rc, fp, "01", 0, NULL, 60, token, &err), ONB_EINVAL);
	who_init(&bad, "claim 1", "claim", 900);
	assert_int_equal(onb_token_issue(rc, fp, "01", 0, &bad.r, 60, token, &err), ONB_EINVAL);
	who_init(&bad, "claim-1", "service", 900);
	assert_int_equal(onb_token_issue(rc, fp, "01", 0, &bad.r, 60, token, &err), ONB_EINVAL);
	who_init(&bad, "claim-1", "claim", 900);
	bad.r.fp = "xyz";
	assert_int_equal(onb_token_issue(rc, fp, "01", 0, &bad.r, 60, token, &err), ONB_EINVAL);
	assert_string_equal(token, "untouched");
	assert_int_equal(dbsize(), keys);
}

/* The audited variant: the entry is appended with the token, by the same
 * script, and only when the token is recorded. */
static void token_issue_audited_writes_entry_with_token(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], token[ONB_TOKEN_HEXLEN + 1], key[128], got[128];
	const struct onb_audit_entry e = { .actor = "claimsvc:test", .source = "10.1.2.3",
		.action = "create-from-csr", .result = "ok", .reason = "certificate issued" };
	const struct onb_audit_entry incomplete = { .actor = "claimsvc:test", .action = "create-from-csr" };
	struct onb_err err;
	struct snap before;
	struct who w;

	(void)state;
	who_init(&w, "claim-1", "claim", 900);
	make_fp(fp, 7);
	before = snap();
	assert_int_equal(onb_token_issue_audited(rc, fp, "7f01", 1900000000, &w.r, 60, &e, token, &err), ONB_OK);
	tok_key(token, key, sizeof(key));
	assert_int_equal(exists(key), 1);
	assert_int_equal(snap().audit, before.audit + 1);
	assert_newest(ONB_KEY_AUDIT, "actor", "claimsvc:test");
	assert_newest(ONB_KEY_AUDIT, "source", "10.1.2.3");
	assert_newest(ONB_KEY_AUDIT, "action", "create-from-csr");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
	assert_newest(ONB_KEY_AUDIT, "reason", "certificate issued");
	newest_field(ONB_KEY_AUDIT, "ts", got, sizeof(got));
	assert_true(got[0] != '\0');

	/* refused (a second token for the certificate): no entry, nothing written */
	before = snap();
	assert_int_equal(onb_token_issue_audited(rc, fp, "7f01", 1900000000, &w.r, 60, &e, token, &err), ONB_EEXIST);
	assert_int_equal(snap().audit, before.audit);
	assert_int_equal(snap().keys, before.keys);
	/* an entry without a result: refused before anything is sent */
	make_fp(fp, 8);
	assert_int_equal(onb_token_issue_audited(rc, fp, "7f01", 1900000000, &w.r, 60, &incomplete, token, &err),
			ONB_EINVAL);
	assert_int_equal(snap().keys, before.keys);
	assert_int_equal(snap().audit, before.audit);
}

/* --------------------------------------------------------- RegisterThing */

/* Calls of one command so far (INFO commandstats), to see a lookup skipped. */
static long long command_calls(const char *name)
{
	redisReply *r = redisCommand(rc, "INFO commandstats");
	char needle[64];
	const char *p;
	long long n = 0;

	assert_non_null(r);
	snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", name);
	if(r->type == REDIS_REPLY_STRING && (p = strstr(r->str, needle))) n = atoll(p + strlen(needle));
	freeReplyObject(r);
	return n;
}

/* A caller that remembers which certificate it issued the token for
 * (cert_fp_hint) skips reading the token record; a hint that does not match
 * the record is refused like an unknown token, with nothing bound. */
static void register_thing_cert_fp_hint(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], ref[ONB_FP_HEXLEN + 1], fp[ONB_FP_HEXLEN + 1], other[ONB_FP_HEXLEN + 1];
	struct onb_register_thing req;
	struct onb_device d;
	struct onb_err err;
	const char *reason;
	struct snap before;
	long long hgets;
	struct who w;

	(void)state;
	allow("SN-1", "SN-1", NULL, "b1", ONB_ALLOW_ADDED);
	allow("SN-2", "SN-2", NULL, "b1", ONB_ALLOW_ADDED);
	who_init(&w, "claim-1", "claim", 900);

	/* a wrong hint: refused as token-invalid, audited, nothing else written */
	issue(&w, 2, 3600, token);
	make_fp(other, 3);
	req = rt_req(token, &w, "SN-2", "SN-2", true);
	req.cert_fp_hint = other;
	before = snap();
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_TOKEN_INVALID);
	only_audited(before, ONB_RT_TOKEN_INVALID);
	assert_int_equal(onb_registry_device_get(rc, "SN-2", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_MANUFACTURED);

	/* the right hint: registered without an HGET of the token record */
	issue(&w, 1, 3600, token);
	assert_int_equal(onb_token_ref(token, ref, &err), ONB_OK);
	make_fp(fp, 1);
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	req.cert_fp_hint = fp;
	hgets = command_calls("hget");
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_int_equal(command_calls("hget"), hgets);
	assert_int_equal(onb_registry_device_by_fp(rc, fp, &d, &err), ONB_OK);
	assert_string_equal(d.id, "SN-1");
	assert_int_equal(d.state, ONB_STATE_UNCLAIMED);
	assert_int_equal(onb_token_ref("not a token", ref, &err), ONB_EINVAL);
}

static void register_thing_happy_path(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], key[128], pend[128], fp[ONB_FP_HEXLEN + 1], birth[ONB_FP_HEXLEN + 1];
	struct onb_register_thing req;
	struct onb_device d;
	struct onb_err err;
	const char *reason;
	struct who w;
	redisReply *r;

	(void)state;
	make_fp(birth, 77);
	allow("SN-1", "SN-1", birth, "b1", ONB_ALLOW_ADDED);
	assert_int_equal(onb_registry_device_get(rc, "SN-1", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_MANUFACTURED);
	int64_t created = d.created_ms;

	who_init(&w, "claim-1", "claim", 900);
	issue(&w, 1, 3600, token);
	tok_key(token, key, sizeof(key));
	pending_key(1, pend, sizeof(pend));

	req = rt_req(token, &w, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_string_equal(reason, ""); /* untouched on success */

	make_fp(fp, 1);
	assert_int_equal(onb_registry_device_by_fp(rc, fp, &d, &err), ONB_OK);
	assert_string_equal(d.id, "SN-1");
	assert_int_equal(d.state, ONB_STATE_UNCLAIMED);
	assert_string_equal(d.cert_fp, fp);
	assert_string_equal(d.cert_serial, "7f01");
	assert_int_equal(d.not_after, 1900000000);
	assert_string_equal(d.birth_fp, birth);  /* kept from the allowlist */
	assert_string_equal(d.batch, "b1");
	assert_string_equal(d.tenant, "");
	assert_int_equal(d.created_ms, created);
	assert_true(d.provisioned_ms >= created);
	assert_int_equal(d.updated_ms, d.provisioned_ms);
	assert_int_equal(d.claimed_ms, 0);
	r = redisCommand(rc, "HGET onb:dev:{SN-1} serial");
	assert_string_equal(r->str, "SN-1");
	freeReplyObject(r);

	assert_false(replayed);
	/* token used (kept until it expires, for a resent request), pending gone;
	 * device + index + 2 streams + the used token remain */
	assert_int_equal(exists(key), 1);
	assert_true(pttl(key) > 3590000 && pttl(key) <= 3600000);
	r = redisCommand(rc, "HMGET %s used device request", key);
	assert_true(strtoll(r->element[0]->str, NULL, 10) >= created);
	assert_string_equal(r->element[1]->str, "SN-1");
	char request_hash[ONB_FP_HEXLEN + 1];
	sha256_hex(REQUEST_A, request_hash);
	assert_string_equal(r->element[2]->str, request_hash); /* its hash, not the request */
	freeReplyObject(r);
	assert_int_equal(exists(pend), 0);
	assert_int_equal(dbsize(), 5);
	assert_int_equal(xlen(ONB_KEY_EVENTS), 1);
	assert_newest(ONB_KEY_EVENTS, "type", "state");
	assert_newest(ONB_KEY_EVENTS, "device", "SN-1");
	assert_newest(ONB_KEY_EVENTS, "state", "unclaimed");
	assert_int_equal(xlen(ONB_KEY_AUDIT), 2); /* the allowlist batch, the registration */
	assert_newest(ONB_KEY_AUDIT, "action", "register-thing");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
	assert_newest(ONB_KEY_AUDIT, "device", "SN-1");
	assert_newest(ONB_KEY_AUDIT, "from", "manufactured");
	assert_newest(ONB_KEY_AUDIT, "to", "unclaimed");
	assert_newest(ONB_KEY_AUDIT, "cert_fp", fp);
	assert_newest(ONB_KEY_AUDIT, "client_id", "claim-1");
	assert_newest(ONB_KEY_AUDIT, "requester_fp", w.fp);
	assert_newest(ONB_KEY_AUDIT, "actor", "test:unit");
	assert_false(db_contains(token));
	assert_false(db_contains(REQUEST_A));
}

/* Count of audit entries whose field name is value. */
static long long audit_count(const char *name, const char *value)
{
	redisReply *r = redisCommand(rc, "XRANGE %s - +", ONB_KEY_AUDIT);
	long long n = 0;

	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	for(size_t i = 0; i < r->elements; i++){
		const redisReply *f = r->element[i]->element[1];
		for(size_t j = 0; j + 1 < f->elements; j += 2){
			if(!strcmp(f->element[j]->str, name) && !strcmp(f->element[j + 1]->str, value)) n++;
		}
	}
	freeReplyObject(r);
	return n;
}

/* The answer to a RegisterThing was lost: its requester sends the same
 * request with the same token again and is told it succeeded; nothing is
 * registered twice, and nobody else, and no other request, gets anything
 * from the used token. */
static void register_thing_replay(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], key[128], fp[ONB_FP_HEXLEN + 1];
	struct onb_register_thing req, other;
	struct onb_device before, after;
	struct onb_err err;
	const char *reason;
	struct who w, other_id, other_fp, other_class;

	(void)state;
	allow("SN-1", "SN-1", NULL, NULL, ONB_ALLOW_ADDED);
	allow("SN-2", "SN-2", NULL, NULL, ONB_ALLOW_ADDED);
	who_init(&w, "claim-1", "claim", 900);
	issue(&w, 1, 3600, token);
	tok_key(token, key, sizeof(key));
	make_fp(fp, 1);
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_false(replayed);
	assert_int_equal(onb_registry_device_get(rc, "SN-1", &before, &err), ONB_OK);
	long long ttl = pttl(key);

	/* the same requester, token and request: accepted again, as a replay */
	for(int i = 0; i < 2; i++){
		struct snap s = snap();
		assert_int_equal(rt(&req, &reason), ONB_OK);
		assert_true(replayed);
		assert_string_equal(reason, "");
		struct snap now = snap();
		assert_int_equal(now.audit, s.audit + 1);
		assert_int_equal(now.events, s.events);   /* no state event: brokers have nothing to do */
		assert_int_equal(now.keys, s.keys);
		assert_newest(ONB_KEY_AUDIT, "action", "register-thing");
		assert_newest(ONB_KEY_AUDIT, "result", "replay");
		assert_newest(ONB_KEY_AUDIT, "device", "SN-1");
		assert_newest(ONB_KEY_AUDIT, "cert_fp", fp);
		assert_newest(ONB_KEY_AUDIT, "client_id", "claim-1");
		assert_newest(ONB_KEY_AUDIT, "requester_fp", w.fp);
	}
	assert_int_equal(audit_count("result", "ok") - 2, 1); /* the two allowlist batches, one registration */
	assert_int_equal(audit_count("result", "replay"), 2);
	assert_int_equal(onb_registry_device_get(rc, "SN-1", &after, &err), ONB_OK);
	assert_int_equal(after.state, before.state);
	assert_string_equal(after.cert_fp, before.cert_fp);
	assert_int_equal(after.updated_ms, before.updated_ms);   /* not even `updated` moved */
	assert_int_equal(after.provisioned_ms, before.provisioned_ms);
	assert_true(pttl(key) <= ttl && pttl(key) > ttl - 5000); /* the replay did not extend the token */

	/* another connection, certificate or class presenting it: refused */
	who_init(&other_id, "claim-2", "claim", 900);
	who_init(&other_fp, "claim-1", "claim", 901);
	who_init(&other_class, "claim-1", "birth", 900);
	const struct who *others[] = { &other_id, &other_fp, &other_class };
	for(size_t i = 0; i < 3; i++){
		struct snap s = snap();
		other = rt_req(token, others[i], "SN-1", "SN-1", true);
		assert_int_equal(rt(&other, &reason), ONB_EREFUSED);
		assert_false(replayed);
		assert_string_equal(reason, ONB_RT_TOKEN_USED);
		only_audited(s, ONB_RT_TOKEN_USED);
		assert_newest(ONB_KEY_AUDIT, "client_id", others[i]->r.client_id);
	}
	/* the same requester with other parameters: refused, whatever they name */
	struct snap s = snap();
	other = rt_req(token, &w, "SN-1", "SN-1", true);
	other.request = REQUEST_B;
	assert_int_equal(rt(&other, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_TOKEN_USED);
	only_audited(s, ONB_RT_TOKEN_USED);
	/* ... a second device: never, whatever the request */
	s = snap();
	other = rt_req(token, &w, "SN-2", "SN-2", true);
	assert_int_equal(rt(&other, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_TOKEN_USED);
	only_audited(s, ONB_RT_TOKEN_USED);
	assert_int_equal(onb_registry_device_get(rc, "SN-2", &after, &err), ONB_OK);
	assert_int_equal(after.state, ONB_STATE_MANUFACTURED);
	/* ... other settings for the same thing (a changed template): refused */
	other = rt_req(token, &w, "SN-1", "SN-1", true);
	other.request = REQUEST_A;
	other.device_id = "SN-1x";
	assert_int_equal(rt(&other, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_TOKEN_USED);

	/* once the binding is gone (decommissioned), the replay no longer holds */
	assert_int_equal(onb_device_decommission(rc, "SN-1", "factory reset", &actor, NULL, &err), ONB_OK);
	s = snap();
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_TOKEN_USED);
	only_audited(s, ONB_RT_TOKEN_USED);
	assert_int_equal(onb_registry_device_get(rc, "SN-1", &after, &err), ONB_OK);
	assert_int_equal(after.state, ONB_STATE_MANUFACTURED);  /* not re-registered by it */
	assert_false(db_contains(token));
}

/* Active with a tenant and a policy, in birth mode, with the allowlist off. */
static void register_thing_optional_allowlist(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1];
	struct onb_register_thing req;
	struct onb_device d;
	struct onb_err err;
	const char *reason;
	struct who w;

	(void)state;
	who_init(&w, "SN-9", "birth", 901);
	issue(&w, 1, 60, token);
	req = rt_req(token, &w, "thing-SN-9", "SN-9", false);
	req.state = ONB_STATE_ACTIVE;
	req.tenant = "acme";
	req.policy = "sensor-v2";
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_int_equal(onb_registry_device_get(rc, "thing-SN-9", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_ACTIVE);
	assert_string_equal(d.tenant, "acme");
	assert_string_equal(d.policy, "sensor-v2");
	assert_string_equal(d.birth_fp, w.fp); /* remembered: nothing was listed */
	assert_true(d.created_ms > 0);
	assert_int_equal(d.claimed_ms, d.provisioned_ms);
	assert_newest(ONB_KEY_EVENTS, "tenant", "acme");
	assert_newest(ONB_KEY_EVENTS, "policy", "sensor-v2");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
	assert_newest(ONB_KEY_AUDIT, "class", "birth");
	assert_newest(ONB_KEY_AUDIT, "to", "active");
}

static void register_thing_foreign_token(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], key[128];
	struct onb_register_thing req;
	struct onb_device d;
	struct onb_err err;
	const char *reason;
	struct who owner, other_id, other_fp, other_class;

	(void)state;
	allow("SN-1", "SN-1", NULL, NULL, ONB_ALLOW_ADDED);
	who_init(&owner, "claim-1", "claim", 900);
	who_init(&other_id, "claim-2", "claim", 900);   /* same claim certificate, other connection */
	who_init(&other_fp, "claim-1", "claim", 901);   /* same client id, other certificate */
	who_init(&other_class, "claim-1", "birth", 900);
	issue(&owner, 1, 60, token);
	tok_key(token, key, sizeof(key));

	const struct who *thieves[] = { &other_id, &other_fp, &other_class };
	for(size_t i = 0; i < 3; i++){
		struct snap s = snap();
		req = rt_req(token, thieves[i], "SN-1", "SN-1", true);
		assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
		assert_string_equal(reason, ONB_RT_TOKEN_FOREIGN);
		only_audited(s, ONB_RT_TOKEN_FOREIGN);
		assert_newest(ONB_KEY_AUDIT, "client_id", thieves[i]->r.client_id);
		assert_newest(ONB_KEY_AUDIT, "requester_fp", thieves[i]->r.fp);
		assert_int_equal(exists(key), 1);
		assert_int_equal(onb_registry_device_get(rc, "SN-1", &d, &err), ONB_OK);
		assert_int_equal(d.state, ONB_STATE_MANUFACTURED);
		assert_string_equal(d.cert_fp, "");
	}
	/* the foreign presentations did not burn the token for its owner */
	req = rt_req(token, &owner, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_false(replayed);
}

static void register_thing_not_allowlisted(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], key[128];
	struct onb_register_thing req;
	const char *reason;
	struct who w;

	(void)state;
	who_init(&w, "claim-1", "claim", 900);
	issue(&w, 1, 60, token);
	tok_key(token, key, sizeof(key));
	struct snap s = snap();
	req = rt_req(token, &w, "SN-404", "SN-404", true);
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_NOT_ALLOWLISTED);
	only_audited(s, ONB_RT_NOT_ALLOWLISTED);
	assert_newest(ONB_KEY_AUDIT, "device", "SN-404");
	assert_int_equal(exists("onb:dev:{SN-404}"), 0);
	assert_int_equal(exists(key), 1); /* a refusal does not consume the token */

	/* listed under another serial: the template and the import disagree */
	allow("SN-404", "SN-405", NULL, NULL, ONB_ALLOW_ADDED);
	s = snap();
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_NOT_ALLOWLISTED);
	only_audited(s, ONB_RT_NOT_ALLOWLISTED);

	/* the operator lists it; the same token now works */
	req.serial = "SN-405";
	assert_int_equal(rt(&req, &reason), ONB_OK);
}

static void register_thing_already_provisioned(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], fp[ONB_FP_HEXLEN + 1];
	struct onb_register_req reg = { .id = "SN-1", .cert_serial = "01", .not_after = 1900000000,
		.state = ONB_STATE_UNCLAIMED };
	struct onb_register_thing req;
	struct onb_err err;
	const char *reason;
	struct who w;

	(void)state;
	who_init(&w, "claim-1", "claim", 900);
	/* provisioned before (has an operational certificate) */
	make_fp(fp, 50);
	reg.cert_fp = fp;
	assert_int_equal(onb_registry_register(rc, &reg, &actor, &err), ONB_OK);
	issue(&w, 1, 60, token);
	struct snap s = snap();
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_PROVISIONED);
	only_audited(s, ONB_RT_PROVISIONED);
	req.allowlist_required = false;
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_PROVISIONED);

	/* allowlisted, then revoked before it ever enrolled: no certificate,
	 * but no longer manufactured */
	allow("SN-2", "SN-2", NULL, NULL, ONB_ALLOW_ADDED);
	assert_int_equal(onb_registry_set_state(rc, "SN-2", ONB_STATE_REVOKED, "lost in transit", &actor, NULL, &err),
			ONB_OK);
	s = snap();
	req = rt_req(token, &w, "SN-2", "SN-2", true);
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_PROVISIONED);
	only_audited(s, ONB_RT_PROVISIONED);
}

static void register_thing_birth_mismatch(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], listed[ONB_FP_HEXLEN + 1];
	struct onb_register_thing req;
	struct onb_device d;
	struct onb_err err;
	const char *reason;
	struct who clone, real;

	(void)state;
	make_fp(listed, 500);
	allow("SN-1", "SN-1", listed, NULL, ONB_ALLOW_ADDED);
	who_init(&clone, "SN-1", "birth", 501);
	who_init(&real, "SN-1", "birth", 500);

	issue(&clone, 1, 60, token);
	struct snap s = snap();
	req = rt_req(token, &clone, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_BIRTH_MISMATCH);
	only_audited(s, ONB_RT_BIRTH_MISMATCH);
	assert_newest(ONB_KEY_AUDIT, "requester_fp", clone.fp);
	/* allowlist optional changes nothing: the record lists a birth certificate */
	req.allowlist_required = false;
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_BIRTH_MISMATCH);
	assert_int_equal(onb_registry_device_get(rc, "SN-1", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_MANUFACTURED);

	issue(&real, 2, 60, token);
	req = rt_req(token, &real, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_int_equal(onb_registry_device_get(rc, "SN-1", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_UNCLAIMED);
	assert_string_equal(d.birth_fp, listed);
}

static void register_thing_cert_bound(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], fp[ONB_FP_HEXLEN + 1], key[128];
	struct onb_register_req reg = { .id = "other", .cert_serial = "01", .not_after = 1900000000,
		.state = ONB_STATE_UNCLAIMED };
	struct onb_register_thing req;
	struct onb_err err;
	const char *reason;
	struct who w;

	(void)state;
	allow("SN-1", "SN-1", NULL, NULL, ONB_ALLOW_ADDED);
	who_init(&w, "claim-1", "claim", 900);
	issue(&w, 1, 60, token);
	tok_key(token, key, sizeof(key));
	/* an operator binds the issued certificate by hand meanwhile */
	make_fp(fp, 1);
	reg.cert_fp = fp;
	assert_int_equal(onb_registry_register(rc, &reg, &actor, &err), ONB_OK);
	struct snap s = snap();
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_CERT_BOUND);
	only_audited(s, ONB_RT_CERT_BOUND);
	assert_int_equal(exists(key), 1);
}

static void register_thing_expired_token(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], pend[128], key[128];
	struct onb_register_thing req;
	const char *reason;
	struct who w;

	(void)state;
	allow("SN-1", "SN-1", NULL, NULL, ONB_ALLOW_ADDED);
	who_init(&w, "claim-1", "claim", 900);
	issue(&w, 1, 1, token);
	pending_key(1, pend, sizeof(pend));
	sleep_ms(1100);
	assert_int_equal(exists(pend), 0); /* the issued certificate is forgotten too */
	struct snap s = snap();
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_TOKEN_INVALID);
	only_audited(s, ONB_RT_TOKEN_INVALID);

	/* a used token expires at the same time as it would have unused: after
	 * that, its own request resent is an unknown token */
	issue(&w, 2, 1, token);
	tok_key(token, key, sizeof(key));
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_false(replayed);
	assert_true(pttl(key) > 0 && pttl(key) <= 1000);
	assert_int_equal(rt(&req, &reason), ONB_OK);
	assert_true(replayed);
	sleep_ms(1100);
	assert_int_equal(exists(key), 0);
	s = snap();
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_false(replayed);
	assert_string_equal(reason, ONB_RT_TOKEN_INVALID);
	only_audited(s, ONB_RT_TOKEN_INVALID);
}

static void register_thing_bad_tokens_and_input(void **state)
{
	char token[ONB_TOKEN_HEXLEN + 1], upper[ONB_TOKEN_HEXLEN + 1];
	struct onb_register_thing req;
	struct onb_err err;
	const char *reason;
	struct who w;

	(void)state;
	allow("SN-1", "SN-1", NULL, NULL, ONB_ALLOW_ADDED);
	who_init(&w, "claim-1", "claim", 900);
	issue(&w, 1, 60, token);
	for(int i = 0; i <= ONB_TOKEN_HEXLEN; i++) upper[i] = (char)(token[i] >= 'a' ? token[i] - 32 : token[i]);

	/* malformed tokens: refused as invalid and audited, never looked up */
	const char *bad[] = { NULL, "", "zz", upper, "0123" };
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		struct snap s = snap();
		req = rt_req(bad[i], &w, "SN-1", "SN-1", true);
		assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
		assert_string_equal(reason, ONB_RT_TOKEN_INVALID);
		only_audited(s, ONB_RT_TOKEN_INVALID);
	}
	/* a well-formed unknown token */
	struct snap s = snap();
	req = rt_req("00000000000000000000000000000000000000000000000000000000000000aa", &w, "SN-1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_TOKEN_INVALID);
	only_audited(s, ONB_RT_TOKEN_INVALID);
	assert_non_null(strstr(reason, "token"));

	/* bad arguments: EINVAL, nothing written, reason untouched */
	s = snap();
	req = rt_req(token, &w, "SN 1", "SN-1", true);
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req = rt_req(token, &w, "SN-1", "SN\n1", true);
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	req.state = ONB_STATE_QUARANTINED;
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req.state = ONB_STATE_UNCLAIMED;
	req.tenant = "acme";
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req.state = ONB_STATE_ACTIVE;
	req.tenant = "ac me";
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req.tenant = NULL;
	req.policy = "bad/policy";
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	/* the one rule for policy names (onb_policy_name_valid): no ':', which
	 * device and tenant ids allow, and at most ONB_NAME_MAX */
	req.policy = "tenant:acme";
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req.policy = "p-123456789-123456789-123456789-123456789-123456789-123456789-12345";
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req.policy = NULL;
	req.request = NULL;
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	req.request = REQUEST_A;
	req.requester = NULL;
	assert_int_equal(rt(&req, &reason), ONB_EINVAL);
	assert_string_equal(reason, "");
	assert_int_equal(onb_register_thing(rc, NULL, &actor, NULL, &reason, &err), ONB_EINVAL);
	req = rt_req(token, &w, "SN-1", "SN-1", true);
	assert_int_equal(onb_register_thing(rc, &req, NULL, NULL, &reason, &err), ONB_EINVAL);
	struct snap s2 = snap();
	assert_memory_equal(&s, &s2, sizeof(s));

	/* NULL replay_out and reason_out are fine; the script also runs after SCRIPT FLUSH */
	redisReply *r = redisCommand(rc, "SCRIPT FLUSH");
	freeReplyObject(r);
	assert_int_equal(onb_register_thing(rc, &req, &actor, NULL, NULL, &err), ONB_OK);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(token_issue_stores_only_the_hash),
		T(token_issue_refusals),
		T(token_issue_audited_writes_entry_with_token),
		T(register_thing_happy_path),
		T(register_thing_cert_fp_hint),
		T(register_thing_replay),
		T(register_thing_optional_allowlist),
		T(register_thing_foreign_token),
		T(register_thing_not_allowlisted),
		T(register_thing_already_provisioned),
		T(register_thing_birth_mismatch),
		T(register_thing_cert_bound),
		T(register_thing_expired_token),
		T(register_thing_bad_tokens_and_input),
	};
#undef T
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}
