/* libFuzzer target for onb_duration_parse (lib/core/common.c). The first 8 bytes
 * are max_ms (so the limit's edges get fuzzed too), the rest the text.
 * Invariant: the parser agrees with a reference written from the contract
 * in core/common.h, digits [0-9]+ then at most one of s m h d, whole number
 * > 0, result <= max_ms; and a success formats back ("<n>s", or the bare
 * number of seconds) to the same milliseconds. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The contract, without strtoll: digits accumulate only while the value
 * can still be <= max_ms (so it cannot overflow). */
static bool reference(const char *s, int64_t max_ms, int64_t *ms)
{
	int64_t v = 0, unit = 1000;
	bool over = false;
	size_t i = 0;

	if(s[0] < '0' || s[0] > '9') return false;
	for(; s[i] >= '0' && s[i] <= '9'; i++){
		if(!over && v > (INT64_MAX - 9) / 10) over = true;
		if(!over) v = v * 10 + (s[i] - '0');
	}
	if(s[i]){
		switch(s[i]){
		case 's': unit = 1000; break;
		case 'm': unit = 60 * 1000; break;
		case 'h': unit = 3600 * 1000; break;
		case 'd': unit = 86400 * 1000; break;
		default: return false;
		}
		if(s[i + 1]) return false;
	}
	if(over || v == 0 || max_ms < unit || v > max_ms / unit) return false;
	*ms = v * unit;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t max_ms = 0, got = -1, want = -1, again = -1;
	char *text, back[32];
	bool ok, ref;

	if(size < sizeof(max_ms)) return 0;
	memcpy(&max_ms, data, sizeof(max_ms));
	text = malloc(size - sizeof(max_ms) + 1);
	if(!text) return 0;
	memcpy(text, data + sizeof(max_ms), size - sizeof(max_ms));
	text[size - sizeof(max_ms)] = '\0';
	ok = onb_duration_parse(text, max_ms, &got);
	ref = reference(text, max_ms, &want);
	if(ok != ref) abort();
	if(ok){
		if(got != want || got <= 0 || got > max_ms) abort();
		/* every result is a whole number of seconds */
		if(got % 1000) abort();
		snprintf(back, sizeof(back), "%" PRId64 "%s", got / 1000, (data[0] & 1) ? "s" : "");
		if(!onb_duration_parse(back, max_ms, &again) || again != got) abort();
	}else if(got != -1){
		abort();   /* the output is written only on success */
	}
	free(text);
	return 0;
}
