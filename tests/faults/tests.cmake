# Fault injection (issue 8): one line per script tests/faults/NAME.sh. They
# measure timings, so none runs beside another test.
onb_script_test(faults redis_outage RUN_SERIAL)
onb_script_test(faults claimsvc_crash RUN_SERIAL)
onb_script_test(faults broker_restart RUN_SERIAL)
onb_script_test(faults redis_readonly RUN_SERIAL)
onb_script_test(faults claimsvc_flood RUN_SERIAL)
onb_script_test(faults audit_queue RUN_SERIAL)
