/* Revocation latency: time from the call of onb_registry_set_state(revoked)
 * to the device's MQTT connection being closed by the broker, over N devices.
 * With several brokers (--port given more than once, all on one registry),
 * device i connects to broker i mod K, so that the revocation has to cross
 * from the registry to whichever broker holds the session.
 *
 * --takeover measures the fleet's single-session rule instead (plugin/fleet.c):
 * device i connects to broker i mod K, then the same device to broker
 * i+1 mod K; printed is the time from the second connect (its start, and its
 * CONNACK) to the first connection's socket closed, and the run fails if a
 * second connection is closed too.
 *
 * usage: revoke_latency --port MQTT_PORT [--port ...] --pki DIR --redis URL [-n 50] [--takeover]
 * Needs brokers with the plugin on 127.0.0.1:MQTT_PORT using DIR's PKI. */
#include <errno.h>
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pki/pki.h"
#include "registry/redis.h"
#include "registry/registry.h"
#include "pki/x509.h"

struct probe {
	atomic_int connected;     /* 1 on CONNACK success */
	atomic_llong connack_ns;  /* monotonic ns of the CONNACK */
	atomic_llong closed_ns;   /* monotonic ns of the first disconnect */
};

#define MAX_BROKERS 16

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	if(rc == 0){
		atomic_store(&((struct probe *)arg)->connack_ns, mono_ns());
		atomic_store(&((struct probe *)arg)->connected, 1);
	}
}

static void on_disconnect(struct mosquitto *m, void *arg, int rc)
{
	struct probe *p = arg;
	long long zero = 0;
	(void)rc;
	atomic_compare_exchange_strong(&p->closed_ns, &zero, mono_ns());
	/* no automatic reconnect: a device coming back would take its session over again */
	mosquitto_disconnect(m);
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


struct device {
	char id[64], certfile[640], keyfile[640];
};

/* Issues, registers (active) and writes the certificate of device i. */
static int make_device(redisContext *rc, const char *dir, const char *ca_prefix, int i, struct device *d)
{
	char prefix[600], fp[ONB_FP_HEXLEN + 1];
	struct onb_actor actor = { .who = "bench:revoke_latency", .source = "bench" };
	struct onb_err err;
	X509 *cert;

	snprintf(d->id, sizeof(d->id), "rev-%d-%d", (int)getpid(), i);
	snprintf(prefix, sizeof(prefix), "%s/%s", dir, d->id);
	snprintf(d->certfile, sizeof(d->certfile), "%s.pem", prefix);
	snprintf(d->keyfile, sizeof(d->keyfile), "%s.key", prefix);
	if(onb_pki_issue(ca_prefix, d->id, prefix, 1, &err) != ONB_OK) goto fail;
	cert = onb_cert_load(d->certfile, &err);
	if(!cert || onb_cert_fingerprint(cert, fp, &err) != ONB_OK){
		X509_free(cert);
		goto fail;
	}
	X509_free(cert);
	struct onb_register_req req = { .id = d->id, .cert_fp = fp, .cert_serial = "00", .state = ONB_STATE_ACTIVE };
	if(onb_registry_register(rc, &req, &actor, &err) != ONB_OK) goto fail;
	return 0;
fail:
	fprintf(stderr, "%s\n", err.msg);
	return -1;
}

/* A connected client of d on port, or NULL (said on stderr). */
static struct mosquitto *connect_probe(const struct device *d, const char *cafile, int port, struct probe *p)
{
	struct mosquitto *m = mosquitto_new(d->id, true, p);

	if(!m) return NULL;
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_disconnect_callback_set(m, on_disconnect);
	if(mosquitto_tls_set(m, cafile, NULL, d->certfile, d->keyfile, NULL) != MOSQ_ERR_SUCCESS
			|| mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS
			|| mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS){
		fprintf(stderr, "revoke_latency: cannot connect %s to port %d\n", d->id, port);
		mosquitto_destroy(m);
		return NULL;
	}
	for(int w = 0; w < 500 && !atomic_load(&p->connected) && !atomic_load(&p->closed_ns); w++) usleep(10000);
	if(!atomic_load(&p->connected)){
		fprintf(stderr, "revoke_latency: %s not admitted on port %d\n", d->id, port);
		mosquitto_loop_stop(m, true);
		mosquitto_destroy(m);
		return NULL;
	}
	return m;
}

static void close_probe(struct mosquitto *m)
{
	if(!m) return;
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, true);
	mosquitto_destroy(m);
}

/* Waits up to 2 s for p's socket to close; its monotonic ns, or 0. */
static long long wait_closed(struct probe *p)
{
	for(int w = 0; w < 20000 && !atomic_load(&p->closed_ns); w++) usleep(100);
	return atomic_load(&p->closed_ns);
}

static void print_ms(const char *what, long long *lat, int n)
{
	qsort(lat, (size_t)n, sizeof(*lat), cmp_ll);
	printf("%s: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what,
			lat[n / 2] / 1e6, lat[(n * 99 + 99) / 100 - 1] / 1e6, lat[n - 1] / 1e6);
}

int main(int argc, char **argv)
{
	const char *pki = NULL, *url = NULL;
	int ports[MAX_BROKERS], nports = 0, n = 50, ret = 1;
	bool takeover = false;
	char dir[] = "/tmp/onb-revbench.XXXXXX";
	struct onb_redis_cfg cfg;
	struct onb_err err;
	redisContext *rc;

	for(int i = 1; i < argc; i++){
		if(!strcmp(argv[i], "--takeover")){ takeover = true; continue; }
		if(i + 1 >= argc){ fprintf(stderr, "revoke_latency: %s needs a value\n", argv[i]); return 2; }
		if(!strcmp(argv[i], "--port")){
			if(nports == MAX_BROKERS){ fprintf(stderr, "revoke_latency: at most %d brokers\n", MAX_BROKERS); return 2; }
			ports[nports++] = (int)parse_num(argv[++i], 1, 65535);
		}
		else if(!strcmp(argv[i], "--pki")) pki = argv[++i];
		else if(!strcmp(argv[i], "--redis")) url = argv[++i];
		else if(!strcmp(argv[i], "-n")) n = (int)parse_num(argv[++i], 1, 100000);
		else { fprintf(stderr, "revoke_latency: unknown option %s\n", argv[i]); return 2; }
	}
	if(!pki || !url || !nports || (takeover && nports < 2)){
		fprintf(stderr, "usage: revoke_latency --port MQTT_PORT [--port ...] --pki DIR --redis URL [-n N] [--takeover]\n"
				"  (--takeover needs two ports or more)\n");
		return 2;
	}
	if(onb_redis_parse_url(url, &cfg, &err) != ONB_OK){ fprintf(stderr, "%s\n", err.msg); return 2; }
	cfg.timeout_ms = 2000;
	if(!(rc = onb_redis_connect(&cfg, &err))){ fprintf(stderr, "%s\n", err.msg); return 1; }
	if(!mkdtemp(dir)){ perror("mkdtemp"); return 1; }

	long long *lat = calloc((size_t)n, sizeof(*lat)), *lat_ack = calloc((size_t)n, sizeof(*lat_ack));
	char ca_prefix[512], cafile[512];
	snprintf(ca_prefix, sizeof(ca_prefix), "%s/device-ca", pki);
	snprintf(cafile, sizeof(cafile), "%s/ca-bundle.pem", pki);
	mosquitto_lib_init();
	struct onb_actor actor = { .who = "bench:revoke_latency", .source = "bench" };

	for(int i = 0; i < n; i++){
		struct device d;
		struct probe p = { 0 }, p2 = { 0 };
		struct mosquitto *m = NULL, *m2 = NULL;
		long long t0, t1;

		if(make_device(rc, dir, ca_prefix, i, &d) != 0) goto done;
		if(!(m = connect_probe(&d, cafile, ports[i % nports], &p))) goto done;
		if(takeover){
			t0 = mono_ns();
			m2 = connect_probe(&d, cafile, ports[(i + 1) % nports], &p2);
			if(!m2){ close_probe(m); goto done; }
		}else{
			/* From the start of the call: the broker may close the socket
			 * before the script's reply is even read here. */
			t0 = mono_ns();
			if(onb_registry_set_state(rc, d.id, ONB_STATE_REVOKED, "bench", &actor, NULL, &err) != ONB_OK){
				fprintf(stderr, "%s\n", err.msg);
				close_probe(m);
				goto done;
			}
		}
		t1 = wait_closed(&p);
		if(!t1){
			fprintf(stderr, "revoke_latency: %s on port %d was not disconnected within 2 s\n", d.id, ports[i % nports]);
			close_probe(m);
			close_probe(m2);
			goto done;
		}
		lat[i] = t1 > t0 ? t1 - t0 : 0;
		if(takeover){
			long long ack = atomic_load(&p2.connack_ns);
			lat_ack[i] = t1 > ack ? t1 - ack : 0;
			if(atomic_load(&p2.closed_ns)){
				fprintf(stderr, "revoke_latency: the newer session of %s was closed too\n", d.id);
				close_probe(m);
				close_probe(m2);
				goto done;
			}
		}
		close_probe(m);
		close_probe(m2);
		unlink(d.certfile);
		unlink(d.keyfile);
	}
	if(takeover){
		printf("takeovers: %d over %d brokers\n", n, nports);
		print_ms("second connect started -> older socket closed", lat, n);
		print_ms("second CONNACK -> older socket closed", lat_ack, n);
	}else{
		printf("revocations: %d over %d broker(s)\n", n, nports);
		print_ms("revoke -> socket closed", lat, n);
	}
	ret = 0;
done:
	rmdir(dir);
	free(lat);
	free(lat_ack);
	mosquitto_lib_cleanup();
	redisFree(rc);
	return ret;
}
