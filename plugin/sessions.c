/* Admitted connections, keyed by client id (== device id), so that both an
 * ACL check (by connection) and a registry event (by device id) find one in
 * O(1). Entries are owned by the table. */
#include <string.h>

#include "onboard.h"

static struct session **buckets;
static size_t bucket_count;
static size_t entry_count;

static size_t hash_id(const char *id)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for(; *id; id++){
		h ^= (unsigned char)*id;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

static struct session **slot_of(const char *id)
{
	struct session **p = &buckets[hash_id(id) & (bucket_count - 1)];
	while(*p && strcmp((*p)->id, id) != 0) p = &(*p)->next;
	return p;
}

static int grow(void)
{
	size_t n = bucket_count ? bucket_count * 2 : 1024;
	struct session **nb = mosquitto_calloc(n, sizeof(*nb));

	if(!nb) return ONB_EINTERNAL;
	for(size_t i = 0; i < bucket_count; i++){
		struct session *s = buckets[i];
		while(s){
			struct session *next = s->next;
			size_t b = hash_id(s->id) & (n - 1);
			s->next = nb[b];
			nb[b] = s;
			s = next;
		}
	}
	mosquitto_free(buckets);
	buckets = nb;
	bucket_count = n;
	return ONB_OK;
}

int sessions_put(const struct session *s)
{
	struct session **p, *e;

	if(entry_count >= bucket_count && grow() != ONB_OK) return ONB_EINTERNAL;
	p = slot_of(s->id);
	e = *p;
	if(!e){
		e = mosquitto_malloc(sizeof(*e));
		if(!e) return ONB_EINTERNAL;
		*e = *s;
		e->next = NULL;
		*p = e;
		entry_count++;
	}else{
		struct session *next = e->next;
		onb_compiled_free(e->policy);
		*e = *s;
		e->next = next;
	}
	return ONB_OK;
}

struct session *sessions_find(const char *id)
{
	if(!bucket_count || !id) return NULL;
	return *slot_of(id);
}

struct session *sessions_get(const struct mosquitto *client)
{
	struct session *s = sessions_find(mosquitto_client_id(client));
	return (s && s->client == client) ? s : NULL;
}

void sessions_remove(const struct mosquitto *client)
{
	const char *id = mosquitto_client_id(client);
	struct session **p, *e;

	if(!bucket_count || !id) return;
	p = slot_of(id);
	e = *p;
	/* A takeover already replaced the entry: it belongs to the newer connection. */
	if(!e || e->client != client) return;
	*p = e->next;
	onb_compiled_free(e->policy);
	mosquitto_free(e);
	entry_count--;
}

void sessions_each(void (*fn)(struct session *s, void *arg), void *arg)
{
	for(size_t i = 0; i < bucket_count; i++){
		for(struct session *s = buckets[i]; s; s = s->next) fn(s, arg);
	}
}

size_t sessions_count(void)
{
	return entry_count;
}

void sessions_clear(void)
{
	for(size_t i = 0; i < bucket_count; i++){
		struct session *s = buckets[i];
		while(s){
			struct session *next = s->next;
			onb_compiled_free(s->policy);
			mosquitto_free(s);
			s = next;
		}
	}
	mosquitto_free(buckets);
	buckets = NULL;
	bucket_count = 0;
	entry_count = 0;
}
