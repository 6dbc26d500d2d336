/* ACL check cost: the shipped 10-statement policies/device-tenant.json,
 * compiled for one device, checked against 1,000 distinct subjects (publish,
 * subscribe and receive; about half allowed, the rest denied by default or by
 * its deny statement), cycled for --iterations checks.
 *
 * --delivery instead measures the receive check of the throughput benchmark
 * (tests/bench/run.sh) as the plugin makes it for each delivered message:
 * tests/bench/policies/bench-subscriber.json for subscriber sub000 of tenant
 * bench, topics tenants/bench/devices/pub000..pub999/telemetry, through
 * onb_policy_allows_receive.
 *
 *   acl_bench [--iterations N] [--policy FILE] [--delivery]
 *
 * Prints ns per check (CLOCK_MONOTONIC around the loop). Everything but the
 * loop is the same for every N, so under callgrind
 * (Ir(N) - Ir(0)) / N is the instruction count of one check: see acl_bench.sh. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"

#define NSUBJ 1000
#define SUBJ_LEN 96

static char subj[NSUBJ][SUBJ_LEN];
static enum onb_action act[NSUBJ];

static int usage(void)
{
	fprintf(stderr, "usage: acl_bench [--iterations N] [--policy FILE] [--delivery]\n");
	return 2;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if(!f) return NULL;
	buf = malloc(ONB_POLICY_MAX_BYTES + 1);
	if(buf) *len = fread(buf, 1, ONB_POLICY_MAX_BYTES + 1, f);
	fclose(f);
	return buf;
}

/* Ten families of subjects, 100 each; or the throughput benchmark's topics. */
static void make_subjects(bool delivery)
{
	if(delivery){
		for(int i = 0; i < NSUBJ; i++){
			act[i] = ONB_ACT_RECEIVE;
			snprintf(subj[i], SUBJ_LEN, "tenants/bench/devices/pub%03d/telemetry", i);
		}
		return;
	}
	for(int i = 0; i < NSUBJ; i++){
		switch(i % 10){
		case 0: act[i] = ONB_ACT_PUBLISH; snprintf(subj[i], SUBJ_LEN, "devices/dev-42/telemetry/sensor-%d", i); break;
		case 1: act[i] = ONB_ACT_PUBLISH; snprintf(subj[i], SUBJ_LEN, "devices/dev-%d/telemetry", i); break;
		case 2: act[i] = ONB_ACT_PUBLISH; snprintf(subj[i], SUBJ_LEN, "tenants/acme/devices/dev-42/telemetry/m%d", i); break;
		case 3: act[i] = ONB_ACT_RECEIVE; snprintf(subj[i], SUBJ_LEN, "devices/dev-42/commands/cmd-%d", i); break;
		case 4: act[i] = ONB_ACT_RECEIVE; snprintf(subj[i], SUBJ_LEN, "tenants/acme/broadcast/fw/%d", i); break;
		case 5: act[i] = ONB_ACT_PUBLISH; snprintf(subj[i], SUBJ_LEN, "tenants/other-%d/devices/dev-42/telemetry", i); break;
		case 6: act[i] = ONB_ACT_SUBSCRIBE; snprintf(subj[i], SUBJ_LEN, "devices/dev-42/commands/%d/#", i); break;
		case 7: act[i] = ONB_ACT_SUBSCRIBE; snprintf(subj[i], SUBJ_LEN, "devices/+/commands/%d", i); break;
		case 8: act[i] = ONB_ACT_PUBLISH; snprintf(subj[i], SUBJ_LEN, "onb/internal/%d", i); break;
		default: act[i] = ONB_ACT_RECEIVE; snprintf(subj[i], SUBJ_LEN, "$aws/things/dev-%d/shadow/update", i); break;
		}
	}
}

int main(int argc, char **argv)
{
	const char *path = ONB_POLICY_DIR "/device-tenant.json";
	unsigned long long iters = 10000000ULL;
	struct onb_policy_vars v = {.device_id = "dev-42", .client_id = "dev-42", .tenant_id = "acme",
		.cert_fp = "5f1c0e9a", .state = "active"};
	bool delivery = false;
	struct onb_policy *p = NULL;
	struct onb_compiled *c = NULL;
	struct onb_err err = {{0}};
	struct timespec t0, t1;
	unsigned long long allowed = 0;
	int nallowed = 0;
	size_t len = 0;
	char *doc;

	for(int i = 1; i < argc; i++){
		if(strcmp(argv[i], "--iterations") == 0 && i + 1 < argc){
			char *end;
			errno = 0;
			iters = strtoull(argv[++i], &end, 10);
			if(errno || *end || argv[i][0] == '-') return usage();
		}else if(strcmp(argv[i], "--policy") == 0 && i + 1 < argc){
			path = argv[++i];
		}else if(strcmp(argv[i], "--delivery") == 0){
			delivery = true;
			path = ONB_BENCH_POLICY_DIR "/bench-subscriber.json";
			v = (struct onb_policy_vars){.device_id = "sub000", .client_id = "sub000", .tenant_id = "bench",
				.cert_fp = "5f1c0e9a", .state = "active"};
		}else{
			return usage();
		}
	}
	if(!(doc = read_file(path, &len))){
		fprintf(stderr, "acl_bench: cannot read %s\n", path);
		return 1;
	}
	if(onb_policy_parse(doc, len, &p, &err) != ONB_OK || onb_policy_compile(p, &v, &c, &err) != ONB_OK){
		fprintf(stderr, "acl_bench: %s: %s\n", path, err.msg);
		return 1;
	}
	make_subjects(delivery);
	for(int i = 0; i < NSUBJ; i++) nallowed += onb_policy_allows(c, act[i], subj[i], NULL);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if(delivery){
		for(unsigned long long it = 0, k = 0; it < iters; it++){
			allowed += onb_policy_allows_receive(c, subj[k], NULL);
			if(++k == NSUBJ) k = 0;
		}
	}else{
		for(unsigned long long it = 0, k = 0; it < iters; it++){
			allowed += onb_policy_allows(c, act[k], subj[k], NULL);
			if(++k == NSUBJ) k = 0;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
	printf("policy: %s (%zu statements, compiled %zu bytes)\n", path, onb_policy_statements(p),
		onb_compiled_size(c));
	printf("subjects: %d distinct, %d allowed\n", NSUBJ, nallowed);
	printf("checks: %llu (%llu allowed)\n", iters, allowed);
	if(iters) printf("ns/check: %.1f\n", ns / (double)iters);
	onb_compiled_free(c);
	onb_policy_free(p);
	free(doc);
	return 0;
}
