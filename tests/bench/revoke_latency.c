/* Revocation latency: time from the call of onb_registry_set_state(revoked)
 * to the device's MQTT connection being closed by the broker, over N devices.
 *
 * usage: revoke_latency --port MQTT_PORT --pki DIR --redis URL [-n 50]
 * Needs a broker with the plugin on 127.0.0.1:MQTT_PORT using DIR's PKI. */
#include <errno.h>
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "onb/pki.h"
#include "onb/redis.h"
#include "onb/registry.h"
#include "onb/x509.h"

struct probe {
	atomic_int connected;     /* 1 on CONNACK success */
	atomic_llong closed_ns;   /* monotonic ns of the first disconnect */
};

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	if(rc == 0) atomic_store(&((struct probe *)arg)->connected, 1);
}

static void on_disconnect(struct mosquitto *m, void *arg, int rc)
{
	struct probe *p = arg;
	long long zero = 0;
	(void)m; (void)rc;
	atomic_compare_exchange_strong(&p->closed_ns, &zero, mono_ns());
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

static long parse_num(const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if(errno || end == s || *end || v < min || v > max){
		fprintf(stderr, "revoke_latency: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *pki = NULL, *url = NULL;
	int port = 0, n = 50;
	char dir[] = "/tmp/onb-revbench.XXXXXX";
	struct onb_redis_cfg cfg;
	struct onb_err err;
	redisContext *rc;

	for(int i = 1; i + 1 < argc; i += 2){
		if(!strcmp(argv[i], "--port")) port = (int)parse_num(argv[i + 1], 1, 65535);
		else if(!strcmp(argv[i], "--pki")) pki = argv[i + 1];
		else if(!strcmp(argv[i], "--redis")) url = argv[i + 1];
		else if(!strcmp(argv[i], "-n")) n = (int)parse_num(argv[i + 1], 1, 100000);
		else { fprintf(stderr, "revoke_latency: unknown option %s\n", argv[i]); return 2; }
	}
	if(!pki || !url || !port){
		fprintf(stderr, "usage: revoke_latency --port MQTT_PORT --pki DIR --redis URL [-n N]\n");
		return 2;
	}
	if(onb_redis_parse_url(url, &cfg, &err) != ONB_OK){ fprintf(stderr, "%s\n", err.msg); return 2; }
	cfg.timeout_ms = 2000;
	if(!(rc = onb_redis_connect(&cfg, &err))){ fprintf(stderr, "%s\n", err.msg); return 1; }
	if(!mkdtemp(dir)){ perror("mkdtemp"); return 1; }

	long long *lat = calloc((size_t)n, sizeof(*lat));
	char ca_prefix[512], cafile[512];
	snprintf(ca_prefix, sizeof(ca_prefix), "%s/device-ca", pki);
	snprintf(cafile, sizeof(cafile), "%s/ca-bundle.pem", pki);
	mosquitto_lib_init();
	struct onb_actor actor = { .who = "bench:revoke_latency", .source = "bench" };

	for(int i = 0; i < n; i++){
		char id[64], prefix[600], certfile[640], keyfile[640], fp[ONB_FP_HEXLEN + 1];
		snprintf(id, sizeof(id), "rev-%d-%d", (int)getpid(), i);
		snprintf(prefix, sizeof(prefix), "%s/%s", dir, id);
		snprintf(certfile, sizeof(certfile), "%s.pem", prefix);
		snprintf(keyfile, sizeof(keyfile), "%s.key", prefix);
		if(onb_pki_issue(ca_prefix, id, prefix, 1, &err) != ONB_OK){ fprintf(stderr, "%s\n", err.msg); return 1; }
		X509 *cert = onb_cert_load(certfile, &err);
		if(!cert || onb_cert_fingerprint(cert, fp, &err) != ONB_OK){ fprintf(stderr, "%s\n", err.msg); return 1; }
		X509_free(cert);
		struct onb_register_req req = { .id = id, .cert_fp = fp, .cert_serial = "00", .state = ONB_STATE_ACTIVE };
		if(onb_registry_register(rc, &req, &actor, &err) != ONB_OK){ fprintf(stderr, "%s\n", err.msg); return 1; }

		struct probe p = { 0 };
		struct mosquitto *m = mosquitto_new(id, true, &p);
		mosquitto_connect_callback_set(m, on_connect);
		mosquitto_disconnect_callback_set(m, on_disconnect);
		if(mosquitto_tls_set(m, cafile, NULL, certfile, keyfile, NULL) != MOSQ_ERR_SUCCESS
				|| mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS
				|| mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS){
			fprintf(stderr, "revoke_latency: cannot connect %s\n", id);
			return 1;
		}
		for(int w = 0; w < 500 && !atomic_load(&p.connected); w++) usleep(10000);
		if(!atomic_load(&p.connected)){ fprintf(stderr, "revoke_latency: %s not admitted\n", id); return 1; }

		/* From the start of the call: the broker may close the socket
		 * before the script's reply is even read here. */
		long long t0 = mono_ns();
		if(onb_registry_set_state(rc, id, ONB_STATE_REVOKED, "bench", &actor, NULL, &err) != ONB_OK){
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		for(int w = 0; w < 20000 && !atomic_load(&p.closed_ns); w++) usleep(100);
		long long t1 = atomic_load(&p.closed_ns);
		if(!t1){ fprintf(stderr, "revoke_latency: %s was not disconnected within 2 s\n", id); return 1; }
		lat[i] = t1 > t0 ? t1 - t0 : 0;
		mosquitto_disconnect(m);
		mosquitto_loop_stop(m, true);
		mosquitto_destroy(m);
		unlink(certfile);
		unlink(keyfile);
	}
	rmdir(dir);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_ll);
	printf("revocations: %d\n", n);
	printf("revoke -> socket closed: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			lat[n / 2] / 1e6, lat[(n * 99 + 99) / 100 - 1] / 1e6, lat[n - 1] / 1e6);
	free(lat);
	mosquitto_lib_cleanup();
	redisFree(rc);
	return 0;
}
