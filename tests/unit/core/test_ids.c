#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "core/ids.h"

static void valid_ids(void **state)
{
	(void)state;
	assert_true(onb_id_valid("dev-1"));
	assert_true(onb_id_valid("A.b_c:d-0"));
	char longest[ONB_ID_MAX + 1];
	memset(longest, 'x', ONB_ID_MAX);
	longest[ONB_ID_MAX] = '\0';
	assert_true(onb_id_valid(longest));
}

static void invalid_ids(void **state)
{
	(void)state;
	const char *bad[] = { "", "a/b", "a+b", "#", "a b", "dev\n", "é", "$SYS", "a*b", "${deviceId}" };
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_false(onb_id_valid(bad[i]));
	}
	assert_false(onb_id_valid(NULL));
	char toolong[ONB_ID_MAX + 2];
	memset(toolong, 'x', ONB_ID_MAX + 1);
	toolong[ONB_ID_MAX + 1] = '\0';
	assert_false(onb_id_valid(toolong));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_ids),
		cmocka_unit_test(invalid_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
