#include "core/budget.h"
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 72 /* a SHA-256 fingerprint in hex, with room */

bool onb_bucket_take(struct onb_bucket *b, const struct onb_rate *rate, int64_t now_ms)
{
	if(rate->per_s <= 0) return true;
	if(b->at_ms == 0){
		b->tokens = rate->burst;
	}else if(now_ms > b->at_ms){
		b->tokens += (double)(now_ms - b->at_ms) * rate->per_s / 1000.0;
		if(b->tokens > rate->burst) b->tokens = rate->burst;
	}
	if(now_ms > b->at_ms || b->at_ms == 0) b->at_ms = now_ms ? now_ms : 1;
	if(b->tokens < 1.0) return false;
	b->tokens -= 1.0;
	return true;
}

struct keyed_bucket {
	char key[KEY_MAX];
	struct onb_bucket bucket;
};

struct onb_bucket_table {
	size_t n;
	struct keyed_bucket slot[];
};

struct onb_bucket_table *onb_bucket_table_new(size_t slots)
{
	struct onb_bucket_table *t;

	if(slots == 0 || slots > (1u << 20)) return NULL;
	t = calloc(1, sizeof(*t) + slots * sizeof(t->slot[0]));
	if(t) t->n = slots;
	return t;
}

void onb_bucket_table_free(struct onb_bucket_table *t)
{
	free(t);
}

bool onb_bucket_table_take(struct onb_bucket_table *t, const char *key,
		const struct onb_rate *rate, int64_t now_ms)
{
	struct keyed_bucket *s;

	if(rate->per_s <= 0) return true;
	s = &t->slot[onb_hash_str(key) % t->n];
	if(strncmp(s->key, key, sizeof(s->key)) != 0){
		snprintf(s->key, sizeof(s->key), "%s", key);
		memset(&s->bucket, 0, sizeof(s->bucket));
	}
	return onb_bucket_take(&s->bucket, rate, now_ms);
}
