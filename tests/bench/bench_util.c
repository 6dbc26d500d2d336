/* Helpers shared by the load generators of tests/bench/ (see bench_util.h). */
#include "bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

int64_t bu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long bu_num(const char *prog, const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if(errno || end == s || *end || v < min || v > max){
		fprintf(stderr, "%s: %s: bad number '%s' (%ld..%ld)\n", prog, opt, s, min, max);
		exit(2);
	}
	return v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int64_t bu_percentile(int64_t *v, size_t n, double p)
{
	size_t rank;

	if(n == 0) return 0;
	qsort(v, n, sizeof(*v), cmp_i64);
	rank = (size_t)((p / 100.0) * (double)n + 0.999999);
	if(rank < 1) rank = 1;
	if(rank > n) rank = n;
	return v[rank - 1];
}

void bu_id(char *buf, size_t len, const char *prefix, int width, int i)
{
	snprintf(buf, len, "%s%0*d", prefix, width, i);
}

static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[160];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
	ERR_clear_error();
}

SSL_CTX *bu_tls_ctx(const char *cafile, const char *certfile, const char *keyfile,
		char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if(!ctx){
		ssl_err(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1){
		ssl_err(err, errlen, "TLS version");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	if(SSL_CTX_load_verify_file(ctx, cafile) != 1){
		ssl_err(err, errlen, cafile);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if(X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1") != 1){
		ssl_err(err, errlen, "server address check");
		goto fail;
	}
	if(SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1){
		ssl_err(err, errlen, certfile);
		goto fail;
	}
	if(SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1
			|| SSL_CTX_check_private_key(ctx) != 1){
		ssl_err(err, errlen, keyfile);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct mosquitto *bu_client_new(const char *id, SSL_CTX *ctx, int mqtt_version, void *obj)
{
	struct mosquitto *m = mosquitto_new(id, true, obj);

	if(!m) return NULL;
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
			mqtt_version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, ctx);
	mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
	return m;
}

int bu_service(struct mosquitto *m, short revents, bool handshaking, int burst)
{
	int rc = MOSQ_ERR_SUCCESS;

	if(handshaking){
		if(revents & (POLLIN | POLLOUT | POLLERR | POLLHUP)) rc = mosquitto_loop_read(m, 1);
	}else if(revents & (POLLIN | POLLERR | POLLHUP)){
		/* mosquitto_loop_read handles about one packet per call (the
		 * broker writes one TLS record per packet): call it until the
		 * socket would block. */
		for(int k = 0; k < burst; k++){
			errno = 0;
			rc = mosquitto_loop_read(m, 1);
			if(rc != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK) break;
			if(mosquitto_socket(m) < 0) break;
		}
	}
	if(rc == MOSQ_ERR_SUCCESS && (revents & POLLOUT) && mosquitto_socket(m) >= 0){
		rc = mosquitto_loop_write(m, 1);
	}
	return rc;
}

short bu_events(struct mosquitto *m)
{
	return (short)(POLLIN | (mosquitto_want_write(m) ? POLLOUT : 0));
}

/* utime and stime of pid in seconds; -1 when unreadable. */
static int proc_times(long pid, double *utime_s, double *stime_s)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *p;
	long long ut = -1, st = -1;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if(!(f = fopen(path, "r"))) return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold blanks and parentheses: fields count from
	 * the last ')'. utime and stime are fields 14 and 15. */
	if(!(p = strrchr(buf, ')'))) return -1;
	p++;
	for(int field = 3; field <= 15 && *p; field++){
		char *end;
		while(*p == ' ') p++;
		if(field == 14 || field == 15){
			long long v = strtoll(p, &end, 10);
			if(end == p) return -1;
			if(field == 14) ut = v;
			else st = v;
			p = end;
		}else{
			while(*p && *p != ' ') p++;
		}
	}
	if(ut < 0 || st < 0) return -1;
	*utime_s = (double)ut / (double)sysconf(_SC_CLK_TCK);
	*stime_s = (double)st / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

double bu_proc_cpu_s(long pid)
{
	double u, s;
	return proc_times(pid, &u, &s) == 0 ? u + s : -1;
}

static double machine_user_s(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if(!f) return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if(n != 8) return -1;
	/* user nice system idle iowait irq softirq steal */
	return (double)(v[0] + v[1] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

void bu_cpu_take(struct bu_cpu *c, long broker_pid, const long *pids, int npids)
{
	struct rusage ru;
	double u, s;

	memset(c, 0, sizeof(*c));
	if(getrusage(RUSAGE_SELF, &ru) == 0){
		c->self_user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
		c->self = c->self_user + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	}
	c->broker = c->broker_user = -1;
	if(broker_pid > 0 && proc_times(broker_pid, &u, &s) == 0){
		c->broker_user = u;
		c->broker = u + s;
	}
	for(int i = 0; i < npids; i++){
		if(proc_times(pids[i], &u, &s) == 0) c->others_user += u;
	}
	c->machine_user = machine_user_s();
}

double bu_cpu_foreign(const struct bu_cpu *a, const struct bu_cpu *b, double seconds)
{
	double ours = (b->self_user - a->self_user) + (b->others_user - a->others_user);

	if(a->broker_user >= 0 && b->broker_user >= 0) ours += b->broker_user - a->broker_user;
	return seconds > 0 ? (b->machine_user - a->machine_user - ours) / seconds : 0;
}
