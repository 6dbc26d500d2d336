/* Small helpers shared by the load generators of tests/bench/ (mqtt_load,
 * connect_rate, policy_latency): clocks, argument parsing, percentiles, one
 * TLS client context per identity, and driving libmosquitto clients from a
 * poll loop without libmosquitto's own threads. */
#ifndef ONB_BENCH_UTIL_H
#define ONB_BENCH_UTIL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>
#include <openssl/ssl.h>

/* Monotonic nanoseconds. */
int64_t bu_now_ns(void);

/* A decimal integer in [min, max]; prints "PROG: bad number" and exits 2
 * otherwise. */
long bu_num(const char *prog, const char *opt, const char *s, long min, long max);

/* Sorts v and returns its nearest-rank p-th percentile (0 < p <= 100);
 * 0 when n is 0. */
int64_t bu_percentile(int64_t *v, size_t n, double p);

/* "<prefix><i zero-padded to width>" into buf. */
void bu_id(char *buf, size_t len, const char *prefix, int width, int i);

/* A TLS client context presenting certfile/keyfile and verifying the server
 * against cafile for the IP address 127.0.0.1 (TLS >= 1.2), the way a device
 * does. NULL with a message in err on failure. */
SSL_CTX *bu_tls_ctx(const char *cafile, const char *certfile, const char *keyfile,
		char *err, size_t errlen);

/* A clean-session MQTT v5 (or 3.1.1) client using ctx, TCP_NODELAY set. */
struct mosquitto *bu_client_new(const char *id, SSL_CTX *ctx, int mqtt_version, void *obj);

/* Reads whatever the socket holds (up to `burst` packets, so that one busy
 * connection cannot starve the others) and writes what is queued, for the
 * poll events in revents. `handshaking` is true until CONNACK: a writable
 * socket then also goes to mosquitto_loop_read, which is what resumes
 * SSL_connect in libmosquitto. Returns a MOSQ_ERR_* code. */
int bu_service(struct mosquitto *m, short revents, bool handshaking, int burst);

/* The poll events to wait for on m's socket. */
short bu_events(struct mosquitto *m);

/* user+system CPU of process pid (Linux /proc), in seconds; -1 when unreadable. */
double bu_proc_cpu_s(long pid);

/* CPU accounting around a measurement: this process, the broker (pid, 0 for
 * none) and other processes of the benchmark (e.g. Redis), and the machine. */
struct bu_cpu {
	double self, self_user;     /* this process: user+system, user */
	double broker, broker_user; /* -1 when there is no broker pid */
	double others_user;         /* user time of the watched pids */
	double machine_user;        /* /proc/stat user + nice + steal */
};
void bu_cpu_take(struct bu_cpu *c, long broker_pid, const long *pids, int npids);
/* Cores that processes other than ours used between a and b, from user (and
 * steal) time only: system time cannot be split fairly, because the kernel
 * charges loopback softirq work to whichever process it interrupted. A
 * lower bound (builds and compilers, the usual neighbours, are user time). */
double bu_cpu_foreign(const struct bu_cpu *a, const struct bu_cpu *b, double seconds);

#endif
