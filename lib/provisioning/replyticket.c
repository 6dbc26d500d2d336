/* Reply tickets (provisioning/replyticket.h): a ring of fixed slots, oldest first,
 * indexed by a hash of (client id, topic). The hash only narrows the search:
 * a SHA-256 digest of client id, topic and payload decides, so no choice of
 * client id can make another connection's reply pass for one's own. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/common.h"
#include "provisioning/replyticket.h"

#define NO_SLOT (-1)

struct ticket {
	uint64_t who;                          /* hash of client id and topic */
	unsigned char digest[32];              /* SHA-256(client id NUL topic NUL payload) */
	int64_t issued_ms;
	int32_t next;                          /* bucket chain */
	bool used;                             /* admitted a delivery */
};

struct onb_reply_tickets {
	struct ticket *slots;                  /* owned: capacity slots */
	int32_t *buckets;                      /* owned: nbuckets chain heads */
	size_t capacity, nbuckets, head, count;
	int64_t ttl_ms;
	EVP_MD *sha256;                        /* owned, fetched once */
	EVP_MD_CTX *ctx;                       /* owned, reused */
};

struct onb_reply_tickets *onb_reply_tickets_new(size_t capacity, int64_t ttl_ms)
{
	struct onb_reply_tickets *t = calloc(1, sizeof(*t));

	if(!t || capacity < 1 || capacity > INT32_MAX / 4) goto fail;
	t->capacity = capacity;
	t->ttl_ms = ttl_ms;
	for(t->nbuckets = 16; t->nbuckets < 2 * capacity; t->nbuckets *= 2){}
	t->slots = calloc(capacity, sizeof(*t->slots));
	t->buckets = malloc(t->nbuckets * sizeof(*t->buckets));
	t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	t->ctx = EVP_MD_CTX_new();
	if(!t->slots || !t->buckets || !t->sha256 || !t->ctx) goto fail;
	for(size_t b = 0; b < t->nbuckets; b++) t->buckets[b] = NO_SLOT;
	return t;
fail:
	onb_reply_tickets_free(t);
	return NULL;
}

void onb_reply_tickets_free(struct onb_reply_tickets *t)
{
	if(!t) return;
	free(t->slots);
	free(t->buckets);
	EVP_MD_free(t->sha256);
	EVP_MD_CTX_free(t->ctx);
	free(t);
}

static uint64_t who_hash(const char *client_id, const char *topic)
{
	return onb_hash_str(client_id) * 0x100000001B3ULL ^ onb_hash_str(topic);
}

static int digest(struct onb_reply_tickets *t, const char *client_id, const char *topic,
		const void *payload, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	/* The NULs keep ("ab", "c") and ("a", "bc") apart. */
	if(EVP_DigestInit_ex(t->ctx, t->sha256, NULL) != 1
			|| EVP_DigestUpdate(t->ctx, client_id, strlen(client_id) + 1) != 1
			|| EVP_DigestUpdate(t->ctx, topic, strlen(topic) + 1) != 1
			|| (len && EVP_DigestUpdate(t->ctx, payload, len) != 1)
			|| EVP_DigestFinal_ex(t->ctx, out, &n) != 1 || n != 32){
		return ONB_EINTERNAL;
	}
	return ONB_OK;
}

/* Takes the oldest ticket out of its chain and the ring. */
static void drop_oldest(struct onb_reply_tickets *t)
{
	int32_t i = (int32_t)t->head;
	int32_t *p = &t->buckets[t->slots[i].who & (t->nbuckets - 1)];

	while(*p != i) p = &t->slots[*p].next;
	*p = t->slots[i].next;
	t->head = (t->head + 1) % t->capacity;
	t->count--;
}

int onb_reply_tickets_issue(struct onb_reply_tickets *t, const char *client_id, const char *topic,
		const void *payload, size_t len, int64_t now_ms)
{
	struct ticket *k;
	size_t i, b;

	if(t->count == t->capacity) drop_oldest(t);
	i = (t->head + t->count) % t->capacity;
	k = &t->slots[i];
	if(digest(t, client_id, topic, payload, len, k->digest) != ONB_OK) return ONB_EINTERNAL;
	k->who = who_hash(client_id, topic);
	k->issued_ms = now_ms;
	k->used = false;
	b = k->who & (t->nbuckets - 1);
	k->next = t->buckets[b];
	t->buckets[b] = (int32_t)i;
	t->count++;
	return ONB_OK;
}

bool onb_reply_tickets_admit(struct onb_reply_tickets *t, const char *client_id, const char *topic,
		const void *payload, size_t len, int64_t now_ms)
{
	uint64_t who = who_hash(client_id, topic);
	unsigned char d[32];
	bool have_digest = false;

	for(int32_t i = t->buckets[who & (t->nbuckets - 1)]; i != NO_SLOT; i = t->slots[i].next){
		struct ticket *k = &t->slots[i];
		if(k->who != who || now_ms - k->issued_ms >= t->ttl_ms) continue;
		if(!have_digest){
			if(digest(t, client_id, topic, payload, len, d) != ONB_OK) return false;
			have_digest = true;
		}
		if(!memcmp(k->digest, d, sizeof(d))){
			k->used = true;
			return true;
		}
	}
	return false;
}

size_t onb_reply_tickets_expire(struct onb_reply_tickets *t, int64_t now_ms)
{
	size_t unheard = 0;

	while(t->count && now_ms - t->slots[t->head].issued_ms >= t->ttl_ms){
		if(!t->slots[t->head].used) unheard++;
		drop_oldest(t);
	}
	return unheard;
}

size_t onb_reply_tickets_count(const struct onb_reply_tickets *t)
{
	return t->count;
}
