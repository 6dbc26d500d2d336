/* Parse and compile helpers shared by the policy unit tests; include after
 * <cmocka.h> (they fail the test with fail_msg). */
#ifndef ONB_TEST_POLICY_FIXTURE_H
#define ONB_TEST_POLICY_FIXTURE_H

#include <string.h>

#include "policy/policy.h"

static struct onb_policy *parse_ok(const char *json)
{
	struct onb_policy *p = NULL;
	struct onb_err err = {{0}};

	if(onb_policy_parse(json, strlen(json), &p, &err) != ONB_OK) fail_msg("parse: %s", err.msg);
	return p;
}

static struct onb_compiled *compile_ok(const struct onb_policy *p, const struct onb_policy_vars *v)
{
	struct onb_compiled *c = NULL;
	struct onb_err err = {{0}};

	if(onb_policy_compile(p, v, &c, &err) != ONB_OK) fail_msg("compile: %s", err.msg);
	return c;
}

#endif
