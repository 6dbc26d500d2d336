/* Re-provisioning policies of RegisterThing (lib/provisioning/provreg.c,
 * register_thing.lua; docs/provisioning.md "Re-provisioning") against a
 * real, throwaway redis-server: never, same-identity, replace, and the
 * states that are never re-provisioned. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/crl.h"
#include "registry/lifecycle.h"
#include "provisioning/provreg.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };
static const struct onb_actor elsewhere = { .who = "test:unit", .source = "192.0.2.7" };

/* --------------------------------------------------------------- helpers */

static void make_fp(char out[ONB_FP_HEXLEN + 1], unsigned n)
{
	snprintf(out, ONB_FP_HEXLEN + 1, "%064x", n);
}

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

/* The template the next provision() names (replace needs the same one). */
static const char *tmpl = "anyone";

/* RegisterThing of certificate make_fp(certn) (serial = certn in hex) for
 * SN-1 by w under policy p, with a fresh token; returns the rc and the
 * reason ("" when none). */
static int provision(const struct who *w, unsigned certn, enum onb_reprovision p, enum onb_state state,
		const char *tenant, const struct onb_actor *by, const char **reason)
{
	char fp[ONB_FP_HEXLEN + 1], serial[16], token[ONB_TOKEN_HEXLEN + 1];
	struct onb_register_thing req = {
		.token = token, .requester = &w->r, .device_id = "SN-1", .serial = "SN-1",
		.allowlist_required = true, .state = state, .tenant = tenant,
		.request = "[\"default\",[\"SerialNumber\",\"SN-1\"]]", .reprovision = p,
		.template_name = tmpl,
	};
	struct onb_err err;

	make_fp(fp, certn);
	snprintf(serial, sizeof(serial), "%x", certn);
	if(onb_token_issue(rc, fp, serial, 1900000000, &w->r, 60, token, &err) != ONB_OK){
		fail_msg("token issue: %s", err.msg);
	}
	*reason = "";
	return onb_register_thing(rc, &req, by, NULL, reason, &err);
}

static void allow(const char *birth_fp)
{
	struct onb_allow_entry e = { .device_id = "SN-1", .serial = "SN-1", .birth_fp = birth_fp };
	enum onb_allow_result res;
	struct onb_err err;

	if(onb_allowlist_add(rc, &e, 1, &res, &actor, &err) != ONB_OK) fail_msg("allowlist: %s", err.msg);
}

static struct onb_device device(void)
{
	struct onb_device d;
	struct onb_err err;

	if(onb_registry_device_get(rc, "SN-1", &d, &err) != ONB_OK) fail_msg("device: %s", err.msg);
	return d;
}

/* GET onb:fp:<make_fp(certn)> ("" when absent). */
static void bound_to(unsigned certn, char *out, size_t len)
{
	char fp[ONB_FP_HEXLEN + 1];
	redisReply *r;

	make_fp(fp, certn);
	r = redisCommand(rc, "GET onb:fp:%s", fp);
	assert_non_null(r);
	snprintf(out, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

static void assert_bound(unsigned certn, const char *want)
{
	char got[ONB_ID_MAX + 1];

	bound_to(certn, got, sizeof(got));
	assert_string_equal(got, want);
}

/* The RFC 5280 reason recorded for serial certn, -1 when none. */
static int crl_reason(unsigned certn)
{
	char serial[16];
	redisReply *r;
	long long when;
	int why = -1;

	snprintf(serial, sizeof(serial), "%x", certn);
	r = redisCommand(rc, "HGET %s %s", ONB_KEY_CRL_REVOKED, serial);
	assert_non_null(r);
	if(r->type == REDIS_REPLY_STRING && sscanf(r->str, "%lld %d", &when, &why) != 2) why = -1;
	freeReplyObject(r);
	return why;
}

/* The type fields of the last n events, oldest first, joined by ','. */
static void last_events(int n, char *out, size_t len)
{
	redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT %d", ONB_KEY_EVENTS, n);
	size_t used = 0;

	assert_non_null(r);
	out[0] = '\0';
	for(size_t i = r->elements; i-- > 0; ){
		const redisReply *f = r->element[i]->element[1];
		for(size_t j = 0; j + 1 < f->elements; j += 2){
			if(strcmp(f->element[j]->str, "type") != 0) continue;
			used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "", f->element[j + 1]->str);
		}
	}
	freeReplyObject(r);
}

/* Nothing but one more audit entry: the refusal named reason. */
struct snap { long long keys, events, audit; };
static struct snap snap(void)
{
	struct snap s = { dbsize(), xlen(ONB_KEY_EVENTS), xlen(ONB_KEY_AUDIT) };
	return s;
}
static void only_refusal_audited(struct snap before, const char *reason, const char *policy)
{
	/* the token was issued after the snapshot: one more key */
	assert_int_equal(dbsize(), before.keys + 2);
	assert_int_equal(xlen(ONB_KEY_EVENTS), before.events);
	assert_int_equal(xlen(ONB_KEY_AUDIT), before.audit + 1);
	assert_newest(ONB_KEY_AUDIT, "action", "register-thing");
	assert_newest(ONB_KEY_AUDIT, "result", "refused");
	assert_newest(ONB_KEY_AUDIT, "reason", reason);
	assert_newest(ONB_KEY_AUDIT, "reprovision", policy);
}

/* ------------------------------------------------------------------ tests */

/* never: today's behaviour, whatever the requester. */
static void never_refuses(void **state)
{
	const char *reason;
	struct who birth;
	char listed[ONB_FP_HEXLEN + 1];

	(void)state;
	make_fp(listed, 500);
	allow(listed);
	who_init(&birth, "prov-SN-1", "birth", 500);
	assert_int_equal(provision(&birth, 1, ONB_REPROV_NEVER, ONB_STATE_UNCLAIMED, NULL, &actor, &reason), ONB_OK);
	struct snap s = snap();
	assert_int_equal(provision(&birth, 2, ONB_REPROV_NEVER, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_PROVISIONED);
	/* the token and its pending entry are the two new keys */
	only_refusal_audited(s, ONB_RT_PROVISIONED, "never");
	assert_bound(1, "SN-1");
	assert_bound(2, "");
}

/* same-identity: the device's birth certificate replaces the certificate
 * (and a rotation's unused next one) and keeps everything else. */
static void same_identity_keeps_tenant(void **state)
{
	const char *reason;
	struct who birth;
	char listed[ONB_FP_HEXLEN + 1], fp3[ONB_FP_HEXLEN + 1], fp1[ONB_FP_HEXLEN + 1], evs[64];
	struct onb_renewal ren = { .device_id = "SN-1", .cert_serial = "2", .not_after = 1900000000,
		.grace_ms = 60000 };
	struct onb_device d;
	struct onb_err err;

	(void)state;
	make_fp(listed, 500);
	make_fp(fp1, 1);
	allow(listed);
	who_init(&birth, "prov-SN-1", "birth", 500);
	assert_int_equal(provision(&birth, 1, ONB_REPROV_SAME_IDENTITY, ONB_STATE_ACTIVE, "acme", &actor, &reason),
			ONB_OK);
	/* a renewal in progress: certificate 2 is the unused next one */
	{
		char fp2[ONB_FP_HEXLEN + 1];
		make_fp(fp2, 2);
		ren.cert_fp = fp2;
		ren.requester_fp = fp1;
		if(onb_rotation_record(rc, &ren, &actor, NULL, NULL, &err) != ONB_OK) fail_msg("renewal: %s", err.msg);
	}
	assert_bound(2, "SN-1");

	assert_int_equal(provision(&birth, 3, ONB_REPROV_SAME_IDENTITY, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_OK);
	d = device();
	make_fp(fp3, 3);
	assert_string_equal(d.cert_fp, fp3);
	assert_string_equal(d.cert_fp_next, "");
	assert_int_equal(d.rotate_deadline_ms, 0);
	/* kept: state and tenant (the template's initial state is not applied) */
	assert_int_equal(d.state, ONB_STATE_ACTIVE);
	assert_string_equal(d.tenant, "acme");
	assert_string_equal(d.birth_fp, listed);
	assert_bound(3, "SN-1");
	assert_bound(1, "");
	assert_bound(2, "");
	assert_int_equal(crl_reason(1), 4);  /* superseded */
	assert_int_equal(crl_reason(2), 4);
	assert_int_equal(crl_reason(3), -1);
	/* one cert event naming only the new certificate; nothing else changed */
	last_events(1, evs, sizeof(evs));
	assert_string_equal(evs, "cert");
	assert_newest(ONB_KEY_EVENTS, "cert_fp", fp3);
	assert_newest(ONB_KEY_EVENTS, "cert_fp_next", "");
	assert_newest(ONB_KEY_EVENTS, "deadline", "0");
	assert_newest(ONB_KEY_EVENTS, "tenant", "acme");
	assert_newest(ONB_KEY_AUDIT, "action", "reprovision");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
	assert_newest(ONB_KEY_AUDIT, "reprovision", "same-identity");
	assert_newest(ONB_KEY_AUDIT, "cert_fp", fp3);
	assert_newest(ONB_KEY_AUDIT, "superseded", fp1);
	assert_newest(ONB_KEY_AUDIT, "from", "active");
	assert_newest(ONB_KEY_AUDIT, "to", "active");
	assert_newest(ONB_KEY_AUDIT, "requester_fp", listed);
	assert_newest(ONB_KEY_AUDIT, "possible_clone", ""); /* proven the same device */
}

/* same-identity refuses anyone but the device's birth certificate. */
static void same_identity_refusals(void **state)
{
	const char *reason;
	struct who birth, other_birth, claim;
	char listed[ONB_FP_HEXLEN + 1];

	(void)state;
	make_fp(listed, 500);
	allow(listed);
	who_init(&birth, "prov-SN-1", "birth", 500);
	who_init(&other_birth, "prov-SN-1", "birth", 501);
	who_init(&claim, "prov-SN-1", "claim", 900);
	assert_int_equal(provision(&birth, 1, ONB_REPROV_SAME_IDENTITY, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_OK);

	struct snap s = snap();
	assert_int_equal(provision(&other_birth, 2, ONB_REPROV_SAME_IDENTITY, ONB_STATE_UNCLAIMED, NULL, &actor,
			&reason), ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_BIRTH_MISMATCH);
	only_refusal_audited(s, ONB_RT_BIRTH_MISMATCH, "same-identity");

	s = snap();
	assert_int_equal(provision(&claim, 3, ONB_REPROV_SAME_IDENTITY, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_REPROV_IDENTITY);
	only_refusal_audited(s, ONB_RT_REPROV_IDENTITY, "same-identity");
	assert_bound(1, "SN-1");
	assert_int_equal(crl_reason(1), -1);
}

/* same-identity with no birth certificate on record (provisioned with a
 * claim certificate, allowlisted without one): nothing proves identity. */
static void same_identity_needs_a_recorded_birth_cert(void **state)
{
	const char *reason;
	struct who birth, claim;

	(void)state;
	allow(NULL);
	who_init(&claim, "prov-SN-1", "claim", 900);
	who_init(&birth, "prov-SN-1", "birth", 500);
	assert_int_equal(provision(&claim, 1, ONB_REPROV_SAME_IDENTITY, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_OK);
	struct snap s = snap();
	assert_int_equal(provision(&birth, 2, ONB_REPROV_SAME_IDENTITY, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_REPROV_IDENTITY);
	only_refusal_audited(s, ONB_RT_REPROV_IDENTITY, "same-identity");
	assert_string_equal(device().birth_fp, "");
}

/* replace: any requester; reset to the template's state; a different
 * requester than the one before is flagged, the same one is not. */
static void replace_resets_and_flags_clones(void **state)
{
	const char *reason;
	struct who claim_a, claim_b;
	char evs[64], fp_a[ONB_FP_HEXLEN + 1], want[256];
	struct onb_device d;

	(void)state;
	allow(NULL);
	who_init(&claim_a, "prov-SN-1", "claim", 900);
	who_init(&claim_b, "prov-SN-1", "claim", 901);
	make_fp(fp_a, 900);
	assert_int_equal(provision(&claim_a, 1, ONB_REPROV_REPLACE, ONB_STATE_ACTIVE, "acme", &actor, &reason), ONB_OK);

	/* another claim certificate */
	assert_int_equal(provision(&claim_b, 2, ONB_REPROV_REPLACE, ONB_STATE_UNCLAIMED, NULL, &actor, &reason), ONB_OK);
	d = device();
	assert_int_equal(d.state, ONB_STATE_UNCLAIMED);
	assert_string_equal(d.tenant, "");
	assert_int_equal(d.claimed_ms, 0);
	assert_bound(2, "SN-1");
	assert_bound(1, "");
	assert_int_equal(crl_reason(1), 4);
	/* the cert event closes the old session, the state event moves the
	 * offline device's parked session to its new state */
	last_events(2, evs, sizeof(evs));
	assert_string_equal(evs, "cert,state");
	assert_newest(ONB_KEY_EVENTS, "state", "unclaimed");
	assert_newest(ONB_KEY_EVENTS, "tenant", "");
	assert_newest(ONB_KEY_AUDIT, "action", "reprovision");
	assert_newest(ONB_KEY_AUDIT, "reprovision", "replace");
	assert_newest(ONB_KEY_AUDIT, "possible_clone", "1");
	snprintf(want, sizeof(want), "claim %s from 127.0.0.1", fp_a);
	assert_newest(ONB_KEY_AUDIT, "previous_requester", want);
	assert_newest(ONB_KEY_AUDIT, "tenant", "acme");   /* the binding it dropped */
	assert_newest(ONB_KEY_AUDIT, "from", "active");
	assert_newest(ONB_KEY_AUDIT, "to", "unclaimed");

	/* the same requester from the same address: not a clone */
	assert_int_equal(provision(&claim_b, 3, ONB_REPROV_REPLACE, ONB_STATE_UNCLAIMED, NULL, &actor, &reason), ONB_OK);
	assert_newest(ONB_KEY_AUDIT, "possible_clone", "0");
	/* nothing changed but the certificate: only the cert event */
	last_events(1, evs, sizeof(evs));
	assert_string_equal(evs, "cert");
	/* the same certificate from another address: maybe a clone */
	assert_int_equal(provision(&claim_b, 4, ONB_REPROV_REPLACE, ONB_STATE_UNCLAIMED, NULL, &elsewhere, &reason),
			ONB_OK);
	assert_newest(ONB_KEY_AUDIT, "possible_clone", "1");
	assert_bound(4, "SN-1");
	assert_bound(3, "");
	assert_bound(2, "");
}

/* replace takes over only what its own template provisioned: not a device
 * another template provisioned under the same name, nor one an operator
 * registered (no template on record). */
static void replace_only_its_own_devices(void **state)
{
	const char *reason;
	struct who claim;
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_register_req reg = { .id = "SN-1", .cert_serial = "1", .not_after = 1900000000,
		.state = ONB_STATE_UNCLAIMED };
	struct onb_err err;

	(void)state;
	who_init(&claim, "prov-SN-1", "claim", 900);
	make_fp(fp, 1);
	reg.cert_fp = fp;
	assert_int_equal(onb_registry_register(rc, &reg, &actor, &err), ONB_OK);
	struct snap s = snap();
	assert_int_equal(provision(&claim, 2, ONB_REPROV_REPLACE, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_REPROV_TEMPLATE);
	only_refusal_audited(s, ONB_RT_REPROV_TEMPLATE, "replace");
	assert_bound(1, "SN-1");

	/* provisioned through "strict" (never), asked through "anyone" (replace) */
	assert_int_equal(onb_device_decommission(rc, "SN-1", NULL, &actor, NULL, &err), ONB_OK);
	tmpl = "strict";
	assert_int_equal(provision(&claim, 3, ONB_REPROV_NEVER, ONB_STATE_UNCLAIMED, NULL, &actor, &reason), ONB_OK);
	tmpl = "anyone";
	s = snap();
	assert_int_equal(provision(&claim, 4, ONB_REPROV_REPLACE, ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
			ONB_EREFUSED);
	assert_string_equal(reason, ONB_RT_REPROV_TEMPLATE);
	only_refusal_audited(s, ONB_RT_REPROV_TEMPLATE, "replace");
	assert_bound(3, "SN-1");
	/* same-identity is not bound to a template: the birth certificate proves it */
}

/* Quarantined and revoked devices never come back by re-provisioning. */
static void held_states_refused(void **state)
{
	static const enum onb_state held[] = { ONB_STATE_QUARANTINED, ONB_STATE_REVOKED };
	static const enum onb_reprovision policies[] = { ONB_REPROV_SAME_IDENTITY, ONB_REPROV_REPLACE };
	char listed[ONB_FP_HEXLEN + 1];
	const char *reason;
	struct who birth;
	struct onb_err err;
	unsigned certn = 10;

	(void)state;
	make_fp(listed, 500);
	allow(listed);
	who_init(&birth, "prov-SN-1", "birth", 500);
	assert_int_equal(provision(&birth, 1, ONB_REPROV_REPLACE, ONB_STATE_UNCLAIMED, NULL, &actor, &reason), ONB_OK);
	for(size_t i = 0; i < 2; i++){
		assert_int_equal(onb_registry_set_state(rc, "SN-1", held[i], "incident", &actor, NULL, &err), ONB_OK);
		for(size_t j = 0; j < 2; j++){
			struct snap s = snap();
			assert_int_equal(provision(&birth, certn++, policies[j], ONB_STATE_UNCLAIMED, NULL, &actor, &reason),
					ONB_EREFUSED);
			assert_string_equal(reason, ONB_RT_REPROV_STATE);
			only_refusal_audited(s, ONB_RT_REPROV_STATE, onb_reprovision_name(policies[j]));
			assert_int_equal(device().state, held[i]);
			assert_bound(1, "SN-1");
		}
	}
}

/* An out-of-range policy is a caller's bug: refused before Redis. */
static void bad_policy_value(void **state)
{
	struct who w;
	char token[ONB_TOKEN_HEXLEN + 1];
	struct onb_register_thing req = {
		.token = token, .device_id = "SN-1", .state = ONB_STATE_UNCLAIMED, .request = "[]",
		.reprovision = (enum onb_reprovision)7,
	};
	struct onb_err err;
	const char *reason = NULL;

	(void)state;
	who_init(&w, "prov-SN-1", "claim", 900);
	req.requester = &w.r;
	memset(token, 'a', ONB_TOKEN_HEXLEN);
	token[ONB_TOKEN_HEXLEN] = '\0';
	assert_int_equal(onb_register_thing(rc, &req, &actor, NULL, &reason, &err), ONB_EINVAL);
	assert_int_equal(dbsize(), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(never_refuses),
		T(same_identity_keeps_tenant),
		T(same_identity_refusals),
		T(same_identity_needs_a_recorded_birth_cert),
		T(replace_resets_and_flags_clones),
		T(replace_only_its_own_devices),
		T(held_states_refused),
		T(bad_policy_value),
	};
#undef T
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}
