#include "registry/auditagg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One open window: its key, the sample (the first refusal's details, copied)
 * and the count. Slots are chained by hash bucket and kept in the order their
 * windows opened, so that the oldest is always at the head. */
struct slot {
	char key[ONB_AUDITAGG_KEY_MAX];
	char actor[160], source[160], action[40], device[ONB_ID_MAX + 1], result[16];
	char reason[320], client[ONB_ID_MAX + 1], idclass[16], fp[ONB_FP_HEXLEN + 1];
	struct onb_audit_entry sample; /* points into the buffers above */
	long count;                  /* the window's refusals, the first included */
	int64_t first_ms, repeat_ms, last_ms; /* the first, the second, the latest */
	unsigned bucket;
	int next_in_bucket, older, newer; /* slot indices, -1 none */
	int next_free;
};

struct onb_audit_agg {
	struct slot *slots;
	int *buckets;
	size_t nslots, nbuckets;
	int free_head, oldest, newest;
	int64_t window_ms;
	onb_audit_sink sink;
	void *sink_arg;
	struct onb_audit_agg_stats stats;
};

/* Copies src into dst (cut to fit); the sample field points at dst, or is
 * NULL when src is. */
static const char *keep(char *dst, size_t size, const char *src)
{
	if(!src) return NULL;
	snprintf(dst, size, "%s", src);
	return dst;
}

struct onb_audit_agg *onb_audit_agg_new(size_t slots, int64_t window_ms,
		onb_audit_sink sink, void *sink_arg)
{
	struct onb_audit_agg *g;

	if(slots == 0 || slots > 65536 || window_ms <= 0 || !sink) return NULL;
	g = calloc(1, sizeof(*g));
	if(!g) return NULL;
	g->nslots = slots;
	g->nbuckets = slots * 2;
	g->slots = calloc(slots, sizeof(*g->slots));
	g->buckets = malloc(g->nbuckets * sizeof(*g->buckets));
	if(!g->slots || !g->buckets){
		free(g->slots);
		free(g->buckets);
		free(g);
		return NULL;
	}
	for(size_t i = 0; i < g->nbuckets; i++) g->buckets[i] = -1;
	for(size_t i = 0; i < slots; i++) g->slots[i].next_free = i + 1 < slots ? (int)i + 1 : -1;
	g->free_head = 0;
	g->oldest = g->newest = -1;
	g->window_ms = window_ms;
	g->sink = sink;
	g->sink_arg = sink_arg;
	return g;
}

/* Ends slot i's window: writes the count if more than the first refusal
 * came, and returns the slot to the free list. */
static void close_window(struct onb_audit_agg *g, int i)
{
	struct slot *s = &g->slots[i];
	int *link = &g->buckets[s->bucket];

	if(s->count > 1){
		struct onb_audit_entry e = s->sample;
		e.count = s->count - 1;
		e.first_ms = s->repeat_ms;
		e.last_ms = s->last_ms;
		g->sink(&e, g->sink_arg);
		g->stats.written++;
	}
	while(*link != i) link = &g->slots[*link].next_in_bucket;
	*link = s->next_in_bucket;
	if(s->older >= 0) g->slots[s->older].newer = s->newer;
	else g->oldest = s->newer;
	if(s->newer >= 0) g->slots[s->newer].older = s->older;
	else g->newest = s->older;
	s->next_free = g->free_head;
	g->free_head = i;
}

static int find(const struct onb_audit_agg *g, unsigned bucket, const char *key)
{
	for(int i = g->buckets[bucket]; i >= 0; i = g->slots[i].next_in_bucket){
		if(!strcmp(g->slots[i].key, key)) return i;
	}
	return -1;
}

static void open_window(struct onb_audit_agg *g, unsigned bucket, const char *key,
		const struct onb_audit_entry *e, int64_t now_ms)
{
	struct slot *s;
	int i;

	if(g->free_head < 0){
		g->stats.evicted++;
		close_window(g, g->oldest);
	}
	i = g->free_head;
	s = &g->slots[i];
	g->free_head = s->next_free;
	snprintf(s->key, sizeof(s->key), "%s", key);
	memset(&s->sample, 0, sizeof(s->sample));
	s->sample.actor = keep(s->actor, sizeof(s->actor), e->actor);
	s->sample.source = keep(s->source, sizeof(s->source), e->source);
	s->sample.action = keep(s->action, sizeof(s->action), e->action);
	s->sample.device = keep(s->device, sizeof(s->device), e->device);
	s->sample.result = keep(s->result, sizeof(s->result), e->result);
	s->sample.reason = keep(s->reason, sizeof(s->reason), e->reason);
	s->sample.client = keep(s->client, sizeof(s->client), e->client);
	s->sample.idclass = keep(s->idclass, sizeof(s->idclass), e->idclass);
	s->sample.fp = keep(s->fp, sizeof(s->fp), e->fp);
	s->count = 1;
	s->first_ms = s->last_ms = now_ms;
	s->bucket = bucket;
	s->next_in_bucket = g->buckets[bucket];
	g->buckets[bucket] = i;
	s->older = g->newest;
	s->newer = -1;
	if(g->newest >= 0) g->slots[g->newest].newer = i;
	else g->oldest = i;
	g->newest = i;
}

void onb_audit_agg_note(struct onb_audit_agg *g, const char *key,
		const struct onb_audit_entry *e, int64_t now_ms)
{
	char cut[ONB_AUDITAGG_KEY_MAX];
	struct onb_audit_entry first;
	unsigned bucket;
	int i;

	snprintf(cut, sizeof(cut), "%s", key);
	bucket = (unsigned)(onb_hash_str(cut) % g->nbuckets);
	i = find(g, bucket, cut);
	if(i >= 0 && now_ms - g->slots[i].first_ms < g->window_ms){
		if(g->slots[i].count++ == 1) g->slots[i].repeat_ms = now_ms;
		if(now_ms > g->slots[i].last_ms) g->slots[i].last_ms = now_ms;
		g->stats.absorbed++;
		return;
	}
	if(i >= 0) close_window(g, i);
	open_window(g, bucket, cut, e, now_ms);
	first = *e;
	first.count = 0;
	g->sink(&first, g->sink_arg);
	g->stats.written++;
}

void onb_audit_agg_tick(struct onb_audit_agg *g, int64_t now_ms)
{
	while(g->oldest >= 0 && now_ms - g->slots[g->oldest].first_ms >= g->window_ms){
		close_window(g, g->oldest);
	}
}

void onb_audit_agg_free(struct onb_audit_agg *g)
{
	if(!g) return;
	while(g->oldest >= 0) close_window(g, g->oldest);
	free(g->slots);
	free(g->buckets);
	free(g);
}

void onb_audit_agg_stats(const struct onb_audit_agg *g, struct onb_audit_agg_stats *out)
{
	*out = g->stats;
}

struct onb_audit_entry *onb_audit_entry_copy(const struct onb_audit_entry *e)
{
	const char *const src[] = { e->actor, e->source, e->action, e->device, e->result,
		e->reason, e->client, e->idclass, e->fp };
	const char **dst[sizeof(src) / sizeof(src[0])];
	struct onb_audit_entry *copy;
	size_t need = sizeof(*copy);
	char *p;

	for(size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) need += src[i] ? strlen(src[i]) + 1 : 0;
	copy = malloc(need);
	if(!copy) return NULL;
	*copy = *e;
	dst[0] = &copy->actor; dst[1] = &copy->source; dst[2] = &copy->action;
	dst[3] = &copy->device; dst[4] = &copy->result; dst[5] = &copy->reason;
	dst[6] = &copy->client; dst[7] = &copy->idclass; dst[8] = &copy->fp;
	p = (char *)(copy + 1);
	for(size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++){
		if(!src[i]) continue;
		size_t n = strlen(src[i]) + 1;
		memcpy(p, src[i], n);
		*dst[i] = p;
		p += n;
	}
	return copy;
}
