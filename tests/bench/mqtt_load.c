/* Message throughput: P publishers -> S subscribers through one broker, over
 * mTLS, all in this process (a few threads, each a poll loop over its share
 * of libmosquitto clients, without libmosquitto's own threads).
 *
 *   mqtt_load --port P --cafile FILE --certdir DIR [options]
 *
 * Publisher i is client <pub-prefix><iii> (certificate DIR/<id>.pem, key
 * DIR/<id>.key) and publishes small messages to
 * tenants/<tenant>/devices/<id>/telemetry; every subscriber
 * (<sub-prefix><iii>) subscribes to tenants/<tenant>/devices/+/telemetry,
 * so each message is delivered S times.
 *
 * Closed loop: publishers send (round robin) while fewer than --window
 * messages are still on their way to some subscriber, so the broker always
 * has work queued but never more than its queues hold (nothing is dropped
 * for lack of room, and QoS 0 and QoS 1 are measured the same way). After
 * --warmup seconds, messages are counted for --duration seconds; then
 * publishing stops and the rest drains. A run in which a connection fails,
 * a publish is refused or a message is lost exits 1.
 *
 * Options: --pubs N (100) --subs N (10) --pub-prefix S (pub) --sub-prefix S
 * (sub) --tenant T (bench) --qos 0|1 (0) --payload BYTES (32) --window N (500)
 * --warmup S (1) --duration S (5) --threads T (1) --mqtt-version 5|311 (5)
 * --connect-timeout S (30: every client connected and subscribed by then)
 * --broker-pid PID (report the broker's CPU over the measured interval)
 * --watch-pid PID (up to 4: processes of the benchmark, e.g. Redis, whose
 * CPU is not counted as "other CPU on the machine") --label TEXT --json */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mqtt_protocol.h>

#include "bench_util.h"

#define PROG "mqtt_load"
#define MAX_CLIENTS 1000
#define MAX_THREADS 8
#define PUB_BURST 32
#define READ_BURST 256
#define MAX_SPINS 2000

enum phase { PH_CONNECT, PH_SUBSCRIBE, PH_RUN, PH_DRAIN, PH_STOP };
enum role { ROLE_PUB, ROLE_SUB };

struct client {
	struct mosquitto *m;
	SSL_CTX *ctx;
	enum role role;
	char id[64];
	char topic[256];
	bool connected, sub_sent, dead;
	int spins;
};

struct worker {
	pthread_t th;
	int id;
	struct client *cl[MAX_CLIENTS];
	int n;
	struct client *pubs[MAX_CLIENTS];
	int npubs;
	int rr;
};

static struct {
	int port, npubs, nsubs, qos, payload_len, window, warmup_s, duration_s, threads, mqtt_version, connect_s;
	long broker_pid, watch_pid[4];
	int nwatch;
	const char *cafile, *certdir, *pub_prefix, *sub_prefix, *tenant, *label;
	bool json;
} cfg = {
	.npubs = 100, .nsubs = 10, .qos = 0, .payload_len = 32, .window = 500,
	.warmup_s = 1, .duration_s = 5, .threads = 1, .mqtt_version = 5, .connect_s = 30,
	.pub_prefix = "pub", .sub_prefix = "sub", .tenant = "bench", .label = "",
};

static atomic_int phase;
static atomic_llong g_pub, g_deliv, g_acked, g_denied, g_writeoff;
static atomic_int g_connected, g_subacked, g_failed;
static char filter[256];
static char payload[4096];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];

static void failure(const struct client *c, const char *what, const char *detail)
{
	atomic_fetch_add(&g_failed, 1);
	pthread_mutex_lock(&err_lock);
	if(!first_error[0]){
		snprintf(first_error, sizeof(first_error), "%s: %s: %s", c ? c->id : "-", what, detail);
	}
	pthread_mutex_unlock(&err_lock);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct client *c = obj;
	(void)m; (void)flags; (void)props;
	if(rc != 0){
		failure(c, "CONNACK refused", mosquitto_reason_string(rc));
		c->dead = true;
		return;
	}
	c->connected = true;
	atomic_fetch_add(&g_connected, 1);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
		const mosquitto_property *props)
{
	struct client *c = obj;
	(void)m; (void)mid; (void)props;
	if(n < 1 || granted[0] >= 0x80){
		failure(c, "SUBACK refused", n < 1 ? "no reason code" : mosquitto_reason_string(granted[0]));
		return;
	}
	atomic_fetch_add(&g_subacked, 1);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	(void)m; (void)obj; (void)props;
	if(msg->payloadlen == cfg.payload_len) atomic_fetch_add_explicit(&g_deliv, 1, memory_order_relaxed);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *props)
{
	(void)m; (void)mid; (void)props;
	if(cfg.qos == 0) return;
	if(reason >= 0x80){
		if(atomic_fetch_add(&g_denied, 1) == 0) failure(obj, "PUBACK", mosquitto_reason_string(reason));
	}else{
		atomic_fetch_add_explicit(&g_acked, 1, memory_order_relaxed);
	}
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
	struct client *c = obj;
	(void)m; (void)props;
	if(atomic_load(&phase) < PH_STOP && !c->dead){
		failure(c, "connection lost", mosquitto_reason_string(rc));
		c->dead = true;
	}
}

static long long outstanding(void)
{
	return atomic_load_explicit(&g_pub, memory_order_relaxed) * cfg.nsubs
		- atomic_load_explicit(&g_deliv, memory_order_relaxed)
		- atomic_load_explicit(&g_writeoff, memory_order_relaxed);
}

/* Publishes up to PUB_BURST messages while the window allows; returns true
 * if the window is what stopped it. */
static bool publish_some(struct worker *w)
{
	for(int k = 0; k < PUB_BURST; k++){
		struct client *c;
		int rc;

		if(outstanding() >= (long long)cfg.window * cfg.nsubs) return true;
		c = w->pubs[w->rr];
		w->rr = (w->rr + 1) % w->npubs;
		if(c->dead) continue;
		rc = mosquitto_publish(c->m, NULL, c->topic, cfg.payload_len, payload, cfg.qos, false);
		if(rc != MOSQ_ERR_SUCCESS){
			failure(c, "publish", mosquitto_strerror(rc));
			c->dead = true;
			continue;
		}
		atomic_fetch_add_explicit(&g_pub, 1, memory_order_relaxed);
	}
	return false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pollfd pfd[MAX_CLIENTS];
	int map[MAX_CLIENTS];
	int64_t next_misc = bu_now_ns() + 1000000000LL;

	for(int i = 0; i < w->n; i++){
		struct client *c = w->cl[i];
		int rc;

		if(!(c->m = bu_client_new(c->id, c->ctx, cfg.mqtt_version, c))){
			failure(c, "mosquitto_new", strerror(errno));
			c->dead = true;
			continue;
		}
		mosquitto_connect_v5_callback_set(c->m, on_connect);
		mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
		mosquitto_message_v5_callback_set(c->m, on_message);
		mosquitto_publish_v5_callback_set(c->m, on_publish);
		mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
		rc = mosquitto_connect(c->m, "127.0.0.1", cfg.port, 120);
		if(rc != MOSQ_ERR_SUCCESS){
			failure(c, "connect", rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
			c->dead = true;
		}
	}

	for(;;){
		enum phase ph = atomic_load(&phase);
		bool window_full = false, publishing;
		int np = 0, timeout;

		if(ph == PH_STOP) break;
		if(ph == PH_SUBSCRIBE || ph == PH_RUN){
			for(int i = 0; i < w->n; i++){
				struct client *c = w->cl[i];
				if(c->role != ROLE_SUB || c->sub_sent || c->dead) continue;
				c->sub_sent = true;
				int rc = mosquitto_subscribe_v5(c->m, NULL, filter, cfg.qos, 0, NULL);
				if(rc != MOSQ_ERR_SUCCESS) failure(c, "subscribe", mosquitto_strerror(rc));
			}
		}
		publishing = ph == PH_RUN && w->npubs > 0;
		if(publishing) window_full = publish_some(w);

		for(int i = 0; i < w->n; i++){
			struct client *c = w->cl[i];
			int fd;
			if(c->dead || !c->m || (fd = mosquitto_socket(c->m)) < 0) continue;
			pfd[np].fd = fd;
			pfd[np].events = bu_events(c->m);
			pfd[np].revents = 0;
			map[np++] = i;
		}
		timeout = publishing ? (window_full ? 1 : 0) : 20;
		if(poll(pfd, (nfds_t)np, timeout) < 0 && errno != EINTR){
			failure(NULL, "poll", strerror(errno));
			break;
		}
		for(int k = 0; k < np; k++){
			struct client *c = w->cl[map[k]];
			int rc;
			if(!pfd[k].revents || c->dead || mosquitto_socket(c->m) != pfd[k].fd) continue;
			if(!c->connected && ++c->spins > MAX_SPINS){
				failure(c, "handshake", "no CONNACK");
				c->dead = true;
				continue;
			}
			rc = bu_service(c->m, pfd[k].revents, !c->connected, READ_BURST);
			if(rc != MOSQ_ERR_SUCCESS && !c->dead && atomic_load(&phase) < PH_STOP){
				failure(c, "connection", mosquitto_strerror(rc));
				c->dead = true;
			}
		}
		if(bu_now_ns() >= next_misc){
			next_misc = bu_now_ns() + 1000000000LL;
			for(int i = 0; i < w->n; i++){
				if(!w->cl[i]->dead && w->cl[i]->m) mosquitto_loop_misc(w->cl[i]->m);
			}
		}
	}

	for(int i = 0; i < w->n; i++){
		struct client *c = w->cl[i];
		if(!c->m) continue;
		if(!c->dead && mosquitto_socket(c->m) >= 0){
			mosquitto_disconnect(c->m);
			mosquitto_loop_write(c->m, 1);
		}
		mosquitto_destroy(c->m);
		c->m = NULL;
	}
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Waits until *counter reaches target, a failure happens or ms pass. */
static bool wait_count(atomic_int *counter, int target, int ms)
{
	for(int t = 0; t < ms; t += 10){
		if(atomic_load(counter) >= target) return true;
		if(atomic_load(&g_failed)) return false;
		sleep_ms(10);
	}
	return atomic_load(counter) >= target;
}

/* Runs for ms while watching for a stalled window: if nothing is delivered
 * for a second although messages are outstanding, they are written off (and
 * reported as lost) so that the run continues. */
static int run_for(int ms)
{
	long long last = atomic_load(&g_deliv);
	int idle = 0, stalls = 0;

	for(int t = 0; t < ms && !atomic_load(&g_failed); t += 10){
		sleep_ms(10);
		long long d = atomic_load(&g_deliv);
		if(d != last){
			last = d;
			idle = 0;
		}else if((idle += 10) >= 1000 && outstanding() > 0){
			atomic_fetch_add(&g_writeoff, outstanding());
			stalls++;
			idle = 0;
		}
	}
	return stalls;
}

static int usage(void)
{
	fprintf(stderr, "usage: " PROG " --port P --cafile FILE --certdir DIR [--pubs N] [--subs N]\n"
			"       [--pub-prefix S] [--sub-prefix S] [--tenant T] [--qos 0|1] [--payload BYTES]\n"
			"       [--window N] [--warmup S] [--duration S] [--threads T] [--broker-pid PID]\n"
			"       [--mqtt-version 5|311] [--connect-timeout S] [--watch-pid PID]... [--label TEXT] [--json]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct client clients[MAX_CLIENTS];
	static struct worker workers[MAX_THREADS];
	char err[256], cert[512], key[512];
	int total, stalls;
	int64_t t0, t1;
	long long p0, p1, d0, d1, a0, a1, lost;
	struct bu_cpu u0, u1;

	for(int i = 1; i < argc; i++){
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if(!strcmp(o, "--json")){ cfg.json = true; continue; }
		if(!v) return usage();
		i++;
		if(!strcmp(o, "--port")) cfg.port = (int)bu_num(PROG, o, v, 1, 65535);
		else if(!strcmp(o, "--cafile")) cfg.cafile = v;
		else if(!strcmp(o, "--certdir")) cfg.certdir = v;
		else if(!strcmp(o, "--pubs")) cfg.npubs = (int)bu_num(PROG, o, v, 1, 900);
		else if(!strcmp(o, "--subs")) cfg.nsubs = (int)bu_num(PROG, o, v, 1, 99);
		else if(!strcmp(o, "--pub-prefix")) cfg.pub_prefix = v;
		else if(!strcmp(o, "--sub-prefix")) cfg.sub_prefix = v;
		else if(!strcmp(o, "--tenant")) cfg.tenant = v;
		else if(!strcmp(o, "--qos")) cfg.qos = (int)bu_num(PROG, o, v, 0, 1);
		else if(!strcmp(o, "--payload")) cfg.payload_len = (int)bu_num(PROG, o, v, 1, (long)sizeof(payload));
		else if(!strcmp(o, "--window")) cfg.window = (int)bu_num(PROG, o, v, 1, 100000);
		else if(!strcmp(o, "--warmup")) cfg.warmup_s = (int)bu_num(PROG, o, v, 0, 60);
		else if(!strcmp(o, "--duration")) cfg.duration_s = (int)bu_num(PROG, o, v, 1, 120);
		else if(!strcmp(o, "--threads")) cfg.threads = (int)bu_num(PROG, o, v, 1, MAX_THREADS);
		else if(!strcmp(o, "--broker-pid")) cfg.broker_pid = bu_num(PROG, o, v, 1, 1L << 30);
		else if(!strcmp(o, "--watch-pid") && cfg.nwatch < 4) cfg.watch_pid[cfg.nwatch++] = bu_num(PROG, o, v, 1, 1L << 30);
		else if(!strcmp(o, "--label")) cfg.label = v;
		else if(!strcmp(o, "--connect-timeout")) cfg.connect_s = (int)bu_num(PROG, o, v, 1, 600);
		else if(!strcmp(o, "--mqtt-version") && (!strcmp(v, "5") || !strcmp(v, "311"))) cfg.mqtt_version = v[0] == '5' ? 5 : 4;
		else return usage();
	}
	if(!cfg.port || !cfg.cafile || !cfg.certdir) return usage();
	if(strpbrk(cfg.label, "\"\\\n\t")){
		fprintf(stderr, PROG ": --label may not hold quotes, backslashes or control characters\n");
		return 2;
	}
	total = cfg.npubs + cfg.nsubs;
	if(cfg.threads > total) cfg.threads = total;
	snprintf(filter, sizeof(filter), "tenants/%s/devices/+/telemetry", cfg.tenant);
	for(int i = 0; i < cfg.payload_len; i++) payload[i] = (char)('a' + i % 26);

	mosquitto_lib_init();
	for(int i = 0; i < total; i++){
		struct client *c = &clients[i];
		bool sub = i < cfg.nsubs;

		c->role = sub ? ROLE_SUB : ROLE_PUB;
		bu_id(c->id, sizeof(c->id), sub ? cfg.sub_prefix : cfg.pub_prefix, 3, sub ? i : i - cfg.nsubs);
		char id[sizeof(c->id)];
		memcpy(id, c->id, sizeof(id)); /* c->id and c->topic share *c: keep snprintf's arguments apart */
		snprintf(c->topic, sizeof(c->topic), "tenants/%s/devices/%s/telemetry", cfg.tenant, id);
		snprintf(cert, sizeof(cert), "%s/%s.pem", cfg.certdir, c->id);
		snprintf(key, sizeof(key), "%s/%s.key", cfg.certdir, c->id);
		if(!(c->ctx = bu_tls_ctx(cfg.cafile, cert, key, err, sizeof(err)))){
			fprintf(stderr, PROG ": %s\n", err);
			return 2;
		}
		/* Round robin, so that every thread has subscribers and publishers. */
		struct worker *w = &workers[i % cfg.threads];
		w->cl[w->n++] = c;
		if(!sub) w->pubs[w->npubs++] = c;
	}

	atomic_store(&phase, PH_CONNECT);
	for(int t = 0; t < cfg.threads; t++){
		workers[t].id = t;
		if(pthread_create(&workers[t].th, NULL, worker_main, &workers[t]) != 0){
			fprintf(stderr, PROG ": cannot start a thread\n");
			return 1;
		}
	}
	if(!wait_count(&g_connected, total, cfg.connect_s * 1000)){
		if(!atomic_load(&g_failed)) failure(NULL, "connect", "not every client connected in time (--connect-timeout)");
		goto done;
	}
	atomic_store(&phase, PH_SUBSCRIBE);
	if(!wait_count(&g_subacked, cfg.nsubs, 10000)){
		if(!atomic_load(&g_failed)) failure(NULL, "subscribe", "not every SUBACK within 10 s");
		goto done;
	}
	atomic_store(&phase, PH_RUN);
	stalls = run_for(cfg.warmup_s * 1000);
	t0 = bu_now_ns();
	p0 = atomic_load(&g_pub); d0 = atomic_load(&g_deliv); a0 = atomic_load(&g_acked);
	bu_cpu_take(&u0, cfg.broker_pid, cfg.watch_pid, cfg.nwatch);
	stalls += run_for(cfg.duration_s * 1000);
	t1 = bu_now_ns();
	p1 = atomic_load(&g_pub); d1 = atomic_load(&g_deliv); a1 = atomic_load(&g_acked);
	bu_cpu_take(&u1, cfg.broker_pid, cfg.watch_pid, cfg.nwatch);

	/* Drain: wait while deliveries still arrive (up to a minute: a broker
	 * under valgrind is slow), and 2 s past the last one. */
	atomic_store(&phase, PH_DRAIN);
	{
		long long last = -1;
		int idle = 0;
		for(int t = 0; t < 60000 && idle < 2000 && outstanding() > 0 && !atomic_load(&g_failed); t += 10){
			long long d = atomic_load(&g_deliv);
			idle = d == last ? idle + 10 : 0;
			last = d;
			sleep_ms(10);
		}
	}
	lost = outstanding() + atomic_load(&g_writeoff);

	{
		double dt = (double)(t1 - t0) / 1e9;
		double pub_rate = (double)(p1 - p0) / dt, del_rate = (double)(d1 - d0) / dt;
		double cpu = (u1.self - u0.self) / dt;
		double bcpu = (u0.broker >= 0 && u1.broker >= 0) ? (u1.broker - u0.broker) / dt : -1;
		double foreign = bu_cpu_foreign(&u0, &u1, dt);

		if(cfg.json){
			printf("{\"label\":\"%s\",\"qos\":%d,\"publishers\":%d,\"subscribers\":%d,\"payload\":%d,"
					"\"window\":%d,\"threads\":%d,\"seconds\":%.3f,\"published\":%lld,\"delivered\":%lld,"
					"\"acked\":%lld,\"published_per_s\":%.1f,\"delivered_per_s\":%.1f,\"lost\":%lld,"
					"\"stalls\":%d,\"denied\":%lld,\"loadgen_cpu\":%.3f,\"broker_cpu\":%.3f,"
					"\"foreign_cpu\":%.3f,\"delivered_total\":%lld,\"failed\":%d}\n",
					cfg.label, cfg.qos, cfg.npubs, cfg.nsubs, cfg.payload_len, cfg.window, cfg.threads,
					dt, p1 - p0, d1 - d0, a1 - a0, pub_rate, del_rate, lost, stalls,
					atomic_load(&g_denied), cpu, bcpu, foreign, atomic_load(&g_deliv), atomic_load(&g_failed));
		}else{
			printf("%s%sQoS %d, %d publishers -> %d subscribers, %d-byte payloads, window %d, %d threads\n",
					cfg.label, cfg.label[0] ? ": " : "", cfg.qos, cfg.npubs, cfg.nsubs,
					cfg.payload_len, cfg.window, cfg.threads);
			printf("published %lld in %.2f s: %.0f messages/s; delivered %lld: %.0f deliveries/s\n",
					p1 - p0, dt, pub_rate, d1 - d0, del_rate);
			printf("lost %lld, stalls %d, refused %lld; load generator CPU %.2f cores",
					lost, stalls, atomic_load(&g_denied), cpu);
			if(bcpu >= 0) printf(", broker CPU %.2f cores", bcpu);
			printf("; other CPU on the machine %.2f cores\n", foreign);
		}
		if(lost > 0 && !atomic_load(&g_failed)) failure(NULL, "lost", "messages were lost");
	}
done:
	atomic_store(&phase, PH_STOP);
	for(int t = 0; t < cfg.threads; t++) pthread_join(workers[t].th, NULL);
	for(int i = 0; i < total; i++) SSL_CTX_free(clients[i].ctx);
	mosquitto_lib_cleanup();
	if(atomic_load(&g_failed)){
		fprintf(stderr, PROG ": %d failure(s); first: %s\n", atomic_load(&g_failed), first_error);
		return 1;
	}
	return 0;
}
