# One line per unit test program (tests/unit/NAME.c).
onb_unit_test(test_ids)
onb_unit_test(test_state)
onb_unit_test(test_registry redis_fixture.c)
onb_unit_test(test_provreg redis_fixture.c)
onb_unit_test(test_x509)
onb_unit_test(test_policy)
# test_policy counts lib/'s allocations to show that evaluation makes none
target_link_options(test_policy PRIVATE -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc)
