/* libFuzzer target for lib/policy/topic.c. The input is up to three strings
 * separated by '\n' or NUL: A, B, C. Checks validation against the model in
 * topic_ref.h, and for valid filters the algebra's invariants: overlap is
 * symmetric, containment is reflexive and transitive and implies overlap,
 * a concrete topic built from B is matched by B and by every A that contains
 * B, and matches/contains/overlaps agree with the brute-force model. Also:
 * every request topic is one the plugin lets nobody receive
 * (onb_topic_handed_off). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provisioning/envelope.h"
#include "policy/policy.h"
#include "policy/topic.h"
#include "topic_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PIECE_MAX 8192

static size_t levels(const char *s)
{
	size_t n = 1;
	for(; *s; s++) n += *s == '/';
	return n;
}

/* Writes into out a topic name that filter f matches: '+' becomes "x", a
 * trailing '#' becomes "y/z" (deep) or is dropped (zero levels). */
static void concrete(const char *f, bool deep, char *out)
{
	size_t o = 0, n = strlen(f);

	for(size_t i = 0; i < n; i++){
		bool whole = (i == 0 || f[i - 1] == '/') && (i + 1 == n || f[i + 1] == '/');
		if(f[i] == '+' && whole){
			out[o++] = 'x';
		}else if(f[i] == '#' && whole){
			if(deep){
				memcpy(out + o, "y/z", 3);
				o += 3;
			}else if(o > 0){
				o--; /* drop the '/' before it */
			}
		}else{
			out[o++] = f[i];
		}
	}
	out[o] = '\0';
}

/* onb_tv_matches_name (name t walked unsplit) agrees with onb_topic_matches:
 * from the start, and from filter f's first '+' level with the literal
 * levels before it compared as one string. */
static void check_unsplit(const char *f, const char *t, bool want)
{
	static uint16_t ends[PIECE_MAX];
	struct onb_tv ft, tt;
	uint32_t pos = 0;

	if(onb_tv_init(&ft, f, strlen(f), ONB_TOPIC_FILTER, ends, PIECE_MAX) != ONB_OK) abort();
	if(onb_tv_prepare(&tt, t, strlen(t), ONB_TOPIC_NAME) != ONB_OK) abort();
	if(onb_tv_matches_name(&ft, 0, 0, &tt) != want) abort();
	for(uint32_t lv = 0; lv < ft.nlv; lv++){
		size_t n;
		const char *l = onb_tv_level(&ft, lv, &n);
		if(n == 1 && l[0] == '#') break;
		if(n == 1 && l[0] == '+'){
			if(onb_tv_matches_name(&ft, lv, pos, &tt) != want) abort();
			break;
		}
		pos += (uint32_t)n + 1;
	}
}

static void check_pair(const char *a, const char *b)
{
	static char t[2 * PIECE_MAX + 8];
	bool c = onb_filter_contains(a, b), o = onb_filter_overlaps(a, b);

	if(o != onb_filter_overlaps(b, a)) abort();
	if(c && !o) abort();
	for(int deep = 0; deep < 2; deep++){
		concrete(b, deep, t);
		if(!onb_topic_name_valid(t)) continue; /* "#" with zero levels is "" */
		if(!onb_topic_matches(b, t)) abort();
		if(c && !onb_topic_matches(a, t)) abort();
		if(onb_topic_matches(a, t) && !o) abort();
	}
	if(onb_topic_name_valid(b)){
		bool m = onb_topic_matches(a, b);
		if(m != c || m != o) abort();
		check_unsplit(a, b, m);
	}
	if(levels(a) <= 5 && levels(b) <= 5 && strlen(a) < 64 && strlen(b) < 64){
		int rc = ref_relation(a, b, 0), ro = ref_relation(a, b, 1);
		if(rc >= 0 && rc != c) abort();
		if(ro >= 0 && ro != o) abort();
	}
}

/* The policy engine's own fast paths (exact and "L/#" patterns, the literal
 * prefix of '+' patterns, deliveries' names taken as valid) must agree with
 * the level walk: a one-statement policy allowing pattern a. */
static void check_policy(const char *a, const char *b)
{
	static char doc[PIECE_MAX * 2 + 256];
	struct onb_policy *p = NULL;
	struct onb_compiled *c = NULL;
	struct onb_err err;
	int n;

	for(const char *q = a; *q; q++){
		if(*q == '"' || *q == '\\' || (unsigned char)*q < 0x20 || *q == '*' || *q == '$') return;
	}
	if(strncmp(b, "$share/", 7) == 0) return;
	n = snprintf(doc, sizeof(doc), "{\"version\":\"1\",\"statement\":[{\"effect\":\"allow\","
		"\"action\":[\"publish\",\"subscribe\",\"receive\"],\"resource\":[\"topic:%s\",\"topicfilter:%s\"]}]}",
		a, a);
	if(n < 0 || (size_t)n >= sizeof(doc)) return;
	if(onb_policy_parse(doc, (size_t)n, &p, &err) != ONB_OK) abort();
	if(onb_policy_compile(p, NULL, &c, &err) != ONB_OK) abort();
	if(onb_policy_allows(c, ONB_ACT_PUBLISH, b, NULL) != onb_topic_matches(a, b)) abort();
	if(onb_policy_allows(c, ONB_ACT_SUBSCRIBE, b, NULL) != onb_filter_contains(a, b)) abort();
	if(onb_policy_allows(c, ONB_ACT_RECEIVE, b, NULL) != onb_topic_matches(a, b)) abort();
	if(onb_topic_name_valid(b) && onb_policy_allows_receive(c, b, NULL) != onb_topic_matches(a, b)) abort();
	onb_compiled_free(c);
	onb_policy_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char piece[3][PIECE_MAX + 1];
	size_t start = 0;
	int n = 0;
	bool fa, fb, fc;

	for(size_t i = 0; i <= size && n < 3; i++){
		if(i == size || data[i] == '\n' || data[i] == '\0'){
			size_t len = i - start;
			if(len > PIECE_MAX) return 0;
			memcpy(piece[n], data + start, len);
			piece[n][len] = '\0';
			n++;
			start = i + 1;
		}
	}
	for(int i = n; i < 3; i++) memcpy(piece[i], "a/+", 4);

	for(int i = 0; i < 3; i++){
		const char *s = piece[i];
		struct onb_err err;
		bool name = onb_topic_name_valid(s), filter = onb_topic_filter_valid(s);
		if(name != ref_valid(s, false)) abort();
		if(levels(s) <= REF_MAXLV && filter != ref_valid(s, true)) abort();
		if(name && !filter) abort();
		if((onb_topic_check(s, strlen(s), ONB_TOPIC_FILTER, &err) == ONB_OK) != filter) abort();
		const char *u = onb_filter_unshare(s);
		if(u && u != s && (strncmp(s, "$share/", 7) != 0 || u < s + 8 || u > s + strlen(s))) abort();
		if(filter && (!onb_filter_contains(s, s) || !onb_filter_overlaps(s, s))) abort();
		/* the plugin's fast test of what nobody may receive misses no request topic */
		if((onb_prov_is_request_topic(s) || onb_request_route(s)) && !onb_topic_handed_off(s)) abort();
	}
	fa = onb_topic_filter_valid(piece[0]);
	fb = onb_topic_filter_valid(piece[1]);
	fc = onb_topic_filter_valid(piece[2]);
	if(fa && fb){
		check_pair(piece[0], piece[1]);
		check_pair(piece[1], piece[0]);
		check_policy(piece[0], piece[1]);
	}
	if(fa && fb && fc){
		bool ab = onb_filter_contains(piece[0], piece[1]);
		if(ab && onb_filter_contains(piece[1], piece[2]) && !onb_filter_contains(piece[0], piece[2])) abort();
		if(ab && onb_filter_overlaps(piece[1], piece[2]) && !onb_filter_overlaps(piece[0], piece[2])) abort();
	}
	return 0;
}
