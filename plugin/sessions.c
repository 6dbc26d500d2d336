/* Admitted connections, in two hash chains: by connection (every ACL check
 * and the DISCONNECT event) and by client id (== device id: registry events).
 * Entries are owned by the table.
 *
 * A connection's entry outlives its DISCONNECT event. Mosquitto 2.0.11's
 * context__disconnect() runs the DISCONNECT callbacks *before*
 * context__send_will(), whose ACL check (WRITE on the will topic) needs the
 * policy; and a takeover (a second CONNECT with the same client id) judges
 * the old connection's will after the new one was admitted, before the old
 * one's DISCONNECT. So a disconnect or a takeover only marks the entry
 * ended: ended entries answer the will check of their connection and
 * nothing else (acl.c), are invisible to sessions_find and sessions_each,
 * and are freed by sessions_reap() at the next tick.
 *
 * A connection whose session the broker keeps (a persistent session) is
 * parked instead of freed: the broker still queues messages for it and
 * asks the READ check for each, which its policy answers until the device
 * returns (its new connection's entry replaces it), the registry changes
 * its state, or the broker ends the session. Every version rechecks a
 * queued message against the new connection's policy when it returns.
 *
 * A claim or birth certificate's session is never parked: provisioning is
 * its only purpose, so once its connection has gone the broker is asked to
 * end whatever session it kept (sessions_set_ender), and nothing is queued
 * for it meanwhile (no entry answers its READ checks).
 *
 * The broker may free an ended connection and hand its address to a new
 * one. Ended entries are therefore matched by comparing the pointer, never
 * by dereferencing it, and sessions_forget_client() drops any entry still
 * holding an address the broker is authenticating anew. */
#include <string.h>

#include "onboard.h"
#include "identity/authority.h"

static struct session **by_client, **by_id;
static unsigned bucket_bits; /* 2^bucket_bits buckets in each table */
static size_t linked_count, live_count;
static struct session *ended; /* ended entries, freed by sessions_reap */
static bool (*end_kept_session)(const char *id); /* NULL: the broker cannot */

/* Client ids whose kept sessions one reap asks the broker to end; more wait
 * for the broker's own expiry. */
#define UNKEPT_MAX 256

static size_t hash_id(const char *id)
{
	return (size_t)(onb_hash_str(id) & ((1ULL << bucket_bits) - 1));
}

/* Fibonacci hashing: the top bits of address * 2^64/phi, so that the
 * allocator's aligned low bits do not matter. */
static size_t hash_client(const struct mosquitto *client)
{
	return (size_t)(((uint64_t)(uintptr_t)client * 0x9E3779B97F4A7C15ULL) >> (64 - bucket_bits));
}

static void link_entry(struct session *e)
{
	size_t c = hash_client(e->client), i = hash_id(e->id);

	e->next_by_client = by_client[c];
	by_client[c] = e;
	e->next_by_id = by_id[i];
	by_id[i] = e;
	e->linked = true;
	linked_count++;
}

static void unlink_entry(struct session *e)
{
	struct session **p;

	if(!e->linked) return;
	for(p = &by_client[hash_client(e->client)]; *p != e; p = &(*p)->next_by_client){}
	*p = e->next_by_client;
	for(p = &by_id[hash_id(e->id)]; *p != e; p = &(*p)->next_by_id){}
	*p = e->next_by_id;
	e->linked = false;
	linked_count--;
}

static int grow(void)
{
	unsigned bits = bucket_bits ? bucket_bits + 1 : 10;
	struct session **nc = mosquitto_calloc((size_t)1 << bits, sizeof(*nc));
	struct session **ni = mosquitto_calloc((size_t)1 << bits, sizeof(*ni));
	struct session *all = NULL, *e, *next;
	size_t n = (size_t)1 << bucket_bits;

	if(!nc || !ni){
		mosquitto_free(nc);
		mosquitto_free(ni);
		return ONB_EINTERNAL;
	}
	/* collect every linked entry through the client chains, then relink */
	for(size_t b = 0; bucket_bits && b < n; b++){
		for(e = by_client[b]; e; e = next){
			next = e->next_by_client;
			e->next_by_client = all;
			all = e;
		}
	}
	mosquitto_free(by_client);
	mosquitto_free(by_id);
	by_client = nc;
	by_id = ni;
	bucket_bits = bits;
	linked_count = 0;
	for(e = all; e; e = next){
		next = e->next_by_client;
		link_entry(e);
	}
	return ONB_OK;
}

/* Takes e out of the chains; a parked entry is no longer on the ended list,
 * so it is freed here, any other by the next sessions_reap. */
static void drop_entry(struct session *e)
{
	unlink_entry(e);
	if(e->parked){
		onb_compiled_free(e->policy);
		mosquitto_free(e);
	}
}

static void end_entry(struct session *e)
{
	if(e->ended) return;
	e->ended = true;
	e->next_ended = ended;
	ended = e;
	live_count--;
}

int sessions_put(const struct session *s)
{
	struct session *e, *next;

	sessions_forget_client(s->client);
	if((!bucket_bits || linked_count >= ((size_t)1 << bucket_bits)) && grow() != ONB_OK) return ONB_EINTERNAL;
	/* A takeover: the broker judges the old connection's will, then
	 * disconnects it, right after this admission. Ended entries of the id
	 * have had their wills. */
	for(e = by_id[hash_id(s->id)]; e; e = next){
		next = e->next_by_id;
		if(strcmp(e->id, s->id) != 0) continue;
		if(e->ended) drop_entry(e);
		else end_entry(e);
	}
	e = mosquitto_malloc(sizeof(*e));
	if(!e) return ONB_EINTERNAL;
	*e = *s;
	e->ended = false;
	e->deny_will = false;
	e->keeps_session = false;
	e->parked = false;
	e->next_ended = NULL;
	link_entry(e);
	live_count++;
	return ONB_OK;
}

struct session *sessions_get(const struct mosquitto *client)
{
	struct session *e;

	if(!bucket_bits) return NULL;
	for(e = by_client[hash_client(client)]; e; e = e->next_by_client){
		if(e->client == client) return e;
	}
	return NULL;
}

struct session *sessions_find(const char *id)
{
	struct session *e;

	if(!bucket_bits || !id) return NULL;
	for(e = by_id[hash_id(id)]; e; e = e->next_by_id){
		if(!e->ended && !strcmp(e->id, id)) return e;
	}
	return NULL;
}

void sessions_end(const struct mosquitto *client, bool keeps_session)
{
	struct session *e = sessions_get(client);

	if(!e) return;
	if(e->parked && !keeps_session){
		drop_entry(e); /* the broker ended the session it kept */
		return;
	}
	e->keeps_session = keeps_session;
	end_entry(e);
}

struct session *sessions_find_parked(const char *id)
{
	struct session *e;

	if(!bucket_bits || !id) return NULL;
	for(e = by_id[hash_id(id)]; e; e = e->next_by_id){
		if(e->parked && !strcmp(e->id, id)) return e;
	}
	return NULL;
}

void sessions_drop_parked(struct session *e)
{
	if(e && e->parked) drop_entry(e);
}

void sessions_forget_client(const struct mosquitto *client)
{
	struct session *e;

	/* at most one entry per address is linked: put calls this first */
	if(!bucket_bits || !(e = sessions_get(client))) return;
	end_entry(e);
	drop_entry(e);
}

void sessions_set_ender(bool (*end_session)(const char *id))
{
	end_kept_session = end_session;
}

static bool provisioning_only(const struct session *e)
{
	return onb_idclass_provisioning(e->idclass);
}

void sessions_reap(void)
{
	static char unkept[UNKEPT_MAX][ONB_ID_MAX + 1];
	size_t n_unkept = 0;

	while(ended){
		struct session *e = ended;
		ended = e->next_ended;
		e->next_ended = NULL;
		if(e->keeps_session && e->linked && provisioning_only(e)){
			if(n_unkept < UNKEPT_MAX) memcpy(unkept[n_unkept++], e->id, sizeof(e->id));
		}else if(e->keeps_session && e->linked && !e->deny_will){
			e->parked = true;
			continue;
		}
		unlink_entry(e);
		onb_compiled_free(e->policy);
		mosquitto_free(e);
	}
	/* After the loop: ending a session runs the broker's DISCONNECT event,
	 * which must find the list settled. An id a new connection already
	 * holds is that connection's now. */
	for(size_t i = 0; end_kept_session && i < n_unkept; i++){
		if(!sessions_find(unkept[i]) && !sessions_find_parked(unkept[i])) end_kept_session(unkept[i]);
	}
}

void sessions_each(void (*fn)(struct session *s, void *arg), void *arg)
{
	size_t n = (size_t)1 << bucket_bits;

	for(size_t b = 0; bucket_bits && b < n; b++){
		for(struct session *s = by_client[b]; s; s = s->next_by_client){
			if(!s->ended) fn(s, arg);
		}
	}
}

size_t sessions_count(void)
{
	return live_count;
}

void sessions_clear(void)
{
	size_t n = (size_t)1 << bucket_bits;
	struct session *e, *next;

	/* live entries are in the chains only, ended ones all on the list */
	for(size_t b = 0; bucket_bits && b < n; b++){
		for(e = by_client[b]; e; e = next){
			next = e->next_by_client;
			if(e->ended && !e->parked) continue;
			onb_compiled_free(e->policy);
			mosquitto_free(e);
		}
	}
	for(e = ended; e; e = next){
		next = e->next_ended;
		onb_compiled_free(e->policy);
		mosquitto_free(e);
	}
	mosquitto_free(by_client);
	mosquitto_free(by_id);
	by_client = by_id = NULL;
	bucket_bits = 0;
	linked_count = live_count = 0;
	ended = NULL;
}
