/* The topic algebra (lib/policy/topic.c) and the policy language (lib/policy/policy.c,
 * lib/policy/policy_eval.c): a table of matcher cases, each also checked against the
 * brute-force model in tests/fuzz/topic_ref.h (the engine's fast paths are
 * checked against the reference walks in test_policy_paths.c); parse errors; the shipped
 * policies; the DESIGN.md s.5 example; hostile variables; no allocation
 * while evaluating (malloc is wrapped for this program, see tests.cmake). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"
#include "policy/topic.h"
#include "../fuzz/topic_ref.h"
#include "policy_fixture.h"

/* ---- allocation counter (linked with -Wl,--wrap=malloc,...) -------------- */

static long n_allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { n_allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { n_allocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { n_allocs++; return __real_realloc(p, n); }


/* ---- the matcher table ------------------------------------------------- */

enum op {
	NAME,     /* a is a valid topic name */
	FILTER,   /* a is a valid topic filter */
	MATCH,    /* filter a matches name b */
	CONTAINS, /* filter a contains filter b */
	OVERLAP,  /* filters a and b share a topic */
};

struct tcase {
	enum op op;
	const char *a, *b;
	bool want;
};

static const struct tcase cases[] = {
	/* validity */
	{NAME, "a", NULL, true}, {NAME, "a/b", NULL, true}, {NAME, "/", NULL, true},
	{NAME, "//", NULL, true}, {NAME, "/a", NULL, true}, {NAME, "a/", NULL, true},
	{NAME, "a//b", NULL, true}, {NAME, "$SYS/x", NULL, true}, {NAME, "a b*", NULL, true},
	{NAME, "\xc3\xbc/x", NULL, true}, {NAME, "", NULL, false}, {NAME, "a/+", NULL, false},
	{NAME, "#", NULL, false}, {NAME, "a#", NULL, false}, {NAME, "a/b+", NULL, false},
	{FILTER, "#", NULL, true}, {FILTER, "+", NULL, true}, {FILTER, "a/#", NULL, true},
	{FILTER, "+/+", NULL, true}, {FILTER, "/#", NULL, true}, {FILTER, "a//b", NULL, true},
	{FILTER, "+/#", NULL, true}, {FILTER, "$SYS/#", NULL, true}, {FILTER, "/", NULL, true},
	{FILTER, "", NULL, false}, {FILTER, "a/#/b", NULL, false}, {FILTER, "a+/b", NULL, false},
	{FILTER, "a/b#", NULL, false}, {FILTER, "##", NULL, false}, {FILTER, "++", NULL, false},
	{FILTER, "#/", NULL, false}, {FILTER, "a/#/", NULL, false}, {FILTER, "+a", NULL, false},
	{FILTER, "$+/x", NULL, false},
	/* matching */
	{MATCH, "a/b", "a/b", true}, {MATCH, "a/b", "a/c", false}, {MATCH, "a/b", "a/b/c", false},
	{MATCH, "a/b/c", "a/b", false}, {MATCH, "a", "A", false}, {MATCH, "a", "a", true},
	{MATCH, "a/+", "a/b", true}, {MATCH, "a/+", "a/", true}, {MATCH, "a/+", "a", false},
	{MATCH, "a/+", "a/b/c", false}, {MATCH, "+", "a", true}, {MATCH, "+", "/", false},
	{MATCH, "+/+", "/", true}, {MATCH, "+/+", "a/", true}, {MATCH, "/+", "/a", true},
	{MATCH, "/+", "a/b", false}, {MATCH, "#", "a", true}, {MATCH, "#", "a/b/c", true},
	{MATCH, "#", "/", true}, {MATCH, "#", "$SYS/x", false}, {MATCH, "#", "$", false},
	{MATCH, "+/x", "$SYS/x", false}, {MATCH, "+", "$SYS", false}, {MATCH, "+/#", "$x", false},
	{MATCH, "$SYS/#", "$SYS/x", true}, {MATCH, "$SYS/#", "$SYS", true}, {MATCH, "$SYS/+", "$SYS/a", true},
	{MATCH, "$", "$", true}, {MATCH, "a/#", "a", true}, {MATCH, "a/#", "a/", true},
	{MATCH, "a/#", "a/b/c", true}, {MATCH, "a/#", "ab", false}, {MATCH, "a/#", "b/a", false},
	{MATCH, "+/#", "a", true}, {MATCH, "a/+/#", "a/b", true}, {MATCH, "a/+/#", "a", false},
	{MATCH, "a//b", "a//b", true}, {MATCH, "a/+/b", "a//b", true}, {MATCH, "a//b", "a/b", false},
	{MATCH, "/a", "/a", true}, {MATCH, "/a", "a", false}, {MATCH, "//", "//", true},
	{MATCH, "/#", "/", true}, {MATCH, "/#", "a", false},
	{MATCH, "$aws/provisioning-templates/+/provision/json", "$aws/provisioning-templates/t1/provision/json", true},
	{MATCH, "$aws/provisioning-templates/+/provision/json", "$aws/provisioning-templates/t1/provision/json/accepted", false},
	{MATCH, "devices/dev-1/commands/#", "devices/dev-1/commands", true},
	{MATCH, "devices/dev-1/commands/#", "devices/dev-1/commands/reboot", true},
	{MATCH, "devices/dev-1/commands/#", "devices/dev-2/commands/x", false},
	{MATCH, "devices/dev-1/commands/#", "devices/dev-1/commandsx", false},
	{MATCH, "devices/dev-1", "devices/dev-10", false}, {MATCH, "devices/dev-10", "devices/dev-1", false},
	{MATCH, "a/#/b", "a/x/b", false}, {MATCH, "a", "a/+", false},
	/* containment: from DESIGN.md s.5 and the brief */
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/commands/+/x", true},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/commands", true},
	{CONTAINS, "devices/dev-1/commands/#", "devices/+/commands/#", false},
	{CONTAINS, "devices/dev-1/commands/#", "#", false},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/#", false},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/commands/#", true},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/commands/a/#", true},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/commands/+", true},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/+/x", false},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1/commands/+/#", true},
	{CONTAINS, "devices/dev-1/commands/#", "devices/dev-1", false},
	{CONTAINS, "+/x", "$SYS/x", false}, {CONTAINS, "#", "$SYS/#", false}, {CONTAINS, "#", "$SYS", false},
	{CONTAINS, "$SYS/#", "$SYS/a/b", true}, {CONTAINS, "$SYS/#", "+/a", false},
	{CONTAINS, "#", "+/#", true}, {CONTAINS, "#", "#", true}, {CONTAINS, "+/#", "#", true},
	{CONTAINS, "+/+/#", "#", false}, {CONTAINS, "+", "#", false}, {CONTAINS, "#", "a", true},
	{CONTAINS, "#", "/", true}, {CONTAINS, "+", "a", true}, {CONTAINS, "+", "+", true},
	{CONTAINS, "+", "a/b", false}, {CONTAINS, "a/+", "a/#", false}, {CONTAINS, "a/#", "a/+", true},
	{CONTAINS, "a/#", "a", true}, {CONTAINS, "a/+/#", "a/#", false}, {CONTAINS, "a/+/#", "a/b", true},
	{CONTAINS, "a/+/#", "a", false}, {CONTAINS, "a", "a", true}, {CONTAINS, "a", "+", false},
	{CONTAINS, "a", "a/#", false}, {CONTAINS, "a/b", "a/+", false}, {CONTAINS, "/+/#", "/#", true},
	{CONTAINS, "+/+/#", "/#", true}, {CONTAINS, "/+", "/#", false}, {CONTAINS, "+/+", "/+", true},
	{CONTAINS, "a//b", "a/+/b", false}, {CONTAINS, "a/+/b", "a//b", true}, {CONTAINS, "+/#", "$SYS/#", false},
	{CONTAINS, "$SYS/+", "$SYS/#", false}, {CONTAINS, "#", "a/#/b", false}, {CONTAINS, "a/#/b", "a", false},
	{CONTAINS, "+/+", "+/+", true}, {CONTAINS, "+/+", "a/+/c", false}, {CONTAINS, "a/b/c/#", "a/b/c/d/e/f", true},
	{CONTAINS, "$aws/provisioning-templates/+/provision/json/accepted",
		"$aws/provisioning-templates/+/provision/json/accepted", true},
	{CONTAINS, "$aws/provisioning-templates/+/provision/json/accepted",
		"$aws/provisioning-templates/+/provision/json/+", false},
	/* overlap */
	{OVERLAP, "a/+", "+/b", true}, {OVERLAP, "a/b", "a/c", false}, {OVERLAP, "a/#", "a", true},
	{OVERLAP, "a/#", "b/#", false}, {OVERLAP, "#", "$SYS/x", false}, {OVERLAP, "+/#", "$SYS/#", false},
	{OVERLAP, "$SYS/#", "$SYS/+", true}, {OVERLAP, "+", "/#", false}, {OVERLAP, "/#", "+", false},
	{OVERLAP, "+", "+/#", true}, {OVERLAP, "/#", "/", true}, {OVERLAP, "/#", "+/+", true},
	{OVERLAP, "#", "#", true}, {OVERLAP, "a/+/c", "a/b/+", true}, {OVERLAP, "a/+", "a/b/c", false},
	{OVERLAP, "a/+/#", "a", false}, {OVERLAP, "a/+/#", "a/b", true},
	{OVERLAP, "devices/dev-1/#", "devices/+/commands/#", true},
	{OVERLAP, "devices/dev-2/#", "devices/dev-1/commands", false},
	{OVERLAP, "+", "a", true}, {OVERLAP, "a", "a", true}, {OVERLAP, "a", "b", false},
	{OVERLAP, "//", "+/+/+", true}, {OVERLAP, "/", "+", false}, {OVERLAP, "+/+", "#", true},
	{OVERLAP, "$x", "$x/#", true}, {OVERLAP, "$x", "+", false}, {OVERLAP, "#", "a/b/c/d", true},
	{OVERLAP, "a/b/#", "a/+/c", true}, {OVERLAP, "onb/internal/#", "devices/+/commands/#", false},
	{OVERLAP, "onb/internal/#", "+/internal/#", true}, {OVERLAP, "a/#/b", "a/#", false},
};

static void matcher_table(void **state)
{
	(void)state;
	size_t n = sizeof(cases) / sizeof(cases[0]);
	int checked = 0;

	assert_true(n >= 150);
	for(size_t i = 0; i < n; i++){
		const struct tcase *c = &cases[i];
		bool got = false;
		int ref = -1;
		switch(c->op){
		case NAME: got = onb_topic_name_valid(c->a); break;
		case FILTER: got = onb_topic_filter_valid(c->a); break;
		case MATCH:
			got = onb_topic_matches(c->a, c->b);
			ref = ref_matches(c->a, c->b);
			break;
		case CONTAINS:
			got = onb_filter_contains(c->a, c->b);
			ref = ref_relation(c->a, c->b, 0);
			break;
		case OVERLAP:
			got = onb_filter_overlaps(c->a, c->b);
			ref = ref_relation(c->a, c->b, 1);
			assert_int_equal(onb_filter_overlaps(c->b, c->a), got);
			break;
		}
		if(got != c->want || (ref >= 0 && ref != (int)c->want)){
			fail_msg("case %zu: op %d \"%s\" \"%s\": want %d, got %d, model %d", i, c->op, c->a,
				c->b ? c->b : "", c->want, got, ref);
		}
		if(ref >= 0) checked++;
	}
	assert_true(checked > 100);
}

/* Every pair from a grid of small filters, against the brute-force model. */
static void model_grid(void **state)
{
	(void)state;
	static const char *const g[] = {
		"#", "+", "a", "b", "$", "$a", "/", "/#", "+/#", "a/#", "a/+", "+/a", "a/b", "a//b",
		"+/+", "/+", "a/+/#", "+/+/#", "/+/#", "$a/#", "$a/+", "a/b/#", "+/b", "//", "a/",
	};
	size_t n = sizeof(g) / sizeof(g[0]);

	for(size_t i = 0; i < n; i++){
		for(size_t j = 0; j < n; j++){
			int rc = ref_relation(g[i], g[j], 0), ro = ref_relation(g[i], g[j], 1);
			if(rc != onb_filter_contains(g[i], g[j])) fail_msg("contains(%s, %s) model %d", g[i], g[j], rc);
			if(ro != onb_filter_overlaps(g[i], g[j])) fail_msg("overlaps(%s, %s) model %d", g[i], g[j], ro);
			if(!strpbrk(g[j], "+#") && ref_matches(g[i], g[j]) != onb_topic_matches(g[i], g[j])){
				fail_msg("matches(%s, %s)", g[i], g[j]);
			}
		}
	}
}

static void share_prefix(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } t[] = {
		{"$share/g/a/b", "a/b"}, {"$share/g/#", "#"}, {"$share/g", NULL}, {"$share//a", NULL},
		{"$share/g+/a", NULL}, {"$share/g#/a", NULL}, {"$share/g/", NULL}, {"a/b", "a/b"},
		{"$share", "$share"}, {"$sharex/g/a", "$sharex/g/a"}, {"$share/g/$share/h/x", "$share/h/x"},
		{"$share/grp-1/devices/+/status", "devices/+/status"},
	};
	for(size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++){
		const char *got = onb_filter_unshare(t[i].in);
		if(!t[i].out) assert_null(got);
		else assert_string_equal(got, t[i].out);
	}
	assert_null(onb_filter_unshare(NULL));
}

/* Beyond ONB_TV_CACHE levels the walk scans instead of using the cache. */
static void many_levels(void **state)
{
	(void)state;
	char topic[512], filter[512], other[512];
	size_t o = 0;

	for(int i = 0; i < 60; i++) o += (size_t)snprintf(topic + o, sizeof(topic) - o, "%sl%d", i ? "/" : "", i);
	memcpy(filter, topic, o + 1);
	memcpy(other, topic, o + 1);
	assert_true(onb_topic_matches(filter, topic));
	other[o - 1] = 'X'; /* the last level differs */
	assert_false(onb_topic_matches(other, topic));
	assert_false(onb_filter_overlaps(other, topic));
	memcpy(filter + o - 4, "/+", 3); /* ".../l58/+" */
	assert_true(onb_topic_matches(filter, topic));
	assert_true(onb_filter_contains(filter, topic));
	assert_false(onb_filter_contains(topic, filter));
	memcpy(filter + o - 4, "/#", 3);
	assert_true(onb_filter_contains(filter, topic));
	char *p = strstr(filter, "/l40/");
	memcpy(p, "/+/", 3);
	memmove(p + 3, p + 5, strlen(p + 5) + 1);
	assert_true(onb_topic_filter_valid(filter));
	assert_true(onb_topic_matches(filter, topic));

	/* 65535 bytes is the limit */
	char *big = malloc(65537);
	assert_non_null(big);
	memset(big, 'a', 65536);
	big[65536] = '\0';
	assert_false(onb_topic_name_valid(big));
	big[65535] = '\0';
	assert_true(onb_topic_name_valid(big));
	for(size_t i = 1; i < 65535; i += 2) big[i] = '/';
	assert_true(onb_topic_matches("#", big));
	assert_false(onb_topic_matches("a/#/a", big));
	free(big);
}

/* ---- policies ---------------------------------------------------------- */

struct pcase {
	char act; /* C P S R */
	const char *subject;
	bool want;
};

static enum onb_action act_of(char c)
{
	return c == 'C' ? ONB_ACT_CONNECT : c == 'P' ? ONB_ACT_PUBLISH : c == 'S' ? ONB_ACT_SUBSCRIBE : ONB_ACT_RECEIVE;
}

static void run_pcases(const struct onb_policy *p, const struct onb_compiled *c, const char *what,
	const struct pcase *t, size_t n)
{
	for(size_t i = 0; i < n; i++){
		struct onb_decision d;
		char line[512];
		bool got = onb_policy_allows(c, act_of(t[i].act), t[i].subject, &d);
		assert_int_equal(got, d.allowed);
		if(got != t[i].want){
			onb_policy_explain(p, c, act_of(t[i].act), &d, line, sizeof(line));
			fail_msg("%s case %zu: %c \"%s\" want %d: %s", what, i, t[i].act,
				t[i].subject ? t[i].subject : "(null)", t[i].want, line);
		}
	}
}

static const char design_example[] =
	"{ \"version\": \"2026-01-09\",\n"
	"  \"statement\": [\n"
	"    { \"effect\": \"allow\", \"action\": [\"publish\"], \"resource\": [\"topic:devices/${deviceId}/telemetry\"] },\n"
	"    { \"effect\": \"allow\", \"action\": [\"subscribe\"], \"resource\": [\"topicfilter:devices/${deviceId}/commands/#\"] },\n"
	"    { \"effect\": \"allow\", \"action\": [\"receive\"], \"resource\": [\"topic:devices/${deviceId}/commands/#\"] } ] }";

static void design_example_policy(void **state)
{
	(void)state;
	static const struct pcase t[] = {
		{'P', "devices/dev-1/telemetry", true}, {'P', "devices/dev-2/telemetry", false},
		{'P', "devices/dev-1/telemetry/x", false}, {'P', "devices/+/telemetry", false},
		{'P', "devices/dev-1/commands/x", false}, {'P', NULL, false}, {'P', "", false},
		{'S', "devices/dev-1/commands/+/x", true}, {'S', "devices/dev-1/commands", true},
		{'S', "devices/dev-1/commands/#", true}, {'S', "devices/+/commands/#", false}, {'S', "#", false},
		{'S', "devices/dev-1/#", false}, {'S', "$share/g/devices/dev-1/commands/#", true},
		{'S', "$share/g/devices/+/commands/#", false}, {'S', "$share//devices/dev-1/commands/#", false},
		{'S', "$share/g", false}, {'S', "devices/dev-1/commands/#/x", false},
		{'R', "devices/dev-1/commands/reboot", true}, {'R', "devices/dev-1/commands", true},
		{'R', "devices/dev-2/commands/reboot", false}, {'R', "devices/dev-1/telemetry", false},
		{'C', "dev-1", false},
	};
	struct onb_policy_vars v = {.device_id = "dev-1", .client_id = "dev-1"};
	struct onb_policy *p = parse_ok(design_example);
	struct onb_compiled *c = compile_ok(p, &v);
	struct onb_decision d;
	char line[256];

	run_pcases(p, c, "design", t, sizeof(t) / sizeof(t[0]));
	assert_true(onb_policy_allows(c, ONB_ACT_SUBSCRIBE, "devices/dev-1/commands/+/x", &d));
	assert_int_equal(d.why, ONB_WHY_MATCH);
	assert_int_equal(d.stmt, 1);
	assert_int_equal(d.res, 0);
	assert_int_equal(onb_policy_explain(p, c, ONB_ACT_SUBSCRIBE, &d, line, sizeof(line)), ONB_OK);
	assert_string_equal(line, "allow: statement 1 resource 0 topicfilter:devices/${deviceId}/commands/#");
	assert_false(onb_policy_allows(c, ONB_ACT_SUBSCRIBE, "#", &d));
	assert_int_equal(d.why, ONB_WHY_DEFAULT);
	assert_false(onb_policy_allows(c, ONB_ACT_PUBLISH, "a/+", &d));
	assert_int_equal(d.why, ONB_WHY_INVALID);
	assert_false(onb_policy_allows(c, (enum onb_action)7, "a", &d));
	assert_false(onb_policy_allows(NULL, ONB_ACT_PUBLISH, "a", NULL));
	onb_compiled_free(c);
	onb_policy_free(p);
}

/* An allow statement with a hostile variable is off; the others stay on. */
static void hostile_allow(void **state)
{
	(void)state;
	static const char *const bad[] = {"+", "#", "a/b", "", NULL, "*", "dev/+", "x#"};
	struct onb_policy *p = parse_ok(
		"{\"version\":\"1\",\"statement\":["
		"{\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[\"topic:devices/${deviceId}/telemetry\"]},"
		"{\"effect\":\"allow\",\"action\":[\"subscribe\"],\"resource\":[\"topicfilter:devices/dev-${deviceId}/#\"]},"
		"{\"effect\":\"allow\",\"action\":[\"connect\"],\"resource\":[\"client:${deviceId}\"]},"
		"{\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[\"topic:public/${clientId}\"]}]}");

	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		struct onb_policy_vars v = {.device_id = bad[i], .client_id = "c1"};
		struct onb_compiled *c = compile_ok(p, &v);
		char line[256];
		struct onb_decision d;
		const struct pcase t[] = {
			{'P', "devices/+/telemetry", false}, {'P', "devices/#/telemetry", false},
			{'P', "devices/a/b/telemetry", false}, {'P', "devices//telemetry", false},
			{'P', "devices/*/telemetry", false}, {'P', "devices/dev-1/telemetry", false},
			{'S', "devices/dev-+/#", false}, {'S', "devices/dev-/#", false}, {'S', "devices/+/#", false},
			{'S', "#", false}, {'C', bad[i] ? bad[i] : "x", false}, {'C', "*", false},
			{'P', "public/c1", true},
		};
		run_pcases(p, c, bad[i] ? bad[i] : "(null)", t, sizeof(t) / sizeof(t[0]));
		assert_true(onb_policy_allows(c, ONB_ACT_PUBLISH, "public/c1", &d));
		onb_policy_explain(p, c, ONB_ACT_PUBLISH, &d, line, sizeof(line));
		assert_non_null(strstr(line, "statement 0 disabled ${deviceId}"));
		onb_compiled_free(c);
	}
	onb_policy_free(p);
}

/* A deny statement with a hostile variable never gets narrower: it is cut
 * at the poisoned level and ends in '#' (at the root: everything). */
static void hostile_deny(void **state)
{
	(void)state;
	struct onb_policy *p = parse_ok(
		"{\"version\":\"1\",\"statement\":["
		"{\"effect\":\"allow\",\"action\":[\"*\"],\"resource\":[\"topic:#\",\"topic:$SYS/#\",\"topicfilter:#\",\"client:*\"]},"
		"{\"effect\":\"deny\",\"action\":[\"publish\",\"subscribe\"],\"resource\":[\"topic:devices/${deviceId}/secret\"]},"
		"{\"effect\":\"deny\",\"action\":[\"receive\"],\"resource\":[\"topic:${tenantId}/private/#\"]},"
		"{\"effect\":\"deny\",\"action\":[\"connect\"],\"resource\":[\"client:banned-${tenantId}\"]},"
		"{\"effect\":\"deny\",\"action\":[\"publish\"],\"resource\":[\"topic:q/a-long-prefix-before-the-variable-${deviceId}-x/y\"]}]}");
	struct onb_policy_vars good = {.device_id = "dev-1", .tenant_id = "t1"};
	struct onb_policy_vars evil = {.device_id = "a/b", .tenant_id = "+"};
	struct onb_compiled *c = compile_ok(p, &good);
	static const struct pcase tg[] = {
		{'P', "devices/dev-1/secret", false}, {'P', "devices/dev-2/secret", true}, {'P', "devices/dev-1/x", true},
		{'S', "devices/+/secret", false}, {'S', "devices/dev-2/#", true}, {'S', "#", false},
		{'R', "t1/private/x", false}, {'R', "t2/private/x", true}, {'R', "$SYS/x", true},
		{'C', "banned-t1", false}, {'C', "banned-t2", true},
		{'P', "q/a-long-prefix-before-the-variable-dev-1-x/y", false}, {'P', "q/other/y", true},
	};
	static const struct pcase te[] = {
		{'P', "devices/a/b/secret", false}, {'P', "devices/dev-2/x", false}, {'P', "devices", false},
		{'P', "other/x", true}, {'S', "devices/#", false}, {'S', "other/#", true},
		{'R', "t1/private/x", false}, {'R', "anything", false}, {'R', "$SYS/x", false},
		{'C', "banned-t1", false}, {'C', "banned-", false}, {'C', "dev-1", true},
		{'P', "q/a-long-prefix-before-the-variable-a/b-x/y", false}, {'P', "q/other/y", false}, {'P', "q", false},
	};
	char line[256];
	struct onb_decision d;

	run_pcases(p, c, "good", tg, sizeof(tg) / sizeof(tg[0]));
	onb_compiled_free(c);
	c = compile_ok(p, &evil);
	run_pcases(p, c, "evil", te, sizeof(te) / sizeof(te[0]));
	assert_false(onb_policy_allows(c, ONB_ACT_RECEIVE, "x", &d));
	onb_policy_explain(p, c, ONB_ACT_RECEIVE, &d, line, sizeof(line));
	assert_non_null(strstr(line, "deny: statement 2"));
	assert_non_null(strstr(line, "statement 1 broadened ${deviceId}"));
	assert_non_null(strstr(line, "statement 2 broadened ${tenantId}"));
	onb_compiled_free(c);
	onb_policy_free(p);
}

/* Values that make a pattern longer than 65535 bytes: allow off, deny everything. */
static void too_long_values(void **state)
{
	(void)state;
	char doc[2048], *val = malloc(1001);
	size_t o = 0;

	assert_non_null(val);
	memset(val, 'v', 1000);
	val[1000] = '\0';
	o += (size_t)snprintf(doc + o, sizeof(doc) - o, "{\"version\":\"1\",\"statement\":["
		"{\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[\"topic:ok\",\"topic:x/");
	for(int i = 0; i < 70; i++) o += (size_t)snprintf(doc + o, sizeof(doc) - o, "${state}");
	o += (size_t)snprintf(doc + o, sizeof(doc) - o, "\"]},{\"effect\":\"allow\",\"action\":[\"publish\"],"
		"\"resource\":[\"topic:fine/#\"]},{\"effect\":\"deny\",\"action\":[\"publish\"],\"resource\":[\"topic:y/");
	for(int i = 0; i < 70; i++) o += (size_t)snprintf(doc + o, sizeof(doc) - o, "${state}");
	snprintf(doc + o, sizeof(doc) - o, "\"]}]}");
	struct onb_policy *p = parse_ok(doc);
	struct onb_policy_vars v = {.state = val};
	struct onb_compiled *c = compile_ok(p, &v);
	struct onb_decision d;
	char line[1024];

	assert_false(onb_policy_allows(c, ONB_ACT_PUBLISH, "ok", &d)); /* denied by the widened deny */
	assert_int_equal(d.stmt, 2);
	onb_policy_explain(p, c, ONB_ACT_PUBLISH, &d, line, sizeof(line));
	assert_non_null(strstr(line, "statement 0 disabled (substituted pattern too long)"));
	assert_non_null(strstr(line, "statement 2 broadened (substituted pattern too long)"));
	onb_compiled_free(c);
	v.state = "s";
	c = compile_ok(p, &v);
	assert_true(onb_policy_allows(c, ONB_ACT_PUBLISH, "ok", NULL));
	assert_true(onb_policy_allows(c, ONB_ACT_PUBLISH, "fine/x", NULL));
	memset(val, 's', 70);
	memcpy(val + 70, "", 1);
	char ys[80] = "y/";
	memcpy(ys + 2, val, 71);
	assert_false(onb_policy_allows(c, ONB_ACT_PUBLISH, ys, NULL));
	onb_compiled_free(c);
	onb_policy_free(p);
	free(val);
}

struct ecase {
	const char *json;
	const char *want; /* substring of the message */
};

#define DOC(stmts) "{\"version\":\"1\",\"statement\":[" stmts "]}"
#define PUB(res) "{\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[" res "]}"

static void parse_errors(void **state)
{
	(void)state;
	static const struct ecase t[] = {
		{"{", "policy: invalid JSON"}, {"[]", "policy: not a JSON object"},
		{"{\"statement\":[]}", "policy.version: missing"}, {"{\"version\":1,\"statement\":[]}", "policy.version"},
		{"{\"version\":\"1\"}", "policy.statement: missing"},
		{"{\"version\":\"1\",\"Statement\":[]}", "policy: unknown key \"Statement\""},
		{"{\"version\":\"1\",\"statement\":{}}", "policy.statement: not an array"},
		{"{\"version\":\"1\",\"version\":\"2\",\"statement\":[]}", "policy.version: given twice"},
		{DOC("1"), "statement[0]: not an object"},
		{DOC(PUB("\"topic:a\"") ",{\"Effect\":\"allow\"}"), "statement[1]: unknown key \"Effect\""},
		{DOC("{\"effect\":\"Allow\",\"action\":[\"publish\"],\"resource\":[\"topic:a\"]}"), "statement[0].effect: must be"},
		{DOC("{\"effect\":true,\"action\":[\"publish\"],\"resource\":[\"topic:a\"]}"), "statement[0].effect: must be"},
		{DOC("{\"action\":[\"publish\"],\"resource\":[\"topic:a\"]}"), "statement[0].effect: missing"},
		{DOC("{\"effect\":\"allow\",\"resource\":[\"topic:a\"]}"), "statement[0].action: missing"},
		{DOC("{\"effect\":\"allow\",\"action\":[\"publish\"]}"), "statement[0].resource: missing"},
		{DOC("{\"effect\":\"allow\",\"action\":[],\"resource\":[\"topic:a\"]}"), "statement[0].action: empty"},
		{DOC("{\"effect\":\"allow\",\"action\":\"publish\",\"resource\":[\"topic:a\"]}"), "statement[0].action: not an array"},
		{DOC("{\"effect\":\"allow\",\"action\":[\"publish\",\"iot:Publish\"],\"resource\":[\"topic:a\"]}"),
			"statement[0].action[1]: unknown action \"iot:Publish\""},
		{DOC("{\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[]}"), "statement[0].resource: empty"},
		{DOC(PUB("\"topic:a\",\"a/b\"")), "statement[0].resource[1]: \"a/b\" does not start with"},
		{DOC(PUB("\"topic:a\",7")), "statement[0].resource[1]: not a string"},
		{DOC(PUB("\"topic:a/#/b\"")), "statement[0].resource[0]: '#' must be the last level in \"a/#/b\""},
		{DOC(PUB("\"topic:a\"") "," PUB("\"topic:a+/b\"")), "statement[1].resource[0]: '+' must be a whole level"},
		{DOC(PUB("\"topic:a*/b\"")), "statement[0].resource[0]: '*' must be a whole level"},
		{DOC(PUB("\"topic:a/b#\"")), "statement[0].resource[0]: '#' must be a whole level"},
		{DOC(PUB("\"topic:\"")), "statement[0].resource[0]: empty topic"},
		{DOC(PUB("\"topic:devices/${deviceID}\"")), "statement[0].resource[0]: unknown variable"},
		{DOC(PUB("\"topic:devices/${deviceId\"")), "statement[0].resource[0]: unterminated ${"},
		{DOC(PUB("\"topic:${deviceId}+\"")), "statement[0].resource[0]: '+' must be a whole level"},
		{DOC(PUB("\"topicfilter:a/#\"")), "statement[0].resource[0]: serves none of the statement's actions"},
		{DOC(PUB("\"client:x\"")), "statement[0].resource[0]: serves none"},
		{DOC("{\"effect\":\"allow\",\"action\":[\"publish\",\"subscribe\"],\"resource\":[\"topic:a\"]}"),
			"statement[0].action[1]: no resource serves subscribe (it needs topicfilter:)"},
		{DOC("{\"effect\":\"deny\",\"action\":[\"connect\",\"publish\"],\"resource\":[\"topic:a\"]}"),
			"statement[0].action[0]: no resource serves connect"},
		{DOC("{\"effect\":\"allow\",\"action\":[\"subscribe\"],\"resource\":[\"topicfilter:$share/g/a\"]}"),
			"statement[0].resource[0]: a topicfilter: cannot name a $share/ group"},
		{DOC("{\"effect\":\"allow\",\"effect\":\"deny\",\"action\":[\"publish\"],\"resource\":[\"topic:a\"]}"),
			"statement[0].effect: given twice"},
		{DOC("{\"sid\":5,\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[\"topic:a\"]}"), "statement[0].sid"},
		{DOC("{\"effect\":\"allow\",\"action\":[\"connect\"],\"resource\":[\"client:\"]}"),
			"statement[0].resource[0]: empty client id pattern"},
		{DOC("{\"effect\":\"allow\",\"action\":[\"connect\"],\"resource\":[\"client:${nope}\"]}"),
			"statement[0].resource[0]: unknown variable"},
		{DOC(PUB("\"topic:a\"")) " x", "policy: trailing data"},
		{DOC(PUB("\"topic:a\\u0000/#\"")), "policy: holds \\u0000"},
	};
	for(size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++){
		struct onb_policy *p = NULL;
		struct onb_err err = {{0}};
		int rc = onb_policy_parse(t[i].json, strlen(t[i].json), &p, &err);
		if(rc != ONB_EINVAL || p || !strstr(err.msg, t[i].want)){
			fail_msg("case %zu: rc %d, \"%s\" does not hold \"%s\"", i, rc, err.msg, t[i].want);
		}
	}
}

static void parse_limits(void **state)
{
	(void)state;
	size_t cap = 300 * 128 + 256, o = 0;
	char *doc = malloc(cap);
	struct onb_policy *p = NULL;
	struct onb_err err = {{0}};

	assert_non_null(doc);
	o += (size_t)snprintf(doc + o, cap - o, "{\"version\":\"1\",\"statement\":[");
	for(int i = 0; i < 257; i++){
		o += (size_t)snprintf(doc + o, cap - o, "%s" PUB("\"topic:a\""), i ? "," : "");
		if(i == 255){ /* 256 statements are fine */
			assert_int_equal(onb_policy_parse(doc, o, &p, &err), ONB_EINVAL); /* not closed yet */
			memcpy(doc + o, "]}", 3);
			assert_int_equal(onb_policy_parse(doc, o + 2, &p, &err), ONB_OK);
			assert_int_equal(onb_policy_statements(p), 256);
			onb_policy_free(p);
			p = NULL;
		}
	}
	o += (size_t)snprintf(doc + o, cap - o, "]}");
	assert_int_equal(onb_policy_parse(doc, o, &p, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "policy.statement: 257 statements, over the limit of 256"));
	free(doc);

	doc = malloc(70000);
	assert_non_null(doc);
	memset(doc, ' ', 70000);
	memcpy(doc, DOC(PUB("\"topic:a\"")), strlen(DOC(PUB("\"topic:a\""))));
	assert_int_equal(onb_policy_parse(doc, 65536, &p, &err), ONB_OK); /* trailing blanks are fine */
	onb_policy_free(p);
	assert_int_equal(onb_policy_parse(doc, 65537, &p, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "policy: 65537 bytes, over the limit of 65536"));
	free(doc);

	/* sids, version, variables by name, actions by name */
	p = parse_ok(DOC("{\"sid\":\"S0\",\"effect\":\"allow\",\"action\":[\"*\"],\"resource\":[\"topic:a\"]}"));
	assert_string_equal(onb_policy_sid(p, 0), "S0");
	assert_null(onb_policy_sid(p, 1));
	assert_string_equal(onb_policy_version(p), "1");
	onb_policy_free(p);
	struct onb_policy_vars v = {0};
	assert_int_equal(onb_policy_var_set(&v, "tenantId", "t"), ONB_OK);
	assert_string_equal(v.tenant_id, "t");
	assert_int_equal(onb_policy_var_set(&v, "tenant", "t"), ONB_EINVAL);
	assert_int_equal(onb_action_parse("receive"), ONB_ACT_RECEIVE);
	assert_int_equal(onb_action_parse("Receive"), ONB_EINVAL);
	assert_string_equal(onb_action_name(ONB_ACT_SUBSCRIBE), "subscribe");
}

/* ---- shipped policies -------------------------------------------------- */

static struct onb_policy *load_shipped(const char *name)
{
	const char *dir = getenv("ONB_SOURCE_DIR");
	char path[1024];
	static char buf[ONB_POLICY_MAX_BYTES + 1];
	struct onb_policy *p = NULL;
	struct onb_err err = {{0}};
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/policies/%s", dir ? dir : "..", name);
	f = fopen(path, "rb");
	if(!f) fail_msg("cannot open %s (is ONB_SOURCE_DIR set?)", path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if(onb_policy_parse(buf, n, &p, &err) != ONB_OK) fail_msg("%s: %s", name, err.msg);
	return p;
}

/* Checks that nothing outside the shipped device/claim/quarantine policies'
 * own trees is reachable: the service tree, other devices, '$' topics. */
static const struct pcase never[] = {
	{'P', "onb/internal/provision/request", false}, {'S', "onb/internal/#", false}, {'S', "onb/#", false},
	{'R', "onb/internal/provision/reply", false}, {'S', "+/internal/#", false}, {'S', "#", false},
	{'S', "+/#", false}, {'S', "$SYS/#", false}, {'P', "devices/dev-2/telemetry", false},
	{'S', "devices/dev-2/commands/#", false}, {'R', "devices/dev-2/commands/x", false},
	{'S', "devices/+/commands/#", false}, {'S', "devices/#", false}, {'C', "dev-2", false},
	{'P', "tenants/t2/devices/dev-1/telemetry", false}, {'S', "tenants/t2/broadcast/#", false},
	{'S', "tenants/+/broadcast/#", false}, {'S', "tenants/t1/#", false},
	{'P', "devices/dev-2/certificates/renew", false}, {'S', "devices/dev-2/certificates/renew/accepted", false},
	{'S', "devices/+/certificates/renew/accepted", false}, {'S', "$SYS/onboard/#", false},
	{'R', "$SYS/onboard/broker/b1", false}, {'P', "onb/internal/stats", false},
};

static void shipped_device(void **state)
{
	(void)state;
	static const struct pcase t[] = {
		{'C', "dev-1", true}, {'C', "dev-10", false},
		{'P', "devices/dev-1/telemetry", true}, {'P', "devices/dev-1/telemetry/temp", true},
		{'P', "devices/dev-1/status", true}, {'P', "devices/dev-1/status/x", false},
		{'P', "devices/dev-1/commands/reboot", false}, {'S', "devices/dev-1/commands/#", true},
		{'S', "devices/dev-1/commands/+/x", true}, {'R', "devices/dev-1/commands/reboot", true},
		{'P', "devices/dev-1/shadow/update", true}, {'P', "devices/dev-1/shadow/get", true},
		{'P', "devices/dev-1/shadow/update/accepted", false}, {'S', "devices/dev-1/shadow/update/delta", true},
		{'S', "devices/dev-1/shadow/get/accepted", true}, {'S', "devices/dev-1/shadow/+/accepted", false},
		{'S', "devices/dev-1/shadow/#", false}, {'R', "devices/dev-1/shadow/update/rejected", true},
		{'R', "devices/dev-1/shadow/update", false}, {'S', "devices/dev-1/#", false},
		{'P', "$aws/certificates/create-from-csr/json", false}, {'S', "tenants/t1/devices/dev-1/#", false},
		/* certificate renewal: its own topic, its own answers */
		{'P', "devices/dev-1/certificates/renew", true}, {'P', "devices/dev-1/certificates/renew/accepted", false},
		{'S', "devices/dev-1/certificates/renew/accepted", true}, {'S', "devices/dev-1/certificates/renew/rejected", true},
		{'S', "devices/dev-1/certificates/renew/required", true}, {'S', "devices/dev-1/certificates/renew/#", false},
		{'R', "devices/dev-1/certificates/renew/accepted", true}, {'R', "devices/dev-1/certificates/renew", false},
	};
	static const char *const files[] = {"device.json", "device-tenant.json"};
	struct onb_policy_vars v = {.device_id = "dev-1", .client_id = "dev-1", .tenant_id = "t1",
		.cert_fp = "ab12", .state = "active"};

	for(size_t i = 0; i < 2; i++){
		struct onb_policy *p = load_shipped(files[i]);
		struct onb_compiled *c = compile_ok(p, &v);
		run_pcases(p, c, files[i], t, sizeof(t) / sizeof(t[0]));
		run_pcases(p, c, files[i], never, sizeof(never) / sizeof(never[0]));
		/* device.json knows no tenant tree */
		assert_int_equal(onb_policy_allows(c, ONB_ACT_PUBLISH, "tenants/t1/devices/dev-1/telemetry", NULL), i == 1);
		onb_compiled_free(c);
		onb_policy_free(p);
	}
}

static void shipped_device_tenant(void **state)
{
	(void)state;
	static const struct pcase t[] = {
		{'P', "tenants/t1/devices/dev-1/telemetry", true}, {'P', "tenants/t1/devices/dev-1/telemetry/x", true},
		{'P', "tenants/t1/devices/dev-1/status", true}, {'S', "tenants/t1/devices/dev-1/commands/#", true},
		{'R', "tenants/t1/devices/dev-1/commands/x", true}, {'S', "tenants/t1/broadcast/#", true},
		{'S', "tenants/t1/broadcast/fw/+", true}, {'R', "tenants/t1/broadcast/fw", true},
		{'P', "tenants/t1/broadcast/fw", false}, {'P', "tenants/t1/devices/dev-2/telemetry", false},
		{'S', "tenants/t1/devices/+/commands/#", false}, {'P', "devices/dev-1/telemetry", true},
	};
	static const struct pcase unclaimed[] = {
		{'P', "tenants/t1/devices/dev-1/telemetry", false}, {'P', "tenants//devices/dev-1/telemetry", false},
		{'S', "tenants/+/broadcast/#", false}, {'P', "devices/dev-1/telemetry", true},
	};
	struct onb_policy_vars v = {.device_id = "dev-1", .client_id = "dev-1", .tenant_id = "t1"};
	struct onb_policy *p = load_shipped("device-tenant.json");
	struct onb_compiled *c = compile_ok(p, &v);

	assert_int_equal(onb_policy_statements(p), 12);
	run_pcases(p, c, "tenant", t, sizeof(t) / sizeof(t[0]));
	onb_compiled_free(c);
	v.tenant_id = ""; /* no tenant: the tenant statements switch off */
	c = compile_ok(p, &v);
	run_pcases(p, c, "no tenant", unclaimed, sizeof(unclaimed) / sizeof(unclaimed[0]));
	onb_compiled_free(c);
	onb_policy_free(p);
}

static void shipped_quarantine(void **state)
{
	(void)state;
	static const struct pcase t[] = {
		{'C', "dev-1", true}, {'P', "devices/dev-1/status", true}, {'P', "devices/dev-1/telemetry", false},
		{'P', "devices/dev-1/shadow/update", false}, {'S', "devices/dev-1/commands/#", true},
		{'S', "devices/dev-1/commands/remediation/#", true}, {'R', "devices/dev-1/commands/remediation", true},
		{'R', "devices/dev-1/commands/remediation/flash", true}, {'R', "devices/dev-1/commands/reboot", false},
		{'P', "devices/dev-1/certificates/renew", false},
		{'S', "devices/dev-1/shadow/update/delta", false}, {'R', "devices/dev-1/shadow/update/delta", false},
		{'S', "tenants/t1/broadcast/#", false}, {'R', "tenants/t1/broadcast/x", false},
	};
	struct onb_policy_vars v = {.device_id = "dev-1", .client_id = "dev-1", .tenant_id = "t1"};
	struct onb_policy *p = load_shipped("quarantine.json");
	struct onb_compiled *c = compile_ok(p, &v);

	run_pcases(p, c, "quarantine", t, sizeof(t) / sizeof(t[0]));
	run_pcases(p, c, "quarantine", never, sizeof(never) / sizeof(never[0]));
	onb_compiled_free(c);
	onb_policy_free(p);
}

static void shipped_claim(void **state)
{
	(void)state;
	static const struct pcase t[] = {
		{'C', "SN-0001", true}, {'P', "$aws/certificates/create-from-csr/json", true},
		{'P', "$aws/certificates/create/json", true}, {'P', "$aws/provisioning-templates/fleet/provision/json", true},
		{'P', "$aws/provisioning-templates/fleet/provision/json/accepted", false},
		{'P', "$aws/certificates/create-from-csr/json/accepted", false},
		{'S', "$aws/certificates/create-from-csr/json/accepted", true},
		{'S', "$aws/certificates/create-from-csr/json/rejected", true},
		{'S', "$aws/certificates/create-from-csr/json/+", false}, {'S', "$aws/#", false},
		{'S', "$aws/provisioning-templates/fleet/provision/json/accepted", true},
		{'S', "$aws/provisioning-templates/+/provision/json/rejected", true},
		{'S', "$aws/provisioning-templates/#", false},
		{'R', "$aws/certificates/create/json/accepted", true}, {'R', "$aws/things/x/shadow/get", false},
		{'P', "devices/dev-1/telemetry", false}, {'S', "devices/dev-1/commands/#", false},
		{'P', "$aws/provisioning-templates/a/b/provision/json", false},
		/* the CBOR form (issue 14): the same requests and answers */
		{'P', "$aws/certificates/create-from-csr/cbor", true}, {'P', "$aws/certificates/create/cbor", true},
		{'P', "$aws/provisioning-templates/fleet/provision/cbor", true},
		{'P', "$aws/certificates/create-from-csr/cbor/accepted", false},
		{'S', "$aws/certificates/create-from-csr/cbor/accepted", true},
		{'S', "$aws/certificates/create-from-csr/cbor/rejected", true},
		{'S', "$aws/certificates/create/cbor/accepted", true},
		{'S', "$aws/provisioning-templates/fleet/provision/cbor/accepted", true},
		{'S', "$aws/provisioning-templates/+/provision/cbor/rejected", true},
		{'S', "$aws/certificates/create-from-csr/cbor/+", false},
		{'R', "$aws/provisioning-templates/fleet/provision/cbor/accepted", true},
		{'P', "$aws/certificates/create-from-csr/xml", false},
	};
	struct onb_policy_vars v = {.client_id = "SN-0001"};
	struct onb_policy *p = load_shipped("claim.json");
	struct onb_compiled *c = compile_ok(p, &v);

	run_pcases(p, c, "claim", t, sizeof(t) / sizeof(t[0]));
	onb_compiled_free(c);
	onb_policy_free(p);
}

static void shipped_service(void **state)
{
	(void)state;
	static const struct pcase t[] = {
		{'C', "claimsvc", true}, {'C', "claimsvc-2", true}, {'C', "dev-1", false},
		{'P', "onb/internal/prov/reply", true}, {'P', "onb/internal/prov/request", false},
		{'S', "$share/claimsvc/onb/internal/prov/request", true}, {'R', "onb/internal/prov/request", true},
		{'S', "onb/internal/#", false}, {'R', "onb/internal/prov/reply", false}, {'S', "onb/#", false},
		{'P', "devices/dev-1/commands/x", false}, {'S', "#", false}, {'P', "$aws/certificates/create/json", false},
		/* counters: its own go to onb/internal/stats; every broker's and service's can be read */
		{'P', "onb/internal/stats", true}, {'S', "$SYS/onboard/#", true}, {'R', "$SYS/onboard/broker/b1", true},
		{'S', "$SYS/#", false}, {'R', "$SYS/broker/uptime", false},
	};
	static const char *const devpol[] = {"device.json", "device-tenant.json", "quarantine.json", "claim.json"};
	struct onb_policy *p = load_shipped("service.json");
	struct onb_compiled *c = compile_ok(p, NULL);

	run_pcases(p, c, "service", t, sizeof(t) / sizeof(t[0]));
	onb_compiled_free(c);
	onb_policy_free(p);
	/* the internal tree is outside every device-facing policy, whatever its variables */
	for(size_t i = 0; i < 4; i++){
		struct onb_policy_vars v = {.device_id = "onb", .client_id = "onb", .tenant_id = "internal"};
		p = load_shipped(devpol[i]);
		c = compile_ok(p, &v);
		assert_false(onb_policy_allows(c, ONB_ACT_SUBSCRIBE, "onb/internal/#", NULL));
		assert_false(onb_policy_allows(c, ONB_ACT_SUBSCRIBE, "+/internal/#", NULL));
		assert_false(onb_policy_allows(c, ONB_ACT_PUBLISH, "onb/internal/provision/request", NULL));
		assert_false(onb_policy_allows(c, ONB_ACT_RECEIVE, "onb/internal/provision/reply", NULL));
		onb_compiled_free(c);
		onb_policy_free(p);
	}
}

/* onb_policy_allows() must never allocate: malloc is wrapped for this binary. */
static void evaluation_does_not_allocate(void **state)
{
	(void)state;
	static const char *const subjects[] = {
		"devices/dev-1/telemetry", "devices/dev-2/x", "$share/g/devices/dev-1/commands/#", "#", "a/+",
		"tenants/t1/broadcast/x/y/z/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22/23/24/25/26/27/28/29/30/31/32/33",
	};
	struct onb_policy_vars v = {.device_id = "dev-1", .client_id = "dev-1", .tenant_id = "t1"};
	struct onb_policy *p = load_shipped("device-tenant.json");
	struct onb_compiled *c;
	long before;

	before = n_allocs;
	c = compile_ok(p, &v);
	assert_true(n_allocs > before); /* the counter does see lib/'s allocations */
	before = n_allocs;
	for(int a = 0; a < ONB_ACT_COUNT; a++){
		for(size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++){
			struct onb_decision d;
			(void)onb_policy_allows(c, (enum onb_action)a, subjects[i], &d);
			(void)onb_policy_allows(c, (enum onb_action)a, subjects[i], NULL);
			(void)onb_policy_allows_receive(c, subjects[i], &d);
		}
	}
	assert_int_equal(n_allocs, before);
	onb_compiled_free(c);
	onb_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matcher_table),
		cmocka_unit_test(model_grid),
		cmocka_unit_test(share_prefix),
		cmocka_unit_test(many_levels),
		cmocka_unit_test(design_example_policy),
		cmocka_unit_test(hostile_allow),
		cmocka_unit_test(hostile_deny),
		cmocka_unit_test(too_long_values),
		cmocka_unit_test(parse_errors),
		cmocka_unit_test(parse_limits),
		cmocka_unit_test(shipped_device),
		cmocka_unit_test(shipped_device_tenant),
		cmocka_unit_test(shipped_quarantine),
		cmocka_unit_test(shipped_claim),
		cmocka_unit_test(shipped_service),
		cmocka_unit_test(evaluation_does_not_allocate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
