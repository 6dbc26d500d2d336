/* Identity classes (DESIGN.md s.2): which configured CA issued a client
 * certificate, with a bounded cache of answers (identity/identity.h). */
#include "identity/identity.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pki/x509.h"

#define DIGEST_LEN 32 /* SHA-256 */

/* Direct-mapped: slot = first bytes of the digest, a newer certificate
 * replaces an older one in its slot. */
struct onb_class_cache {
	pthread_mutex_t lock;
	struct {
		unsigned char md[DIGEST_LEN];
		unsigned char cls;   /* enum onb_idclass */
		bool used;
	} slot[ONB_CLASS_CACHE_SLOTS];
};

static const char *const class_names[ONB_ID_COUNT] = {
	[ONB_ID_NONE] = "none",
	[ONB_ID_DEVICE] = "device",
	[ONB_ID_CLAIM] = "claim",
	[ONB_ID_BIRTH] = "birth",
	[ONB_ID_SERVICE] = "service",
};

int onb_ca_set_load(struct onb_ca_set *set, const char *const paths[ONB_ID_COUNT],
		struct onb_err *err)
{
	struct onb_ca_set loaded = { { NULL }, NULL };

	for(int c = ONB_ID_DEVICE; c < ONB_ID_COUNT; c++){
		if(!paths[c]) continue;
		loaded.ca[c] = onb_cert_load(paths[c], err);
		if(!loaded.ca[c]){
			onb_ca_set_clear(&loaded);
			return ONB_EINVAL;
		}
	}
	loaded.cache = calloc(1, sizeof(*loaded.cache));
	if(!loaded.cache || pthread_mutex_init(&loaded.cache->lock, NULL) != 0){
		free(loaded.cache);
		loaded.cache = NULL;
		onb_ca_set_clear(&loaded);
		return onb_fail(err, ONB_EINTERNAL, "out of memory for the CA set");
	}
	*set = loaded;
	return ONB_OK;
}

void onb_ca_set_clear(struct onb_ca_set *set)
{
	for(int c = 0; c < ONB_ID_COUNT; c++){
		X509_free(set->ca[c]);
		set->ca[c] = NULL;
	}
	if(set->cache){
		pthread_mutex_destroy(&set->cache->lock);
		free(set->cache);
		set->cache = NULL;
	}
}

static size_t slot_of(const unsigned char md[DIGEST_LEN])
{
	return ((size_t)md[0] << 16 | (size_t)md[1] << 8 | md[2]) % ONB_CLASS_CACHE_SLOTS;
}

/* Why a cached answer is as good as a fresh one: the key is the SHA-256 of
 * the whole certificate DER, signature included, so a hit means the very
 * bytes whose signature was verified against this set's CAs; and the cache
 * lives and dies with the set, so the CAs cannot change under it. Nothing
 * else onb_cert_issued_by looks at (names, key ids, signature) can differ
 * between two certificates with equal DER. Validity dates and revocation
 * are the TLS layer's (and the registry's) business, never this one's. */
static bool cache_get(struct onb_class_cache *cache, const unsigned char md[DIGEST_LEN],
		enum onb_idclass *out)
{
	size_t i = slot_of(md);
	bool hit;

	pthread_mutex_lock(&cache->lock);
	hit = cache->slot[i].used && memcmp(cache->slot[i].md, md, DIGEST_LEN) == 0;
	if(hit) *out = (enum onb_idclass)cache->slot[i].cls;
	pthread_mutex_unlock(&cache->lock);
	return hit;
}

static void cache_put(struct onb_class_cache *cache, const unsigned char md[DIGEST_LEN], enum onb_idclass c)
{
	size_t i = slot_of(md);

	pthread_mutex_lock(&cache->lock);
	memcpy(cache->slot[i].md, md, DIGEST_LEN);
	cache->slot[i].cls = (unsigned char)c;
	cache->slot[i].used = true;
	pthread_mutex_unlock(&cache->lock);
}

static enum onb_idclass classify(const struct onb_ca_set *set, X509 *cert)
{
	for(int c = ONB_ID_DEVICE; c < ONB_ID_COUNT; c++){
		if(set->ca[c] && onb_cert_issued_by(cert, set->ca[c])) return (enum onb_idclass)c;
	}
	return ONB_ID_NONE;
}

enum onb_idclass onb_identity_classify(const struct onb_ca_set *set, X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	enum onb_idclass c;

	if(!cert) return ONB_ID_NONE;
	/* no digest (out of memory): classify without the cache */
	if(!set->cache || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != DIGEST_LEN){
		return classify(set, cert);
	}
	if(cache_get(set->cache, md, &c)) return c;
	c = classify(set, cert);
	cache_put(set->cache, md, c);
	return c;
}

const char *onb_idclass_name(enum onb_idclass c)
{
	if((int)c < 0 || c >= ONB_ID_COUNT) return "none";
	return class_names[c];
}

enum onb_idclass onb_idclass_parse(const char *name)
{
	for(int c = ONB_ID_DEVICE; name && c < ONB_ID_COUNT; c++){
		if(!strcmp(name, class_names[c])) return (enum onb_idclass)c;
	}
	return ONB_ID_NONE;
}
