/* Policy-update latency: time from storing a new version of a policy
 * document (onb_policystore_put, what `onboardctl policy put` calls) to a
 * live session behaving by it.
 *
 *   policy_latency --port P --cafile FILE --cert FILE --key FILE --id ID
 *                  --redis URL [--policy NAME] [-n ROUNDS] [--json]
 *
 * The device ID (registered, active, its certificate in --cert/--key) is
 * given its own policy NAME (default bench-policy-latency). It stays
 * connected (MQTT v5) and publishes QoS 1 to devices/ID/telemetry back to
 * back, one message in flight. Each round stores the other of two versions
 * of NAME, one that allows that publish and one that does not, and measures
 * the time from the start of the store to the first PUBACK that reflects it
 * (reason 0x87 "not authorized" after the denying version, a success code
 * after the allowing one). With one message in flight the figure is at most
 * one publish round trip (~0.1 ms here) above the true moment of change. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mqtt_protocol.h>

#include "bench_util.h"
#include "policy/policystore.h"
#include "registry/redis.h"

#define PROG "policy_latency"

static const char doc_allow[] =
	"{\"version\":\"2026-01-09\",\"statement\":["
	"{\"effect\":\"allow\",\"action\":[\"connect\"],\"resource\":[\"client:${deviceId}\"]},"
	"{\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[\"topic:devices/${deviceId}/telemetry\"]}]}";
static const char doc_deny[] =
	"{\"version\":\"2026-01-09\",\"statement\":["
	"{\"effect\":\"allow\",\"action\":[\"connect\"],\"resource\":[\"client:${deviceId}\"]},"
	"{\"effect\":\"allow\",\"action\":[\"publish\"],\"resource\":[\"topic:devices/${deviceId}/other\"]}]}";

static atomic_int want_denied; /* the outcome the current round waits for */
static atomic_llong hit_ns;     /* when it was first seen, 0 until then */
static atomic_llong last_ack_ns;
static atomic_int connected, acks;
static char topic[200];

static void publish_next(struct mosquitto *m)
{
	static const char payload[] = "{\"t\":21.5}";
	mosquitto_publish(m, NULL, topic, (int)sizeof(payload) - 1, payload, 1, false);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
	(void)obj; (void)flags; (void)props;
	if(rc == 0){
		atomic_store(&connected, 1);
		publish_next(m);
	}else{
		fprintf(stderr, PROG ": CONNACK %s\n", mosquitto_reason_string(rc));
		atomic_store(&connected, -1);
	}
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *props)
{
	long long now = bu_now_ns(), zero = 0;
	(void)obj; (void)mid; (void)props;
	atomic_store(&last_ack_ns, now);
	atomic_fetch_add(&acks, 1);
	if((reason >= 0x80) == (atomic_load(&want_denied) != 0)){
		atomic_compare_exchange_strong(&hit_ns, &zero, now);
	}
	publish_next(m);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int usage(void)
{
	fprintf(stderr, "usage: " PROG " --port P --cafile FILE --cert FILE --key FILE --id ID --redis URL\n"
			"       [--policy NAME] [-n ROUNDS] [--json]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cafile = NULL, *cert = NULL, *key = NULL, *id = NULL, *url = NULL;
	const char *policy = "bench-policy-latency";
	int port = 0, rounds = 40, done = 0, misses = 0;
	bool json = false;
	struct onb_redis_cfg rcfg;
	struct onb_err err;
	struct onb_actor actor = { .who = "bench:policy_latency", .source = "bench" };
	redisContext *rc;
	struct mosquitto *m;
	SSL_CTX *ctx;
	char ebuf[256];
	int64_t *lat, *put;

	for(int i = 1; i < argc; i++){
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if(!strcmp(o, "--json")){ json = true; continue; }
		if(!v) return usage();
		i++;
		if(!strcmp(o, "--port")) port = (int)bu_num(PROG, o, v, 1, 65535);
		else if(!strcmp(o, "--cafile")) cafile = v;
		else if(!strcmp(o, "--cert")) cert = v;
		else if(!strcmp(o, "--key")) key = v;
		else if(!strcmp(o, "--id")) id = v;
		else if(!strcmp(o, "--redis")) url = v;
		else if(!strcmp(o, "--policy")) policy = v;
		else if(!strcmp(o, "-n")) rounds = (int)bu_num(PROG, o, v, 2, 10000);
		else return usage();
	}
	if(!port || !cafile || !cert || !key || !id || !url) return usage();
	if(!onb_policy_name_valid(policy)){
		fprintf(stderr, PROG ": bad policy name\n");
		return 2;
	}
	snprintf(topic, sizeof(topic), "devices/%s/telemetry", id);
	lat = calloc((size_t)rounds, sizeof(*lat));
	put = calloc((size_t)rounds, sizeof(*put));
	if(!lat || !put) return 1;

	if(onb_redis_parse_url(url, &rcfg, &err) != ONB_OK){ fprintf(stderr, PROG ": %s\n", err.msg); return 2; }
	rcfg.timeout_ms = 2000;
	if(!(rc = onb_redis_connect(&rcfg, &err))){ fprintf(stderr, PROG ": %s\n", err.msg); return 1; }
	if(onb_policystore_put(rc, policy, doc_allow, strlen(doc_allow), &actor, &err) != ONB_OK
			|| onb_registry_set_policy(rc, id, policy, &actor, &err) != ONB_OK){
		fprintf(stderr, PROG ": %s\n", err.msg);
		return 1;
	}

	mosquitto_lib_init();
	if(!(ctx = bu_tls_ctx(cafile, cert, key, ebuf, sizeof(ebuf)))){
		fprintf(stderr, PROG ": %s\n", ebuf);
		return 2;
	}
	if(!(m = bu_client_new(id, ctx, 5, NULL))) return 1;
	mosquitto_connect_v5_callback_set(m, on_connect);
	mosquitto_publish_v5_callback_set(m, on_publish);
	if(mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS || mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS){
		fprintf(stderr, PROG ": cannot connect\n");
		return 1;
	}
	for(int t = 0; t < 500 && atomic_load(&connected) == 0; t++) sleep_ms(10);
	for(int t = 0; t < 500 && atomic_load(&acks) < 10; t++) sleep_ms(10);
	if(atomic_load(&connected) != 1 || atomic_load(&acks) < 10){
		fprintf(stderr, PROG ": %s not publishing (connected %d, PUBACKs %d)\n", id,
				atomic_load(&connected), atomic_load(&acks));
		return 1;
	}

	for(int r = 0; r < rounds; r++){
		const char *doc = r % 2 == 0 ? doc_deny : doc_allow;
		int64_t t0, t1, hit = 0;

		atomic_store(&want_denied, r % 2 == 0);
		atomic_store(&hit_ns, 0);
		t0 = bu_now_ns();
		if(onb_policystore_put(rc, policy, doc, strlen(doc), &actor, &err) != ONB_OK){
			fprintf(stderr, PROG ": %s\n", err.msg);
			return 1;
		}
		t1 = bu_now_ns();
		for(int w = 0; w < 30000 && !(hit = atomic_load(&hit_ns)); w++){
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
			/* restart the pump if a PUBACK went missing */
			if(bu_now_ns() - atomic_load(&last_ack_ns) > 500000000LL){
				atomic_store(&last_ack_ns, bu_now_ns());
				publish_next(m);
			}
		}
		if(!hit){
			misses++;
			continue;
		}
		lat[done] = hit - t0;
		put[done] = t1 - t0;
		done++;
		sleep_ms(20);
	}

	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	SSL_CTX_free(ctx);
	mosquitto_lib_cleanup();
	redisFree(rc);
	{
		double p50 = bu_percentile(lat, (size_t)done, 50) / 1e6, p99 = bu_percentile(lat, (size_t)done, 99) / 1e6;
		double pmax = done ? lat[done - 1] / 1e6 : 0;
		double put50 = bu_percentile(put, (size_t)done, 50) / 1e6;
		if(json){
			printf("{\"rounds\":%d,\"measured\":%d,\"missed\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
					"\"max_ms\":%.3f,\"put_p50_ms\":%.3f}\n", rounds, done, misses, p50, p99, pmax, put50);
		}else{
			printf("policy updates: %d (%d missed: no change seen within 3 s)\n", done, misses);
			printf("put -> first PUBACK by the new policy: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
					" (the put itself: p50 %.2f ms)\n", p50, p99, pmax, put50);
		}
	}
	free(lat);
	free(put);
	return misses ? 1 : 0;
}
