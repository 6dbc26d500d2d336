# One line per unit test program (tests/unit/NAME.c).
onb_unit_test(test_ids)
onb_unit_test(test_state)
