/* libFuzzer target for lib/claim/claimcode.c. The input, as a C string, goes to
 * every reader (onb_claimcode_parse, _valid, _uri_parse, _input); its first
 * 23 bytes also make a code the way the library builds one (values mod 32,
 * check symbol from onb_claimcode_check_value).
 * Invariants:
 *  - whatever parses re-formats canonically: the canonical output is valid,
 *    parses to itself, and its human form parses back to the same bytes;
 *  - _valid(s) holds exactly when s parses to itself;
 *  - a failure writes a message and leaves the outputs untouched;
 *  - the input as a link template renders exactly when the check accepts
 *    it, to its own length less the placeholders plus the id and the code,
 *    and reading the rendered link back either succeeds or says why (a
 *    template may carry literal d= and c= of its own: no equality there);
 *  - every code the library builds or generates (and its human form and
 *    URI) parses back to the same bytes, and any one substituted symbol or
 *    swapped pair of adjacent different symbols is caught by the check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "claim/claimcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0x5a

static void check_canonical(const char *canon)
{
	char again[ONB_CC_SYMBOLS + 1], human[ONB_CC_HUMAN_LEN + 1], hash[ONB_CC_HASH_HEXLEN + 1];
	struct onb_err err;

	if(strlen(canon) != ONB_CC_SYMBOLS || !onb_claimcode_valid(canon)) abort();
	for(size_t i = 0; i < ONB_CC_SYMBOLS; i++){
		if(!memchr(onb_cc_alphabet, canon[i], 32)) abort();
	}
	if(onb_claimcode_parse(canon, again, &err) != ONB_OK || strcmp(again, canon)) abort();
	onb_claimcode_human(canon, human);
	if(strlen(human) != ONB_CC_HUMAN_LEN) abort();
	for(size_t i = 0; i < ONB_CC_HUMAN_LEN; i++){
		if((human[i] == '-') != (i % (ONB_CC_GROUP + 1) == ONB_CC_GROUP)) abort();
	}
	if(onb_claimcode_parse(human, again, &err) != ONB_OK || strcmp(again, canon)) abort();
	if(onb_claimcode_hash(canon, hash, &err) != ONB_OK || strlen(hash) != ONB_CC_HASH_HEXLEN
			|| strspn(hash, "0123456789abcdef") != ONB_CC_HASH_HEXLEN
			|| !onb_claimcode_hash_equal(hash, hash)){
		abort();
	}
}

/* device/canon back through the URI writer and reader. */
static void check_uri(const char *device, const char *canon)
{
	char uri[ONB_CC_URI_MAX], dev[ONB_ID_MAX + 1], code[ONB_CC_SYMBOLS + 1];
	struct onb_err err;

	if(onb_claimcode_link(NULL, device, canon, uri, sizeof(uri), &err) != ONB_OK) abort();
	if(onb_claimcode_uri_parse(uri, dev, code, &err) != ONB_OK || strcmp(dev, device) || strcmp(code, canon)) abort();
	if(onb_claimcode_input(uri, dev, code, &err) != ONB_OK || strcmp(dev, device) || strcmp(code, canon)) abort();
}

static void check_failure(int rc, const char *out, size_t n, const struct onb_err *err)
{
	if(rc == ONB_OK) return;
	if(rc != ONB_EINVAL || !err->msg[0]) abort();
	for(size_t i = 0; i < n; i++){
		if((unsigned char)out[i] != SENTINEL) abort();
	}
}

static void readers(const char *text)
{
	char canon[ONB_CC_SYMBOLS + 1], dev[ONB_ID_MAX + 1];
	struct onb_err err = { "" };
	int rc;

	memset(canon, SENTINEL, sizeof(canon));
	rc = onb_claimcode_parse(text, canon, &err);
	check_failure(rc, canon, sizeof(canon), &err);
	if(rc == ONB_OK) check_canonical(canon);
	if(onb_claimcode_valid(text) != (rc == ONB_OK && !strcmp(canon, text))) abort();

	memset(canon, SENTINEL, sizeof(canon));
	memset(dev, SENTINEL, sizeof(dev));
	err.msg[0] = '\0';
	rc = onb_claimcode_uri_parse(text, dev, canon, &err);
	check_failure(rc, canon, sizeof(canon), &err);
	check_failure(rc, dev, sizeof(dev), &err);
	if(rc == ONB_OK){
		if(!onb_id_valid(dev)) abort();
		check_canonical(canon);
		check_uri(dev, canon);
	}

	memset(canon, SENTINEL, sizeof(canon));
	err.msg[0] = '\0';
	rc = onb_claimcode_input(text, dev, canon, &err);
	if(rc == ONB_OK){
		check_canonical(canon);
		if(dev[0] && !onb_id_valid(dev)) abort();
	}else if(!err.msg[0]){
		abort();
	}
}

static void as_template(const char *text)
{
	static const char code[] = "7K2QM9XDA4TR0HZPC8VWN3B0";
	char link[ONB_CC_URI_MAX], dev[ONB_ID_MAX + 1], canon[ONB_CC_SYMBOLS + 1];
	struct onb_err err = { "" };
	bool ok = onb_claimcode_link_check(text, &err) == ONB_OK;

	if(!ok && !err.msg[0]) abort();
	if(!onb_claimcode_valid(code)) abort();
	if((onb_claimcode_link(text, "dev-1", code, link, sizeof(link), &err) == ONB_OK) != ok) abort();
	if(!ok) return;
	if(strlen(link) != strlen(text) - strlen("{device}{code}") + strlen("dev-1") + ONB_CC_SYMBOLS) abort();
	err.msg[0] = '\0';
	if(onb_claimcode_input(link, dev, canon, &err) == ONB_OK){
		if(dev[0] && !onb_id_valid(dev)) abort();
		check_canonical(canon);
	}else if(!err.msg[0]){
		abort();
	}
}

/* A code built from the input, like onb_claimcode_generate builds one. */
static void built(const uint8_t *data, size_t size)
{
	unsigned char v[ONB_CC_SYMBOLS];
	char canon[ONB_CC_SYMBOLS + 1], bad[ONB_CC_SYMBOLS + 1], lower[ONB_CC_SYMBOLS + 1];
	struct onb_err err;

	if(size < ONB_CC_DATA_SYMBOLS) return;
	for(size_t i = 0; i < ONB_CC_DATA_SYMBOLS; i++) v[i] = data[i] & 0x1f;
	v[ONB_CC_DATA_SYMBOLS] = (unsigned char)onb_claimcode_check_value(v, ONB_CC_DATA_SYMBOLS);
	for(size_t i = 0; i < ONB_CC_SYMBOLS; i++) canon[i] = onb_cc_alphabet[v[i]];
	canon[ONB_CC_SYMBOLS] = '\0';
	check_canonical(canon);
	check_uri("dev-1", canon);
	/* Crockford's reading: lower case is the same code */
	for(size_t i = 0; i <= ONB_CC_SYMBOLS; i++){
		lower[i] = (canon[i] >= 'A' && canon[i] <= 'Z') ? (char)(canon[i] - 'A' + 'a') : canon[i];
	}
	if(onb_claimcode_parse(lower, bad, &err) != ONB_OK || strcmp(bad, canon)) abort();
	/* one substitution (position and new value from the input) */
	if(size > ONB_CC_DATA_SYMBOLS + 1){
		size_t pos = data[ONB_CC_DATA_SYMBOLS] % ONB_CC_SYMBOLS;
		unsigned nv = data[ONB_CC_DATA_SYMBOLS + 1] & 0x1f;
		memcpy(bad, canon, sizeof(bad));
		bad[pos] = onb_cc_alphabet[nv];
		if(nv != v[pos] && onb_claimcode_valid(bad)) abort();
	}
	/* every adjacent swap */
	for(size_t i = 0; i + 1 < ONB_CC_SYMBOLS; i++){
		if(canon[i] == canon[i + 1]) continue;
		memcpy(bad, canon, sizeof(bad));
		bad[i] = canon[i + 1];
		bad[i + 1] = canon[i];
		if(onb_claimcode_valid(bad)) abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char canon[ONB_CC_SYMBOLS + 1], *text;
	struct onb_err err;

	text = malloc(size + 1);
	if(!text) return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	readers(text);
	as_template(text);
	free(text);
	built(data, size);
	if(size == 0){
		/* the generator itself, once in a while (the empty input recurs) */
		if(onb_claimcode_generate(canon, &err) != ONB_OK) abort();
		check_canonical(canon);
	}
	return 0;
}
