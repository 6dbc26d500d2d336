# One line per integration script (tests/integration/NAME.sh).
onb_integration_test(connect)
onb_integration_test(acl)
onb_integration_test(revoke)
onb_integration_test(outage)
onb_integration_test(policy)
onb_integration_test(allowlist)
onb_integration_test(provision)
onb_integration_test(claimcode)
