/* The admission view's table (lib/identity/admview.h).
 *
 * Memory is the constraint (a million devices per broker): one malloc'd
 * entry per device holding binary fingerprints and the strings inline, and
 * two open-addressing tables of entry pointers (linear probing, load at
 * most 3/4), one by fingerprint and one by device id. A device's current
 * and next certificate both have a slot in the fingerprint table; the
 * pointer's low bit says which of the two a slot stands for. */
#include "identity/admview.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"

#define FP_BYTES 32
#define HAS_NEXT 0x01
#define HAS_BIRTH 0x02
#define ROTATE_REQUIRED 0x04
#define NEXT_TAG ((uintptr_t)1) /* slot names the entry's next certificate */

/* One device. tail: [next fp (32)] [birth fp (32)] id tenant policy, the
 * strings without terminators (their lengths are here). */
struct entry {
	int64_t deadline_ms;
	uint8_t fp[FP_BYTES];
	int8_t state;
	uint8_t flags, id_len, tenant_len, policy_len;
	unsigned char tail[];
};

struct table {
	uintptr_t *slots; /* struct entry *, maybe | NEXT_TAG; 0 empty */
	size_t mask;      /* size - 1, size a power of two */
	size_t used;
	bool by_id; /* keyed by device id, else by fingerprint */
};

struct onb_admview {
	struct table by_fp, by_id;
	size_t count, entry_bytes;
	uint64_t seed; /* device ids come from outside: keep their slots unguessable */
};

/* ------------------------------------------------------------- entries */

static const uint8_t *next_fp(const struct entry *e)
{
	return e->tail;
}

static const uint8_t *birth_fp(const struct entry *e)
{
	return e->tail + ((e->flags & HAS_NEXT) ? FP_BYTES : 0);
}

static const char *id_of(const struct entry *e)
{
	return (const char *)e->tail + ((e->flags & HAS_NEXT) ? FP_BYTES : 0)
		+ ((e->flags & HAS_BIRTH) ? FP_BYTES : 0);
}

static size_t entry_size(const struct entry *e)
{
	return sizeof(*e) + (size_t)(id_of(e) - (const char *)e->tail)
		+ e->id_len + e->tenant_len + e->policy_len;
}

static int hexval(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* 64 lower-case hex digits (the registry's only spelling) to 32 bytes. */
static bool fp_parse(const char *hex, uint8_t out[FP_BYTES])
{
	for(int i = 0; i < FP_BYTES; i++){
		int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
		if(hi < 0 || lo < 0) return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * FP_BYTES] == '\0';
}

static void fp_format(const uint8_t fp[FP_BYTES], char out[ONB_FP_HEXLEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for(int i = 0; i < FP_BYTES; i++){
		out[2 * i] = digits[fp[i] >> 4];
		out[2 * i + 1] = digits[fp[i] & 15];
	}
	out[ONB_FP_HEXLEN] = '\0';
}

/* ------------------------------------------------------------- hashing */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t hash_fp(const struct onb_admview *v, const uint8_t fp[FP_BYTES])
{
	uint64_t x;
	memcpy(&x, fp, sizeof(x)); /* a SHA-256 is uniform already */
	return mix(x ^ v->seed);
}

static uint64_t hash_id(const struct onb_admview *v, const char *id, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ v->seed;
	for(size_t i = 0; i < len; i++){
		h ^= (unsigned char)id[i];
		h *= 0x100000001b3ULL;
	}
	return mix(h);
}

static const struct entry *slot_entry(uintptr_t s)
{
	return (const struct entry *)(s & ~NEXT_TAG);
}

/* Where slot content s would like to be in table t of view v. */
static size_t home(const struct onb_admview *v, const struct table *t, uintptr_t s)
{
	const struct entry *e = slot_entry(s);
	if(t->by_id) return hash_id(v, id_of(e), e->id_len) & t->mask;
	return hash_fp(v, (s & NEXT_TAG) ? next_fp(e) : e->fp) & t->mask;
}

static bool table_init(struct table *t, size_t size, bool by_id)
{
	t->by_id = by_id;
	t->slots = calloc(size, sizeof(*t->slots));
	t->mask = size - 1;
	t->used = 0;
	return t->slots != NULL;
}

static void table_place(const struct onb_admview *v, struct table *t, uintptr_t s)
{
	size_t i = home(v, t, s);
	while(t->slots[i]) i = (i + 1) & t->mask;
	t->slots[i] = s;
	t->used++;
}

/* Doubles t when one more slot would fill it past 3/4. */
static bool table_reserve(const struct onb_admview *v, struct table *t)
{
	struct table bigger;
	size_t size = t->mask + 1;

	if((t->used + 1) * 4 <= size * 3) return true;
	if(!table_init(&bigger, size * 2, t->by_id)) return false;
	for(size_t i = 0; i < size; i++){
		if(t->slots[i]) table_place(v, &bigger, t->slots[i]);
	}
	free(t->slots);
	*t = bigger;
	return true;
}

/* Empties slot i and moves later members of its run back into the gap
 * (linear probing without tombstones). */
static void table_delete_at(const struct onb_admview *v, struct table *t, size_t i)
{
	size_t j = i;

	for(;;){
		j = (j + 1) & t->mask;
		if(!t->slots[j]) break;
		size_t k = home(v, t, t->slots[j]);
		/* the member at j may fill i unless its home lies in (i, j] */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if(stays) continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	t->slots[i] = 0;
	t->used--;
}

static void table_remove(const struct onb_admview *v, struct table *t, uintptr_t s)
{
	size_t i = home(v, t, s);
	while(t->slots[i]){
		if(t->slots[i] == s){
			table_delete_at(v, t, i);
			return;
		}
		i = (i + 1) & t->mask;
	}
}

static const struct entry *find_id(const struct onb_admview *v, const char *id, size_t len, size_t *at)
{
	size_t i = hash_id(v, id, len) & v->by_id.mask;
	uintptr_t s;

	while((s = v->by_id.slots[i])){
		const struct entry *e = slot_entry(s);
		if(e->id_len == len && !memcmp(id_of(e), id, len)){
			if(at) *at = i;
			return e;
		}
		i = (i + 1) & v->by_id.mask;
	}
	return NULL;
}

/* ------------------------------------------------------------------ API */

struct onb_admview *onb_admview_new(size_t hint)
{
	struct onb_admview *v = calloc(1, sizeof(*v));
	size_t size = 1024;

	if(!v) return NULL;
	while(size * 3 < hint * 4 + 4) size *= 2;
	if(RAND_bytes((unsigned char *)&v->seed, sizeof(v->seed)) != 1
			|| !table_init(&v->by_fp, size, false) || !table_init(&v->by_id, size, true)){
		onb_admview_free(v);
		return NULL;
	}
	return v;
}

void onb_admview_free(struct onb_admview *v)
{
	if(!v) return;
	if(v->by_id.slots){
		for(size_t i = 0; i <= v->by_id.mask; i++){
			free((void *)slot_entry(v->by_id.slots[i]));
		}
	}
	free(v->by_id.slots);
	free(v->by_fp.slots);
	free(v);
}

static void unlink_entry(struct onb_admview *v, const struct entry *e, size_t id_at)
{
	table_delete_at(v, &v->by_id, id_at);
	table_remove(v, &v->by_fp, (uintptr_t)e);
	if(e->flags & HAS_NEXT) table_remove(v, &v->by_fp, (uintptr_t)e | NEXT_TAG);
	v->count--;
	v->entry_bytes -= entry_size(e);
	free((void *)e);
}

void onb_admview_remove(struct onb_admview *v, const char *id)
{
	size_t at;
	const struct entry *e = find_id(v, id, strlen(id), &at);
	if(e) unlink_entry(v, e, at);
}

int onb_admview_put(struct onb_admview *v, const struct onb_device *d)
{
	size_t id_len = strlen(d->id), tenant_len = strlen(d->tenant), policy_len = strlen(d->policy);
	uint8_t fp[FP_BYTES], next[FP_BYTES], birth[FP_BYTES];
	bool has_next = d->cert_fp_next[0] != '\0', has_birth = d->birth_fp[0] != '\0';
	struct entry *e;
	unsigned char *p;

	if(!onb_id_valid(d->id)) return ONB_EINVAL;
	onb_admview_remove(v, d->id);
	if(!d->cert_fp[0]) return ONB_OK;
	if(!fp_parse(d->cert_fp, fp) || (has_next && !fp_parse(d->cert_fp_next, next))
			|| (has_birth && !fp_parse(d->birth_fp, birth))
			|| tenant_len > UINT8_MAX || policy_len > UINT8_MAX){
		return ONB_EINVAL;
	}
	if(!table_reserve(v, &v->by_id) || !table_reserve(v, &v->by_fp)
			|| (has_next && !table_reserve(v, &v->by_fp))){
		return ONB_EINTERNAL;
	}
	e = malloc(sizeof(*e) + (has_next ? FP_BYTES : 0) + (has_birth ? FP_BYTES : 0)
			+ id_len + tenant_len + policy_len);
	if(!e) return ONB_EINTERNAL;
	e->deadline_ms = d->rotate_deadline_ms;
	memcpy(e->fp, fp, FP_BYTES);
	e->state = (int8_t)d->state;
	e->flags = (has_next ? HAS_NEXT : 0) | (has_birth ? HAS_BIRTH : 0)
		| (d->rotate_required ? ROTATE_REQUIRED : 0);
	e->id_len = (uint8_t)id_len;
	e->tenant_len = (uint8_t)tenant_len;
	e->policy_len = (uint8_t)policy_len;
	p = e->tail;
	if(has_next){ memcpy(p, next, FP_BYTES); p += FP_BYTES; }
	if(has_birth){ memcpy(p, birth, FP_BYTES); p += FP_BYTES; }
	memcpy(p, d->id, id_len); p += id_len;
	memcpy(p, d->tenant, tenant_len); p += tenant_len;
	memcpy(p, d->policy, policy_len);
	table_place(v, &v->by_id, (uintptr_t)e);
	table_place(v, &v->by_fp, (uintptr_t)e);
	if(has_next) table_place(v, &v->by_fp, (uintptr_t)e | NEXT_TAG);
	v->count++;
	v->entry_bytes += entry_size(e);
	return ONB_OK;
}

static void fill(const struct entry *e, struct onb_device *out)
{
	const char *s = id_of(e);

	memset(out, 0, sizeof(*out));
	memcpy(out->id, s, e->id_len);
	s += e->id_len;
	memcpy(out->tenant, s, e->tenant_len);
	s += e->tenant_len;
	memcpy(out->policy, s, e->policy_len);
	out->state = (enum onb_state)e->state;
	fp_format(e->fp, out->cert_fp);
	if(e->flags & HAS_NEXT) fp_format(next_fp(e), out->cert_fp_next);
	if(e->flags & HAS_BIRTH) fp_format(birth_fp(e), out->birth_fp);
	out->rotate_deadline_ms = e->deadline_ms;
	out->rotate_required = (e->flags & ROTATE_REQUIRED) != 0;
}

int onb_admview_by_fp(const struct onb_admview *v, const char *fp, int64_t now_ms,
		struct onb_device *out, struct onb_err *err)
{
	uint8_t key[FP_BYTES];
	size_t i;
	uintptr_t s;

	if(!fp_parse(fp, key)) return onb_fail(err, ONB_ENOTFOUND, "invalid certificate fingerprint");
	i = hash_fp(v, key) & v->by_fp.mask;
	while((s = v->by_fp.slots[i])){
		const struct entry *e = slot_entry(s);
		bool is_next = (s & NEXT_TAG) != 0;
		if(!memcmp(is_next ? next_fp(e) : e->fp, key, FP_BYTES)){
			/* the same rule as onb_registry_device_by_fp */
			if(!is_next && e->deadline_ms > 0 && now_ms >= e->deadline_ms){
				char id[ONB_ID_MAX + 1];
				memcpy(id, id_of(e), e->id_len);
				id[e->id_len] = '\0';
				return onb_fail(err, ONB_EREFUSED, "certificate of device %s was retired by a rotation "
						"(grace period over)", id);
			}
			fill(e, out);
			return ONB_OK;
		}
		i = (i + 1) & v->by_fp.mask;
	}
	return onb_fail(err, ONB_ENOTFOUND, "certificate not in the admission view");
}

int onb_admview_by_id(const struct onb_admview *v, const char *id,
		struct onb_device *out, struct onb_err *err)
{
	const struct entry *e = find_id(v, id, strlen(id), NULL);

	if(!e) return onb_fail(err, ONB_ENOTFOUND, "device not in the admission view");
	fill(e, out);
	return ONB_OK;
}

size_t onb_admview_count(const struct onb_admview *v)
{
	return v->count;
}

size_t onb_admview_bytes(const struct onb_admview *v)
{
	return sizeof(*v) + v->entry_bytes
		+ (v->by_fp.mask + 1 + v->by_id.mask + 1) * sizeof(uintptr_t);
}
