/* The shipped tenant back-end policy (policies/tenant-app.json) alone and
 * together with device-tenant.json: a tenant's app reads its tenant tree and
 * commands its own devices; tenant A's app can neither see nor command
 * tenant B's devices. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

static struct onb_policy *load(const char *name)
{
	const char *dir = getenv("ONB_SOURCE_DIR");
	static char buf[ONB_POLICY_MAX_BYTES + 1];
	struct onb_policy *p = NULL;
	struct onb_err err = {{0}};
	char path[1024];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/policies/%s", dir ? dir : "..", name);
	f = fopen(path, "rb");
	if(!f) fail_msg("cannot open %s (is ONB_SOURCE_DIR set?)", path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if(onb_policy_parse(buf, n, &p, &err) != ONB_OK) fail_msg("%s: %s", name, err.msg);
	return p;
}

static struct onb_compiled *compile(const struct onb_policy *p, const char *client, const char *tenant)
{
	struct onb_policy_vars v = { .device_id = client, .client_id = client, .tenant_id = tenant,
		.cert_fp = "ab12", .state = "active" };
	struct onb_compiled *c = NULL;
	struct onb_err err = {{0}};

	if(onb_policy_compile(p, &v, &c, &err) != ONB_OK) fail_msg("compile: %s", err.msg);
	return c;
}

struct pcase {
	char act; /* C P S R */
	const char *subject;
	bool want;
};

static enum onb_action act_of(char c)
{
	return c == 'C' ? ONB_ACT_CONNECT : c == 'P' ? ONB_ACT_PUBLISH : c == 'S' ? ONB_ACT_SUBSCRIBE : ONB_ACT_RECEIVE;
}

static void run(const struct onb_policy *p, const struct onb_compiled *c, const char *what,
		const struct pcase *t, size_t n)
{
	for(size_t i = 0; i < n; i++){
		struct onb_decision d;
		char line[512];
		bool got = onb_policy_allows(c, act_of(t[i].act), t[i].subject, &d);
		if(got != t[i].want){
			onb_policy_explain(p, c, act_of(t[i].act), &d, line, sizeof(line));
			fail_msg("%s case %zu: %c \"%s\" want %d: %s", what, i, t[i].act, t[i].subject, t[i].want, line);
		}
	}
}

static void tenant_app_alone(void **state)
{
	static const struct pcase t[] = {
		{'C', "app-acme", true}, {'C', "app-acme-2", true}, {'C', "app-globex", false},
		{'C', "dev-1", false}, {'C', "acme", false},
		/* the tenant tree: read everything, shared subscriptions too */
		{'S', "tenants/acme/#", true}, {'S', "$share/acme/tenants/acme/devices/+/telemetry/#", true},
		{'S', "tenants/acme/devices/+/status", true}, {'R', "tenants/acme/devices/dev-1/telemetry", true},
		{'S', "tenants/+/#", false}, {'S', "tenants/globex/#", false}, {'S', "#", false},
		{'S', "tenants/#", false}, {'R', "tenants/globex/devices/dev-9/telemetry", false},
		{'S', "devices/#", false}, {'R', "devices/dev-1/telemetry", false},
		/* commands to its own devices only, through the tenant tree */
		{'P', "tenants/acme/devices/dev-1/commands/reboot", true},
		{'P', "tenants/acme/devices/dev-1/commands", true},
		{'P', "tenants/acme/broadcast/firmware", true},
		{'P', "tenants/globex/devices/dev-9/commands/reboot", false},
		{'P', "tenants/globex/broadcast/firmware", false},
		{'P', "devices/dev-1/commands/reboot", false},
		/* no posing as a device */
		{'P', "tenants/acme/devices/dev-1/telemetry", false}, {'P', "tenants/acme/devices/dev-1/status", false},
		{'P', "tenants/acme/devices/dev-1/shadow/update", false},
		/* claiming, and nothing of the internal tree */
		{'P', "onb/claim/json", true}, {'S', "onb/claim/json/accepted", true},
		{'S', "onb/claim/json/rejected", true}, {'R', "onb/claim/json/accepted", true},
		{'P', "onb/claim/json/accepted", false}, {'S', "onb/claim/json/+", false}, {'S', "onb/#", false},
		{'S', "onb/internal/#", false}, {'P', "onb/internal/claim/request", false},
		{'R', "onb/internal/prov/request", false}, {'P', "onb/internal/prov/reply", false},
		{'P', "$aws/certificates/create-from-csr/json", false},
	};
	struct onb_policy *p = load("tenant-app.json");
	struct onb_compiled *c = compile(p, "app-acme", "acme");

	run(p, c, "tenant-app", t, sizeof(t) / sizeof(t[0]));
	onb_compiled_free(c);

	/* a service identity without a tenant holds nothing of this policy
	 * (claim replies stay reachable only to nobody: no connect) */
	static const struct pcase none[] = {
		{'C', "app-", false}, {'C', "app-acme", false}, {'S', "tenants/+/#", false},
		{'P', "tenants//devices/dev-1/commands/x", false}, {'S', "tenants//#", false},
	};
	c = compile(p, "app-", "");
	run(p, c, "no tenant", none, sizeof(none) / sizeof(none[0]));
	onb_compiled_free(c);
	onb_policy_free(p);
}

/* Every topic of a small grid, both directions, both tenants. */
static void tenants_are_isolated(void **state)
{
	static const char *const tenants[] = { "acme", "globex" };
	static const char *const devices[] = { "dev-1", "dev-9" }; /* dev-1 is acme's, dev-9 globex's */
	static const char *const suffixes[] = {
		"commands", "commands/reboot", "commands/a/b", "telemetry", "telemetry/temp", "status",
	};
	struct onb_policy *app = load("tenant-app.json"), *dev = load("device-tenant.json");
	struct onb_compiled *apps[2], *devs[2];
	int app_to_own = 0, own_to_app = 0;
	char topic[256], filter[256];
	(void)state;

	for(int i = 0; i < 2; i++){
		char client[32];
		snprintf(client, sizeof(client), "app-%s", tenants[i]);
		apps[i] = compile(app, client, tenants[i]);
		devs[i] = compile(dev, devices[i], tenants[i]);
	}
	for(int tt = 0; tt < 2; tt++){               /* tenant in the topic */
		for(int dd = 0; dd < 2; dd++){           /* device in the topic */
			for(size_t s = 0; s < sizeof(suffixes) / sizeof(suffixes[0]); s++){
				snprintf(topic, sizeof(topic), "tenants/%s/devices/%s/%s", tenants[tt], devices[dd], suffixes[s]);
				for(int a = 0; a < 2; a++){
					for(int d = 0; d < 2; d++){
						bool app_pub = onb_policy_allows(apps[a], ONB_ACT_PUBLISH, topic, NULL);
						bool dev_rcv = onb_policy_allows(devs[d], ONB_ACT_RECEIVE, topic, NULL);
						bool dev_pub = onb_policy_allows(devs[d], ONB_ACT_PUBLISH, topic, NULL);
						bool app_rcv = onb_policy_allows(apps[a], ONB_ACT_RECEIVE, topic, NULL);
						/* a message from one tenant never reaches the other's side */
						if(a != d && app_pub && dev_rcv) fail_msg("app %d commands device %d via %s", a, d, topic);
						if(a != d && dev_pub && app_rcv) fail_msg("app %d reads device %d via %s", a, d, topic);
						if(a == d && app_pub && dev_rcv) app_to_own++;
						if(a == d && dev_pub && app_rcv) own_to_app++;
					}
					/* an app never publishes or receives outside its tenant */
					if(tt != a){
						assert_false(onb_policy_allows(apps[a], ONB_ACT_PUBLISH, topic, NULL));
						assert_false(onb_policy_allows(apps[a], ONB_ACT_RECEIVE, topic, NULL));
					}
				}
			}
		}
	}
	/* ...while each app commands and reads its own device */
	assert_int_equal(app_to_own, 2 * 3);   /* 3 command suffixes, per tenant */
	assert_int_equal(own_to_app, 2 * 3);   /* telemetry, telemetry/temp, status */
	for(int a = 0; a < 2; a++){
		snprintf(filter, sizeof(filter), "tenants/%s/devices/+/telemetry/#", tenants[1 - a]);
		assert_false(onb_policy_allows(apps[a], ONB_ACT_SUBSCRIBE, filter, NULL));
		snprintf(filter, sizeof(filter), "tenants/%s/devices/+/telemetry/#", tenants[a]);
		assert_true(onb_policy_allows(apps[a], ONB_ACT_SUBSCRIBE, filter, NULL));
		/* a device cannot subscribe to its tenant's other devices */
		snprintf(filter, sizeof(filter), "tenants/%s/devices/+/commands/#", tenants[a]);
		assert_false(onb_policy_allows(devs[a], ONB_ACT_SUBSCRIBE, filter, NULL));
		onb_compiled_free(apps[a]);
		onb_compiled_free(devs[a]);
	}
	onb_policy_free(app);
	onb_policy_free(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tenant_app_alone),
		cmocka_unit_test(tenants_are_isolated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
