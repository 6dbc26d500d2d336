/* The policy engine's fast paths against its reference walks, over grids
 * of small patterns and subjects: exact, "L/#" and one-'+' shapes; names
 * walked unsplit (onb_tv_matches_name); deliveries' names taken as valid
 * (onb_policy_allows_receive); deny resources skipped when they overlap no
 * allow (checks without a decision). The reference walks themselves are
 * checked against the brute-force model in test_policy.c. */
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
#include "policy_fixture.h"

/* onb_tv_matches_name (a name walked unsplit) agrees with onb_topic_matches
 * for filter f and name t, from the start and, when f has a '+', from every
 * level up to the first one (the literal prefix compared as one string). */
static void matches_name_agrees(const char *f, const char *t)
{
	uint16_t fe[ONB_TV_CACHE];
	struct onb_tv ft, tt;
	bool want = onb_topic_matches(f, t), plus = false;
	uint32_t pos = 0;

	assert_int_equal(onb_tv_init(&ft, f, strlen(f), ONB_TOPIC_FILTER, fe, ONB_TV_CACHE), ONB_OK);
	assert_int_equal(onb_tv_prepare(&tt, t, strlen(t), ONB_TOPIC_NAME), ONB_OK);
	if(onb_tv_matches_name(&ft, 0, 0, &tt) != want) fail_msg("matches_name(%s, 0, %s)", f, t);
	for(uint32_t lv = 0; lv < ft.nlv && !plus; lv++){
		size_t n;
		const char *l = onb_tv_level(&ft, lv, &n);
		plus = n == 1 && l[0] == '+';
	}
	for(uint32_t lv = 0; plus && lv < ft.nlv; lv++){
		size_t n;
		const char *l = onb_tv_level(&ft, lv, &n);
		if(onb_tv_matches_name(&ft, lv, pos, &tt) != want) fail_msg("matches_name(%s, %u, %s)", f, lv, t);
		if(n == 1 && l[0] == '+') break;
		pos += (uint32_t)n + 1;
	}
}

/* Every filter and name of a grid (the one of test_policy.c's model_grid). */
static void matches_name_grid(void **state)
{
	(void)state;
	static const char *const g[] = {
		"#", "+", "a", "b", "$", "$a", "/", "/#", "+/#", "a/#", "a/+", "+/a", "a/b", "a//b",
		"+/+", "/+", "a/+/#", "+/+/#", "/+/#", "$a/#", "$a/+", "a/b/#", "+/b", "//", "a/",
		"a/b/+/c", "a/+/b/+", "a/b/x/c", "a/b/x", "a/x/b/y", "a/x/b/", "+/+/c",
	};
	size_t n = sizeof(g) / sizeof(g[0]);

	for(size_t i = 0; i < n; i++){
		for(size_t j = 0; j < n; j++){
			if(!strpbrk(g[j], "+#")) matches_name_agrees(g[i], g[j]);
		}
	}
}

/* The engine's fast paths for exact and "L/#" patterns agree with the
 * level walk, for every pattern and subject of the grid. */
static void shapes_agree(void **state)
{
	(void)state;
	static const char *const g[] = {
		"#", "+", "a", "ab", "$", "$a", "/", "/#", "+/#", "a/#", "ab/#", "a/+", "+/a", "a/b", "a//b",
		"+/+", "/+", "a/+/#", "/+/#", "$a/#", "a/b/#", "+/b", "//", "a/", "a/b/c/d/e/f/g/h/#",
		"a/b/c/d/e/f/g/h", "abcdefghijklmnopq/#", "abcdefghijklmnopq", "abcdefghijklmnopqr/x",
		/* '+' after literal levels: the prefix compare, then the unsplit walk */
		"a/b/+/c", "a/b/+", "ab/+/#", "a/+/b/+", "a/b/x/c", "a/b/", "a/b/x", "ab/x", "ab/x/y", "a/b//c",
		"t/acme/devices/+/telemetry/#", "t/acme/devices/d1/telemetry", "t/acme/devices/d1/telemetry/x",
		"t/acme/devices/d1/shadow", "t/acme/devices//telemetry", "t/acme/devices/d1", "t/acme/devices/",
		"t/acme/devices/+/shadow/#", "$a/+", "$a/b",
	};
	size_t n = sizeof(g) / sizeof(g[0]);
	char doc[512];

	for(size_t i = 0; i < n; i++){
		struct onb_policy *p;
		struct onb_compiled *c;
		snprintf(doc, sizeof(doc), "{\"version\":\"1\",\"statement\":[{\"effect\":\"allow\",\"action\":"
			"[\"publish\",\"subscribe\",\"receive\"],\"resource\":[\"topic:%s\",\"topicfilter:%s\"]}]}",
			g[i], g[i]);
		p = parse_ok(doc);
		c = compile_ok(p, NULL);
		for(size_t j = 0; j < n; j++){
			bool m = onb_topic_matches(g[i], g[j]);
			if(onb_policy_allows(c, ONB_ACT_PUBLISH, g[j], NULL) != m) fail_msg("publish %s under %s", g[j], g[i]);
			if(onb_policy_allows(c, ONB_ACT_RECEIVE, g[j], NULL) != m) fail_msg("receive %s under %s", g[j], g[i]);
			/* a delivery's name (never one with a wildcard) skips the scans */
			if(!strpbrk(g[j], "+#") && onb_policy_allows_receive(c, g[j], NULL) != m){
				fail_msg("receive (delivery) %s under %s", g[j], g[i]);
			}
			if(onb_policy_allows(c, ONB_ACT_SUBSCRIBE, g[j], NULL) != onb_filter_contains(g[i], g[j])){
				fail_msg("subscribe %s under %s", g[j], g[i]);
			}
		}
		onb_compiled_free(c);
		onb_policy_free(p);
	}
}

/* A deny next to an allow, every pair of the grid: the answer without a
 * decision (only the denies that overlap an allow are checked) is the one
 * with a decision (every deny), and the model's: allowed iff the allow
 * matches (contains, for subscribe) and the deny does not match (overlap). */
static void live_denies_agree(void **state)
{
	(void)state;
	static const char *const g[] = {
		"#", "+", "a", "b", "$a", "/", "/#", "+/#", "a/#", "a/+", "+/a", "a/b", "a//b", "+/+",
		"a/+/#", "$a/#", "a/b/#", "+/b", "a/", "a/+/c", "b/#", "a/b/c",
	};
	size_t n = sizeof(g) / sizeof(g[0]);
	char doc[512];

	for(size_t i = 0; i < n; i++){
		for(size_t j = 0; j < n; j++){
			struct onb_policy *p;
			struct onb_compiled *c;
			snprintf(doc, sizeof(doc), "{\"version\":\"1\",\"statement\":["
				"{\"effect\":\"deny\",\"action\":[\"publish\",\"subscribe\",\"receive\"],"
				"\"resource\":[\"topic:%s\"]},"
				"{\"effect\":\"allow\",\"action\":[\"publish\",\"subscribe\",\"receive\"],"
				"\"resource\":[\"topic:%s\",\"topicfilter:%s\"]}]}", g[i], g[j], g[j]);
			p = parse_ok(doc);
			c = compile_ok(p, NULL);
			for(size_t k = 0; k < n; k++){
				struct onb_decision d;
				bool name = !strpbrk(g[k], "+#");
				bool sub = onb_filter_contains(g[j], g[k]) && !onb_filter_overlaps(g[i], g[k]);
				if(onb_policy_allows(c, ONB_ACT_SUBSCRIBE, g[k], NULL) != sub
						|| onb_policy_allows(c, ONB_ACT_SUBSCRIBE, g[k], &d) != sub){
					fail_msg("subscribe %s: deny %s, allow %s", g[k], g[i], g[j]);
				}
				if(!name) continue;
				bool pub = onb_topic_matches(g[j], g[k]) && !onb_topic_matches(g[i], g[k]);
				for(int a = ONB_ACT_PUBLISH; a <= ONB_ACT_RECEIVE; a += ONB_ACT_RECEIVE - ONB_ACT_PUBLISH){
					if(onb_policy_allows(c, (enum onb_action)a, g[k], NULL) != pub
							|| onb_policy_allows(c, (enum onb_action)a, g[k], &d) != pub){
						fail_msg("%s %s: deny %s, allow %s", onb_action_name((enum onb_action)a), g[k], g[i], g[j]);
					}
				}
				if(onb_policy_allows_receive(c, g[k], NULL) != pub || onb_policy_allows_receive(c, g[k], &d) != pub){
					fail_msg("receive (delivery) %s: deny %s, allow %s", g[k], g[i], g[j]);
				}
				/* a matching deny is still the one named when asked */
				if(onb_topic_matches(g[i], g[k]) && (d.why != ONB_WHY_MATCH || d.stmt != 0)){
					fail_msg("receive %s: the deny %s is not named", g[k], g[i]);
				}
			}
			onb_compiled_free(c);
			onb_policy_free(p);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matches_name_grid),
		cmocka_unit_test(shapes_agree),
		cmocka_unit_test(live_denies_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
