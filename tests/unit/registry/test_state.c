#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "registry/state.h"

static void names_round_trip(void **state)
{
	(void)state;
	for(int s = 0; s < ONB_STATE_COUNT; s++){
		assert_int_equal(onb_state_parse(onb_state_name((enum onb_state)s)), s);
	}
	assert_int_equal(onb_state_parse("Active"), ONB_STATE_INVALID);
	assert_int_equal(onb_state_parse(""), ONB_STATE_INVALID);
	assert_int_equal(onb_state_parse(NULL), ONB_STATE_INVALID);
	assert_string_equal(onb_state_name(ONB_STATE_INVALID), "invalid");
}

static void transitions(void **state)
{
	(void)state;
	assert_true(onb_state_transition_allowed(ONB_STATE_UNCLAIMED, ONB_STATE_ACTIVE));
	assert_true(onb_state_transition_allowed(ONB_STATE_ACTIVE, ONB_STATE_QUARANTINED));
	assert_true(onb_state_transition_allowed(ONB_STATE_QUARANTINED, ONB_STATE_ACTIVE));
	assert_true(onb_state_transition_allowed(ONB_STATE_ACTIVE, ONB_STATE_REVOKED));
	assert_true(onb_state_transition_allowed(ONB_STATE_REVOKED, ONB_STATE_DECOMMISSIONED));
	assert_true(onb_state_transition_allowed(ONB_STATE_DECOMMISSIONED, ONB_STATE_MANUFACTURED));
	/* revoked is terminal but for decommission */
	assert_false(onb_state_transition_allowed(ONB_STATE_REVOKED, ONB_STATE_ACTIVE));
	assert_false(onb_state_transition_allowed(ONB_STATE_REVOKED, ONB_STATE_UNCLAIMED));
	assert_false(onb_state_transition_allowed(ONB_STATE_REVOKED, ONB_STATE_QUARANTINED));
	/* no self transitions, nothing skips manufacture */
	for(int s = 0; s < ONB_STATE_COUNT; s++){
		assert_false(onb_state_transition_allowed((enum onb_state)s, (enum onb_state)s));
	}
	assert_false(onb_state_transition_allowed(ONB_STATE_MANUFACTURED, ONB_STATE_QUARANTINED));
	assert_false(onb_state_transition_allowed(ONB_STATE_INVALID, ONB_STATE_ACTIVE));
	assert_false(onb_state_transition_allowed(ONB_STATE_ACTIVE, ONB_STATE_COUNT));
}

static void may_connect(void **state)
{
	(void)state;
	assert_true(onb_state_may_connect(ONB_STATE_UNCLAIMED));
	assert_true(onb_state_may_connect(ONB_STATE_ACTIVE));
	assert_true(onb_state_may_connect(ONB_STATE_QUARANTINED));
	assert_false(onb_state_may_connect(ONB_STATE_MANUFACTURED));
	assert_false(onb_state_may_connect(ONB_STATE_REVOKED));
	assert_false(onb_state_may_connect(ONB_STATE_DECOMMISSIONED));
}

static void sources_for_lua(void **state)
{
	(void)state;
	char buf[128];
	assert_int_equal(onb_state_sources(ONB_STATE_ACTIVE, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "manufactured,unclaimed,quarantined");
	assert_int_equal(onb_state_sources(ONB_STATE_MANUFACTURED, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "decommissioned");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_round_trip),
		cmocka_unit_test(transitions),
		cmocka_unit_test(may_connect),
		cmocka_unit_test(sources_for_lua),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
