/* The admission view at scale: fills a Redis with N devices (pipelined
 * HSET + SET, as register.lua leaves them: state, tenant, cert_fp, birth_fp,
 * serials, times, and the onb:fp: index), then loads them into a view
 * (lib/identity/admview_load.c) and prints the load time, the resident memory the
 * view added (VmRSS after minus before, so malloc's own overhead counts) per
 * device, the bytes the view asked for, and lookups per second.
 *
 *   admview_mem --port P [--devices N (1000000)] [--no-fill] [--batch B (2000)]
 *
 * --no-fill loads what the Redis holds (e.g. from an earlier run). Redis on
 * 127.0.0.1 only. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "identity/admview.h"
#include "registry/redis.h"

#define PROG "admview_mem"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if(!f) return -1;
	while(fgets(line, sizeof(line), f)){
		if(!strncmp(line, "VmRSS:", 6)){
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static void fp_of(const char *s, const char *salt, char out[ONB_FP_HEXLEN + 1])
{
	unsigned char md[32];
	char buf[256];
	unsigned int len = 0;

	snprintf(buf, sizeof(buf), "%s/%s", salt, s);
	EVP_Digest(buf, strlen(buf), md, &len, EVP_sha256(), NULL);
	for(int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int fill(redisContext *rc, long n)
{
	const long chunk = 5000;

	for(long base = 0; base < n; base += chunk){
		long end = base + chunk < n ? base + chunk : n;
		for(long i = base; i < end; i++){
			char id[32], key[64], fpkey[80], fp[ONB_FP_HEXLEN + 1], birth[ONB_FP_HEXLEN + 1];
			snprintf(id, sizeof(id), "bench-%07ld", i);
			snprintf(key, sizeof(key), "onb:dev:{%s}", id);
			fp_of(id, "op", fp);
			fp_of(id, "birth", birth);
			snprintf(fpkey, sizeof(fpkey), "onb:fp:%s", fp);
			redisAppendCommand(rc, "HSET %s state active tenant %s cert_fp %s birth_fp %s cert_serial %s "
					"not_after 1900000000 created 1765000000000 updated 1765000000000 provisioned 1765000000000 "
					"claimed 1765000000000 serial SN%s batch B1",
					key, i % 2 ? "acme" : "globex", fp, birth, "0f3a9c2b7d1e4f5a", id + 6);
			redisAppendCommand(rc, "SET %s %s", fpkey, id);
		}
		for(long i = base; i < end; i++){
			for(int k = 0; k < 2; k++){
				void *r = NULL;
				if(redisGetReply(rc, &r) != REDIS_OK || !r){
					fprintf(stderr, PROG ": filling: %s\n", rc->errstr);
					return -1;
				}
				freeReplyObject(r);
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	long n = 1000000, port = 0;
	int batch = 2000;
	bool do_fill = true;
	struct onb_redis_cfg cfg;
	struct onb_err err;
	struct onb_admview *v;
	redisContext *rc;
	size_t skipped = 0;
	long before, after;
	int64_t t0, t1;

	for(int i = 1; i < argc; i++){
		if(!strcmp(argv[i], "--no-fill")){ do_fill = false; continue; }
		if(i + 1 >= argc) goto usage;
		if(!strcmp(argv[i], "--port")) port = strtol(argv[++i], NULL, 10);
		else if(!strcmp(argv[i], "--devices")) n = strtol(argv[++i], NULL, 10);
		else if(!strcmp(argv[i], "--batch")) batch = (int)strtol(argv[++i], NULL, 10);
		else goto usage;
	}
	if(port <= 0 || port > 65535 || n <= 0 || batch <= 0) goto usage;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
	cfg.port = (int)port;
	cfg.timeout_ms = 30000;
	rc = onb_redis_connect(&cfg, &err);
	if(!rc){
		fprintf(stderr, PROG ": %s\n", err.msg);
		return 1;
	}
	if(do_fill){
		t0 = now_ns();
		if(fill(rc, n) != 0) return 1;
		printf("filled %ld devices in %.2f s\n", n, (double)(now_ns() - t0) / 1e9);
	}
	before = rss_kb();
	v = onb_admview_new(0);
	t0 = now_ns();
	if(!v || onb_admview_load(rc, v, batch, NULL, &skipped, &err) != ONB_OK){
		fprintf(stderr, PROG ": load: %s\n", v ? err.msg : "out of memory");
		return 1;
	}
	t1 = now_ns();
	after = rss_kb();
	printf("loaded %zu devices (%zu skipped) in %.2f s (SCAN COUNT %d + pipelined HMGET)\n",
			onb_admview_count(v), skipped, (double)(t1 - t0) / 1e9, batch);
	printf("resident memory added: %ld kB = %.0f B per device; the view asked malloc for %zu B = %.0f B per device\n",
			after - before, (double)(after - before) * 1024 / (double)onb_admview_count(v),
			onb_admview_bytes(v), (double)onb_admview_bytes(v) / (double)onb_admview_count(v));
	{
		struct onb_device d;
		char fp[ONB_FP_HEXLEN + 1], id[32];
		long hits = 0, m = n < 1000000 ? n : 1000000;
		t0 = now_ns();
		for(long i = 0; i < m; i++){
			snprintf(id, sizeof(id), "bench-%07ld", (i * 7919) % n);
			fp_of(id, "op", fp);
			if(onb_admview_by_fp(v, fp, 0, &d, &err) == ONB_OK) hits++;
		}
		t1 = now_ns();
		printf("%ld lookups by fingerprint, %ld found: %.2f us each (including a SHA-256 to make the key)\n",
				m, hits, (double)(t1 - t0) / 1e3 / (double)m);
	}
	onb_admview_free(v);
	redisFree(rc);
	return 0;
usage:
	fprintf(stderr, "usage: " PROG " --port P [--devices N] [--no-fill] [--batch B]\n");
	return 2;
}
