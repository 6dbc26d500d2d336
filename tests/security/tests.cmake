# Attack catalogue (issue 8): one line per script tests/security/NAME.sh.
onb_script_test(security topics)
onb_script_test(security identity)
onb_script_test(security provisioning)
onb_cbor_variant(security provisioning)
onb_script_test(security hostile)
