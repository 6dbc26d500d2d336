/* mTLS connect rate: N connects, C at a time, each a full TLS handshake,
 * CONNECT -> CONNACK -> DISCONNECT, from one process (poll loops over
 * libmosquitto clients, without libmosquitto's own threads).
 *
 *   connect_rate --port P --cafile FILE --certdir DIR [options]
 *
 * Slot k (0..C-1) connects again and again, in turn as devices <prefix><k>,
 * <prefix><k+C>, <prefix><k+2C>, ... (below D; client id = device id;
 * certificate DIR/<id>.pem, key DIR/<id>.key), so a device is never
 * connected twice at once (a broker with the plugin would take the older
 * session over). Each identity has its own SSL_CTX with its
 * key loaded once: the client pays for the handshake only.
 *
 * Prints connects/s (successful connects / wall time) and the
 * CONNECT -> CONNACK latency percentiles (from the TCP connect to the
 * CONNACK), the client's CPU per connect and, with --broker-pid, the
 * broker's. Exits 1 if any connect failed.
 *
 * Options: --prefix S (pub) --width W (3) --devices D (= C) -n N (1000)
 * -c C (50) --threads T (1) --timeout-ms MS (10000) --max-seconds S (120:
 * no connect starts after that) --mqtt-version 5|311 (5) --broker-pid PID
 * --watch-pid PID (up to 4: processes of the benchmark, e.g. Redis, whose CPU
 * is not counted as "other CPU on the machine") --tls 1.2|1.3 (only that
 * version; default: what the broker and OpenSSL agree on) --label TEXT
 * --json. The TLS version of the first successful connect is printed. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mqtt_protocol.h>

#include "bench_util.h"

#define PROG "connect_rate"
#define MAX_SLOTS 1000
#define MAX_THREADS 8

enum sstate { S_IDLE, S_CONNECTING, S_BYE };

struct slot {
	struct mosquitto *m;
	enum sstate st;
	int dev, home, count;
	int64_t t0, deadline;
	bool got_connack;
	int connack_rc;
	int spins;
};

struct worker {
	pthread_t th;
	struct slot *slots;
	int nslots, first;
};

static struct {
	int port, width, devices, n, c, threads, timeout_ms, max_s, mqtt_version;
	long broker_pid, watch_pid[4];
	int nwatch;
	const char *cafile, *certdir, *prefix, *label;
	int tls_version;            /* TLS1_2_VERSION, TLS1_3_VERSION or 0: any */
	bool json;
} cfg = {
	.width = 3, .n = 1000, .c = 50, .threads = 1, .timeout_ms = 10000, .max_s = 120,
	.mqtt_version = 5, .prefix = "pub", .label = "",
};

static SSL_CTX **ctxs;
static char (*ids)[128];
static int64_t *lat;
static atomic_int next_idx, done_ok, n_refused, n_timeout, n_error;
static int64_t start_ns, stop_starting_ns;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];
static char tls_seen[16];   /* the first successful connect's TLS version */

static void note_error(const char *id, const char *what, const char *detail)
{
	pthread_mutex_lock(&err_lock);
	if(!first_error[0]) snprintf(first_error, sizeof(first_error), "%s: %s: %s", id, what, detail);
	pthread_mutex_unlock(&err_lock);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct slot *s = obj;
	(void)m; (void)flags; (void)props;
	s->got_connack = true;
	s->connack_rc = rc;
}

static void finish(struct slot *s)
{
	if(s->m) mosquitto_destroy(s->m);
	s->m = NULL;
	s->st = S_IDLE;
}

static void fail(struct slot *s, atomic_int *counter, const char *what, const char *detail)
{
	atomic_fetch_add(counter, 1);
	note_error(ids[s->dev], what, detail);
	finish(s);
}

/* Starts the next connect on an idle slot. Returns false when there is
 * nothing left to start (all taken, or past --max-seconds). */
static bool start(struct slot *s)
{
	int idx, rc;

	if(bu_now_ns() >= stop_starting_ns) return false;
	idx = atomic_fetch_add(&next_idx, 1);
	if(idx >= cfg.n) return false;
	s->dev = s->home + cfg.c * (s->count++ % (cfg.devices / cfg.c));
	s->got_connack = false;
	s->spins = 0;
	if(!(s->m = bu_client_new(ids[s->dev], ctxs[s->dev], cfg.mqtt_version, s))){
		fail(s, &n_error, "mosquitto_new", strerror(errno));
		return true;
	}
	mosquitto_connect_v5_callback_set(s->m, on_connect);
	s->st = S_CONNECTING;
	s->t0 = bu_now_ns();
	s->deadline = s->t0 + (int64_t)cfg.timeout_ms * 1000000;
	rc = mosquitto_connect(s->m, "127.0.0.1", cfg.port, 60);
	if(rc != MOSQ_ERR_SUCCESS){
		fail(s, &n_error, "connect", rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
	}
	return true;
}

/* After a poll round: CONNACK seen -> record and say goodbye; goodbye
 * written (libmosquitto closes the socket after DISCONNECT) -> free. */
static void step(struct slot *s, int64_t now)
{
	if(s->st == S_CONNECTING && s->got_connack){
		if(s->connack_rc != 0){
			fail(s, &n_refused, "CONNACK", mosquitto_reason_string(s->connack_rc));
			return;
		}
		int k = atomic_fetch_add(&done_ok, 1);
		lat[k] = now - s->t0;
		if(k == 0){
			SSL *ssl = mosquitto_ssl_get(s->m);
			snprintf(tls_seen, sizeof(tls_seen), "%s", ssl ? SSL_get_version(ssl) : "none");
		}
		s->st = S_BYE;
		mosquitto_disconnect(s->m);
	}
	if(s->st == S_BYE){
		if(mosquitto_socket(s->m) < 0 || now >= s->deadline) finish(s);
		else if(mosquitto_want_write(s->m)) mosquitto_loop_write(s->m, 1);
		return;
	}
	if(s->st == S_CONNECTING && now >= s->deadline) fail(s, &n_timeout, "timeout", "no CONNACK");
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pollfd pfd[MAX_SLOTS];
	int map[MAX_SLOTS];

	for(;;){
		int np = 0, active = 0;
		int64_t now;

		for(int i = 0; i < w->nslots; i++){
			struct slot *s = &w->slots[i];
			/* a connect that fails at once frees the slot for the next */
			while(s->st == S_IDLE && start(s)){
			}
			if(s->st == S_IDLE) continue;
			active++;
			int fd = mosquitto_socket(s->m);
			if(fd < 0) continue;
			pfd[np].fd = fd;
			pfd[np].events = bu_events(s->m);
			pfd[np].revents = 0;
			map[np++] = i;
		}
		if(!active) break;
		if(poll(pfd, (nfds_t)np, 20) < 0 && errno != EINTR){
			note_error("-", "poll", strerror(errno));
			break;
		}
		for(int k = 0; k < np; k++){
			struct slot *s = &w->slots[map[k]];
			int rc;
			if(!pfd[k].revents || s->st == S_IDLE || mosquitto_socket(s->m) != pfd[k].fd) continue;
			if(s->st == S_CONNECTING && ++s->spins > 1000){
				/* libmosquitto keeps retrying SSL_connect on a refused handshake */
				fail(s, &n_error, "tls", "handshake failed");
				continue;
			}
			rc = bu_service(s->m, pfd[k].revents, s->st == S_CONNECTING && !s->got_connack, 16);
			if(rc != MOSQ_ERR_SUCCESS && s->st == S_CONNECTING && !s->got_connack){
				fail(s, &n_error, "connection", mosquitto_strerror(rc));
			}
		}
		now = bu_now_ns();
		for(int i = 0; i < w->nslots; i++){
			if(w->slots[i].st != S_IDLE) step(&w->slots[i], now);
		}
	}
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: " PROG " --port P --cafile FILE --certdir DIR [--prefix S] [--width W]\n"
			"       [--devices D] [-n N] [-c C] [--threads T] [--timeout-ms MS] [--max-seconds S]\n"
			"       [--mqtt-version 5|311] [--broker-pid PID] [--watch-pid PID]... [--tls 1.2|1.3]\n"
			"       [--label TEXT] [--json]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct slot slots[MAX_SLOTS];
	static struct worker workers[MAX_THREADS];
	char err[256], cert[512], key[512];
	struct bu_cpu u0, u1;
	int64_t end_ns;
	int ok;

	for(int i = 1; i < argc; i++){
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if(!strcmp(o, "--json")){ cfg.json = true; continue; }
		if(!v) return usage();
		i++;
		if(!strcmp(o, "--port")) cfg.port = (int)bu_num(PROG, o, v, 1, 65535);
		else if(!strcmp(o, "--cafile")) cfg.cafile = v;
		else if(!strcmp(o, "--certdir")) cfg.certdir = v;
		else if(!strcmp(o, "--prefix")) cfg.prefix = v;
		else if(!strcmp(o, "--width")) cfg.width = (int)bu_num(PROG, o, v, 0, 12);
		else if(!strcmp(o, "--devices")) cfg.devices = (int)bu_num(PROG, o, v, 1, 100000);
		else if(!strcmp(o, "-n")) cfg.n = (int)bu_num(PROG, o, v, 1, 10000000);
		else if(!strcmp(o, "-c")) cfg.c = (int)bu_num(PROG, o, v, 1, MAX_SLOTS);
		else if(!strcmp(o, "--threads")) cfg.threads = (int)bu_num(PROG, o, v, 1, MAX_THREADS);
		else if(!strcmp(o, "--timeout-ms")) cfg.timeout_ms = (int)bu_num(PROG, o, v, 100, 600000);
		else if(!strcmp(o, "--max-seconds")) cfg.max_s = (int)bu_num(PROG, o, v, 1, 3600);
		else if(!strcmp(o, "--mqtt-version") && (!strcmp(v, "5") || !strcmp(v, "311"))) cfg.mqtt_version = v[0] == '5' ? 5 : 4;
		else if(!strcmp(o, "--broker-pid")) cfg.broker_pid = bu_num(PROG, o, v, 1, 1L << 30);
		else if(!strcmp(o, "--watch-pid") && cfg.nwatch < 4) cfg.watch_pid[cfg.nwatch++] = bu_num(PROG, o, v, 1, 1L << 30);
		else if(!strcmp(o, "--label")) cfg.label = v;
		else if(!strcmp(o, "--tls") && !strcmp(v, "1.2")) cfg.tls_version = TLS1_2_VERSION;
		else if(!strcmp(o, "--tls") && !strcmp(v, "1.3")) cfg.tls_version = TLS1_3_VERSION;
		else return usage();
	}
	if(!cfg.port || !cfg.cafile || !cfg.certdir) return usage();
	if(strpbrk(cfg.label, "\"\\\n\t")){
		fprintf(stderr, PROG ": --label may not hold quotes, backslashes or control characters\n");
		return 2;
	}
	if(!cfg.devices) cfg.devices = cfg.c;
	if(cfg.c > cfg.n) cfg.c = cfg.n;
	if(cfg.threads > cfg.c) cfg.threads = cfg.c;
	if(cfg.c > cfg.devices){
		fprintf(stderr, PROG ": -c %d needs at least %d devices (one identity per slot)\n", cfg.c, cfg.c);
		return 2;
	}
	ctxs = calloc((size_t)cfg.devices, sizeof(*ctxs));
	ids = calloc((size_t)cfg.devices, sizeof(*ids));
	lat = calloc((size_t)cfg.n, sizeof(*lat));
	if(!ctxs || !ids || !lat){
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	mosquitto_lib_init();
	/* Identities beyond the last full round of C are never used. */
	cfg.devices -= cfg.devices % cfg.c;
	for(int d = 0; d < cfg.devices; d++){
		bu_id(ids[d], sizeof(ids[d]), cfg.prefix, cfg.width, d);
		snprintf(cert, sizeof(cert), "%s/%s.pem", cfg.certdir, ids[d]);
		snprintf(key, sizeof(key), "%s/%s.key", cfg.certdir, ids[d]);
		if(!(ctxs[d] = bu_tls_ctx(cfg.cafile, cert, key, err, sizeof(err)))){
			fprintf(stderr, PROG ": %s\n", err);
			return 2;
		}
		if(cfg.tls_version && (SSL_CTX_set_min_proto_version(ctxs[d], cfg.tls_version) != 1
				|| SSL_CTX_set_max_proto_version(ctxs[d], cfg.tls_version) != 1)){
			fprintf(stderr, PROG ": cannot restrict TLS to --tls\n");
			return 2;
		}
	}
	for(int k = 0; k < cfg.c; k++) slots[k].home = slots[k].dev = k;
	for(int t = 0, first = 0; t < cfg.threads; t++){
		int share = cfg.c / cfg.threads + (t < cfg.c % cfg.threads ? 1 : 0);
		workers[t].slots = &slots[first];
		workers[t].nslots = share;
		workers[t].first = first;
		first += share;
	}

	bu_cpu_take(&u0, cfg.broker_pid, cfg.watch_pid, cfg.nwatch);
	start_ns = bu_now_ns();
	stop_starting_ns = start_ns + (int64_t)cfg.max_s * 1000000000LL;
	for(int t = 0; t < cfg.threads; t++){
		if(pthread_create(&workers[t].th, NULL, worker_main, &workers[t]) != 0){
			fprintf(stderr, PROG ": cannot start a thread\n");
			return 1;
		}
	}
	for(int t = 0; t < cfg.threads; t++) pthread_join(workers[t].th, NULL);
	end_ns = bu_now_ns();
	bu_cpu_take(&u1, cfg.broker_pid, cfg.watch_pid, cfg.nwatch);

	ok = atomic_load(&done_ok);
	{
		double wall = (double)(end_ns - start_ns) / 1e9;
		double rate = ok / wall;
		double p50 = bu_percentile(lat, (size_t)ok, 50) / 1e6;
		double p90 = bu_percentile(lat, (size_t)ok, 90) / 1e6;
		double p99 = bu_percentile(lat, (size_t)ok, 99) / 1e6;
		double pmax = ok ? lat[ok - 1] / 1e6 : 0;
		double ccpu = ok ? (u1.self - u0.self) * 1e3 / ok : 0;
		double bcpu = (ok && u0.broker >= 0 && u1.broker >= 0) ? (u1.broker - u0.broker) * 1e3 / ok : -1;
		int failed = atomic_load(&n_refused) + atomic_load(&n_timeout) + atomic_load(&n_error);
		double foreign = bu_cpu_foreign(&u0, &u1, wall);

		if(cfg.json){
			printf("{\"label\":\"%s\",\"n\":%d,\"concurrency\":%d,\"threads\":%d,\"succeeded\":%d,"
					"\"refused\":%d,\"timeouts\":%d,\"errors\":%d,\"wall_s\":%.3f,\"connects_per_s\":%.1f,"
					"\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
					"\"client_cpu_ms_per_connect\":%.3f,\"broker_cpu_ms_per_connect\":%.3f,\"foreign_cpu\":%.3f,"
					"\"tls\":\"%s\"}\n",
					cfg.label, cfg.n, cfg.c, cfg.threads, ok, atomic_load(&n_refused),
					atomic_load(&n_timeout), atomic_load(&n_error), wall, rate, p50, p90, p99, pmax,
					ccpu, bcpu, foreign, tls_seen[0] ? tls_seen : "none");
		}else{
			printf("%s%s%d connects, %d at a time, %d thread(s)\n", cfg.label, cfg.label[0] ? ": " : "",
					cfg.n, cfg.c, cfg.threads);
			printf("succeeded %d, refused %d, timeouts %d, errors %d; wall %.2f s: %.1f connects/s\n",
					ok, atomic_load(&n_refused), atomic_load(&n_timeout), atomic_load(&n_error), wall, rate);
			printf("CONNECT->CONNACK ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", p50, p90, p99, pmax);
			printf("client CPU %.3f ms/connect", ccpu);
			if(bcpu >= 0) printf(", broker CPU %.3f ms/connect", bcpu);
			printf("; other CPU on the machine %.2f cores\n", foreign);
			printf("TLS %s\n", tls_seen[0] ? tls_seen : "none");
		}
		if(failed){
			fprintf(stderr, PROG ": %d connect(s) failed; first: %s\n", failed, first_error);
		}
		if(ok + failed < cfg.n){
			fprintf(stderr, PROG ": stopped after %d s (--max-seconds): %d of %d connects made\n",
					cfg.max_s, ok + failed, cfg.n);
		}
		for(int d = 0; d < cfg.devices; d++) SSL_CTX_free(ctxs[d]);
		free(ctxs);
		free(ids);
		free(lat);
		mosquitto_lib_cleanup();
		return failed ? 1 : 0;
	}
}
