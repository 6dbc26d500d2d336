/* claimsvc's Prometheus text writer (claimsvc/prom.c): escaping, number
 * formats, the size cap, name rules. promtool checks whole pages in
 * tests/integration/http.sh; this checks the corners a page rarely shows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "prom.h"

/* The text one sample renders to. */
static char *sample(const char *k1, const char *v1, const char *k2, const char *v2, double value)
{
	struct csvc_text t;
	char *out;

	csvc_text_init(&t, 4096);
	csvc_prom_sample(&t, "x_total", k1, v1, k2, v2, value);
	out = csvc_text_take(&t, NULL);
	assert_non_null(out);
	return out;
}

#define ASSERT_SAMPLE(expect, ...) do { char *s_ = sample(__VA_ARGS__); \
	assert_string_equal(s_, expect); free(s_); } while(0)

static void values(void **state)
{
	(void)state;
	ASSERT_SAMPLE("x_total 0\n", NULL, NULL, NULL, NULL, 0);
	ASSERT_SAMPLE("x_total 18446744073709\n", NULL, NULL, NULL, NULL, 18446744073709.0);
	/* 2^53 and beyond are not exact integers any more: %.17g */
	ASSERT_SAMPLE("x_total 9007199254740992\n", NULL, NULL, NULL, NULL, 9007199254740992.0);
	ASSERT_SAMPLE("x_total 1.8446744073709552e+19\n", NULL, NULL, NULL, NULL, 18446744073709551616.0);
	ASSERT_SAMPLE("x_total 0.001\n", NULL, NULL, NULL, NULL, 0.001);
	ASSERT_SAMPLE("x_total 1765112345.123\n", NULL, NULL, NULL, NULL, 1765112345.123);
	ASSERT_SAMPLE("x_total NaN\n", NULL, NULL, NULL, NULL, NAN);
	ASSERT_SAMPLE("x_total +Inf\n", NULL, NULL, NULL, NULL, INFINITY);
	ASSERT_SAMPLE("x_total -Inf\n", NULL, NULL, NULL, NULL, -INFINITY);
}

static void labels(void **state)
{
	(void)state;
	ASSERT_SAMPLE("x_total{broker=\"b-1\"} 3\n", "broker", "b-1", NULL, NULL, 3);
	ASSERT_SAMPLE("x_total{broker=\"b\",reason=\"not-registered\"} 1\n", "broker", "b", "reason", "not-registered", 1);
	/* backslash, double quote and newline escaped; nothing else */
	ASSERT_SAMPLE("x_total{a=\"q\\\"b\\\\s\\nn\tx\"} 1\n", "a", "q\"b\\s\nn\tx", NULL, NULL, 1);
	ASSERT_SAMPLE("x_total{a=\"\"} 1\n", "a", "", NULL, NULL, 1);
	ASSERT_SAMPLE("x_total{a=\"\"} 1\n", "a", NULL, NULL, NULL, 1);
}

static void family_and_names(void **state)
{
	struct csvc_text t;
	char *out;

	(void)state;
	csvc_text_init(&t, 4096);
	csvc_prom_family(&t, "onboard_x_total", CSVC_PROM_COUNTER, "Things.");
	csvc_prom_family(&t, "onboard_up", CSVC_PROM_GAUGE, "Up.");
	out = csvc_text_take(&t, NULL);
	assert_string_equal(out, "# HELP onboard_x_total Things.\n# TYPE onboard_x_total counter\n"
			"# HELP onboard_up Up.\n# TYPE onboard_up gauge\n");
	free(out);
	assert_true(csvc_prom_name_valid("a:b_c9", false));
	assert_false(csvc_prom_name_valid("a:b", true));
	assert_false(csvc_prom_name_valid("9a", false));
	assert_false(csvc_prom_name_valid("a-b", false));
	assert_false(csvc_prom_name_valid("", false));
	/* an invalid name or label name spoils the page rather than print it */
	csvc_text_init(&t, 4096);
	csvc_prom_family(&t, "bad-name", CSVC_PROM_GAUGE, "x");
	assert_null(csvc_text_take(&t, NULL));
	csvc_text_init(&t, 4096);
	csvc_prom_sample(&t, "ok", "bad-label", "v", NULL, NULL, 1);
	assert_null(csvc_text_take(&t, NULL));
}

/* A page never grows past its cap, and one that would is refused whole. */
static void cap(void **state)
{
	struct csvc_text t;
	size_t len = 0;
	char *out;

	(void)state;
	csvc_text_init(&t, 64);
	csvc_text_printf(&t, "%s", "0123456789012345678901234567890123456789012345678901234567890"); /* 61 */
	out = csvc_text_take(&t, &len);
	assert_int_equal(len, 61);
	free(out);
	csvc_text_init(&t, 64);
	for(int i = 0; i < 100; i++) csvc_prom_sample(&t, "x_total", "a", "b", NULL, NULL, i);
	assert_true(t.overflow);
	assert_true(t.len < 64);
	assert_null(csvc_text_take(&t, NULL));
	csvc_text_init(&t, 64);
	assert_null(csvc_text_take(&t, NULL)); /* nothing written */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(values),
		cmocka_unit_test(labels),
		cmocka_unit_test(family_and_names),
		cmocka_unit_test(cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
