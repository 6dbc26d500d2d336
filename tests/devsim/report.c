/* The summary: per-phase latency percentiles, throughput, failures by reason,
 * as text or as one JSON document. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsim.h"

const char *const devsim_phase_names[PH_COUNT] = {
	[PH_KEYGEN] = "keygen",
	[PH_CONNECT_CLAIM] = "connect-claim",
	[PH_CSR] = "csr",
	[PH_REGISTER] = "register",
	[PH_CONNECT_OP] = "connect-operational",
	[PH_TELEMETRY] = "telemetry",
	[PH_ROTATE] = "rotate",
	[PH_TOTAL] = "total",
};

void devsim_reasons_add(struct devsim_reasons *t, const char *key, const char *serial,
		const char *detail, long count)
{
	struct devsim_reason *r;

	for(int i = 0; i < t->n; i++){
		if(!strcmp(t->r[i].key, key)){
			t->r[i].count += count;
			return;
		}
	}
	if(t->n == DEVSIM_REASONS_MAX){
		t->other += count;
		return;
	}
	r = &t->r[t->n++];
	snprintf(r->key, sizeof(r->key), "%s", key);
	snprintf(r->ex_serial, sizeof(r->ex_serial), "%s", serial);
	snprintf(r->ex_detail, sizeof(r->ex_detail), "%s", detail);
	r->count = count;
}

struct pct {
	long n;
	double p50, p90, p99, max; /* ms */
};

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double rank(const int32_t *v, long n, int q)
{
	long k = (n * q + 99) / 100;

	if(k < 1) k = 1;
	return v[k - 1] / 1000.0;
}

static struct pct percentiles(const struct devsim_results *res, int n, enum phase ph)
{
	struct pct p = { 0 };
	int32_t *v = malloc((size_t)n * sizeof(*v));

	if(!v) return p;
	for(int i = 0; i < n; i++){
		if(res->lat_us[ph][i] >= 0) v[p.n++] = res->lat_us[ph][i];
	}
	if(p.n){
		qsort(v, (size_t)p.n, sizeof(*v), cmp_i32);
		p.p50 = rank(v, p.n, 50);
		p.p90 = rank(v, p.n, 90);
		p.p99 = rank(v, p.n, 99);
		p.max = v[p.n - 1] / 1000.0;
	}
	free(v);
	return p;
}

static int cmp_reason(const void *a, const void *b)
{
	const struct devsim_reason *x = a, *y = b;
	return (y->count > x->count) - (y->count < x->count);
}

static double rate(const struct devsim_summary *s)
{
	return s->wall_s > 0 ? s->ok / s->wall_s : 0;
}

static const char *mode_name(const struct devsim_cfg *cfg)
{
	return cfg->birth_dir ? "birth" : "claim";
}

void devsim_report_text(const struct devsim_cfg *cfg, const struct devsim_results *res,
		const struct devsim_summary *s)
{
	struct devsim_reasons r = s->reasons;

	printf("devsim: %d device%s, %d in flight (%d thread%s), template \"%s\", %s certificate, "
			"MQTT %s, TLS context %s, format %s\n",
			cfg->n, cfg->n == 1 ? "" : "s", cfg->conc, cfg->threads, cfg->threads == 1 ? "" : "s",
			cfg->template_name, mode_name(cfg), cfg->mqtt_version == 5 ? "5" : "3.1.1",
			cfg->tls_per_conn ? "per connection" : "shared", cfg->cbor ? "cbor" : "json");
	printf("%-20s %7s %9s %9s %9s %9s\n", "phase", "n", "p50 ms", "p90 ms", "p99 ms", "max ms");
	for(int ph = 0; ph < PH_COUNT; ph++){
		struct pct p;
		if(ph == PH_ROTATE && !cfg->rotate) continue;
		p = percentiles(res, cfg->n, ph);
		printf("%-20s %7ld %9.2f %9.2f %9.2f %9.2f\n", devsim_phase_names[ph], p.n,
				p.p50, p.p90, p.p99, p.max);
	}
	printf("succeeded %ld/%d, failed %ld", s->ok, cfg->n, s->failed);
	if(s->not_run) printf(", not started %ld", s->not_run);
	printf("; wall %.3f s; %.1f provisionings/s\n", s->wall_s, rate(s));
	printf("devsim cpu %.2f s (%.3f ms per device); stray replies %ld",
			s->cpu_s, s->ok + s->failed ? s->cpu_s * 1000.0 / (double)(s->ok + s->failed) : 0.0, s->stray);
	if(cfg->stay_s > 0) printf("; commands received %ld", s->commands);
	if(cfg->register_retries > 0) printf("; RegisterThing resent %ld", s->resent);
	printf("\n");
	if(s->csr_reply_max || s->reg_reply_max){
		printf("largest answers: create-from-csr accepted %ld bytes, provision accepted %ld bytes\n",
				s->csr_reply_max, s->reg_reply_max);
	}
	if(r.n || r.other){
		qsort(r.r, (size_t)r.n, sizeof(r.r[0]), cmp_reason);
		printf("failures by reason:\n");
		for(int i = 0; i < r.n; i++){
			printf("%8ld  %s  (e.g. %s: %s)\n", r.r[i].count, r.r[i].key, r.r[i].ex_serial, r.r[i].ex_detail);
		}
		if(r.other) printf("%8ld  other reasons\n", r.other);
	}
	fflush(stdout);
}

int devsim_report_json(const struct devsim_cfg *cfg, const struct devsim_results *res,
		const struct devsim_summary *s)
{
	struct devsim_reasons r = s->reasons;
	cJSON *root = cJSON_CreateObject(), *phases, *fails, *o;
	char *text;

	if(!root) return -1;
	cJSON_AddNumberToObject(root, "devices", cfg->n);
	cJSON_AddNumberToObject(root, "concurrency", cfg->conc);
	cJSON_AddNumberToObject(root, "threads", cfg->threads);
	cJSON_AddStringToObject(root, "template", cfg->template_name);
	cJSON_AddStringToObject(root, "identity", mode_name(cfg));
	cJSON_AddNumberToObject(root, "mqtt_version", cfg->mqtt_version);
	cJSON_AddStringToObject(root, "tls_context", cfg->tls_per_conn ? "per-connection" : "shared");
	cJSON_AddNumberToObject(root, "succeeded", (double)s->ok);
	cJSON_AddNumberToObject(root, "failed", (double)s->failed);
	cJSON_AddNumberToObject(root, "not_started", (double)s->not_run);
	cJSON_AddNumberToObject(root, "wall_s", s->wall_s);
	cJSON_AddNumberToObject(root, "provisionings_per_s", rate(s));
	cJSON_AddNumberToObject(root, "cpu_s", s->cpu_s);
	cJSON_AddNumberToObject(root, "stray_replies", (double)s->stray);
	cJSON_AddNumberToObject(root, "commands_received", (double)s->commands);
	cJSON_AddNumberToObject(root, "register_resent", (double)s->resent);
	cJSON_AddStringToObject(root, "format", cfg->cbor ? "cbor" : "json");
	cJSON_AddNumberToObject(root, "csr_accepted_bytes_max", (double)s->csr_reply_max);
	cJSON_AddNumberToObject(root, "register_accepted_bytes_max", (double)s->reg_reply_max);
	phases = cJSON_AddObjectToObject(root, "phases");
	for(int ph = 0; phases && ph < PH_COUNT; ph++){
		struct pct p;
		if(ph == PH_ROTATE && !cfg->rotate) continue;
		p = percentiles(res, cfg->n, ph);
		if(!(o = cJSON_AddObjectToObject(phases, devsim_phase_names[ph]))) break;
		cJSON_AddNumberToObject(o, "count", (double)p.n);
		cJSON_AddNumberToObject(o, "p50_ms", p.p50);
		cJSON_AddNumberToObject(o, "p90_ms", p.p90);
		cJSON_AddNumberToObject(o, "p99_ms", p.p99);
		cJSON_AddNumberToObject(o, "max_ms", p.max);
	}
	qsort(r.r, (size_t)r.n, sizeof(r.r[0]), cmp_reason);
	fails = cJSON_AddArrayToObject(root, "failures");
	for(int i = 0; fails && i < r.n; i++){
		if(!(o = cJSON_CreateObject())) break;
		cJSON_AddStringToObject(o, "reason", r.r[i].key);
		cJSON_AddNumberToObject(o, "count", (double)r.r[i].count);
		cJSON_AddStringToObject(o, "example_serial", r.r[i].ex_serial);
		cJSON_AddStringToObject(o, "example_detail", r.r[i].ex_detail);
		cJSON_AddItemToArray(fails, o);
	}
	if(fails && r.other && (o = cJSON_CreateObject())){
		cJSON_AddStringToObject(o, "reason", "other");
		cJSON_AddNumberToObject(o, "count", (double)r.other);
		cJSON_AddItemToArray(fails, o);
	}
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if(!text) return -1;
	printf("%s\n", text);
	fflush(stdout);
	cJSON_free(text);
	return 0;
}
