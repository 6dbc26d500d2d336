/* The token -> certificate cache of RegisterThing (tokencache.h): a fixed,
 * direct-mapped table (a newer token takes an older one's slot), so memory
 * is bounded at SLOTS entries (~0.6 MB) whatever the request rate. */
#include "tokencache.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 4096

struct slot {
	char ref[ONB_FP_HEXLEN + 1];
	char fp[ONB_FP_HEXLEN + 1];
	int64_t expires_ms;
};

static struct slot slots[SLOTS];

/* ref is lower-case hex (a hash, checked by the callers): its first 8
 * digits pick the slot */
static struct slot *slot_of(const char *ref)
{
	char head[9];

	memcpy(head, ref, 8);
	head[8] = '\0';
	return &slots[strtoul(head, NULL, 16) % SLOTS];
}

static bool hex_of_len(const char *s, size_t n)
{
	return s && strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

void csvc_token_cache_put(const char *ref, const char *fp, int64_t expires_ms)
{
	struct slot *sl;

	if(!hex_of_len(ref, ONB_FP_HEXLEN) || !hex_of_len(fp, ONB_FP_HEXLEN)) return;
	sl = slot_of(ref);
	memcpy(sl->ref, ref, sizeof(sl->ref));
	memcpy(sl->fp, fp, sizeof(sl->fp));
	sl->expires_ms = expires_ms;
}

bool csvc_token_cache_get(const char *ref, int64_t now_ms, char fp[ONB_FP_HEXLEN + 1])
{
	const struct slot *sl;

	if(!hex_of_len(ref, ONB_FP_HEXLEN)) return false;
	sl = slot_of(ref);
	if(strcmp(sl->ref, ref) != 0 || now_ms >= sl->expires_ms) return false;
	memcpy(fp, sl->fp, ONB_FP_HEXLEN + 1);
	return true;
}
