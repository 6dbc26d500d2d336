/* A deliberately naive reference model of MQTT topic matching, used to check
 * lib/policy/topic.c (tests/unit/policy/test_policy.c and tests/fuzz/fuzz_topic.c).
 *
 * Containment and overlap are decided by brute force over a finite universe
 * of topic names that is enough to find a counterexample or a witness when
 * one exists: at level i, the literals either filter has at level i, one
 * fresh string equal to no literal, and at level 0 also a fresh string
 * starting with '$'; lengths 1 .. max(levels)+1. Any real witness maps onto
 * this universe level by level without changing how either filter treats it.
 * Test code only: allocates freely, aborts on failure to allocate. */
#ifndef ONB_TOPIC_REF_H
#define ONB_TOPIC_REF_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_MAXLV 8

struct ref_lv {
	int n;
	char *lv[REF_MAXLV + 2];
	char *buf;
};

static inline void ref_free(struct ref_lv *t)
{
	free(t->buf);
	t->buf = NULL;
}

/* Splits s on '/' into at most REF_MAXLV levels; false when there are more. */
static inline bool ref_split(const char *s, struct ref_lv *t)
{
	size_t n = strlen(s);
	char *b = malloc(n + 1);

	if(!b) abort();
	memcpy(b, s, n + 1);
	t->buf = b;
	t->n = 0;
	t->lv[t->n++] = b;
	for(char *p = b; *p; p++){
		if(*p == '/'){
			*p = '\0';
			if(t->n == REF_MAXLV){
				ref_free(t);
				return false;
			}
			t->lv[t->n++] = p + 1;
		}
	}
	return true;
}

static inline bool ref_valid(const char *s, bool filter)
{
	struct ref_lv t;
	bool ok = true;
	size_t n = strlen(s);

	if(n == 0 || n > 65535) return false;
	if(!filter) return strchr(s, '+') == NULL && strchr(s, '#') == NULL;
	if(!ref_split(s, &t)) return false; /* the model only handles short ones */
	for(int i = 0; i < t.n; i++){
		bool wild = strchr(t.lv[i], '+') || strchr(t.lv[i], '#');
		if(wild && strcmp(t.lv[i], "+") != 0 && strcmp(t.lv[i], "#") != 0) ok = false;
		if(strcmp(t.lv[i], "#") == 0 && i != t.n - 1) ok = false;
	}
	ref_free(&t);
	return ok;
}

static inline bool ref_match_lv(char *const *f, int nf, char *const *t, int nt)
{
	if(nf == 0) return nt == 0;
	if(strcmp(f[0], "#") == 0) return true;
	if(nt == 0) return false;
	if(strcmp(f[0], "+") != 0 && strcmp(f[0], t[0]) != 0) return false;
	return ref_match_lv(f + 1, nf - 1, t + 1, nt - 1);
}

static inline bool ref_match_split(const struct ref_lv *f, const struct ref_lv *t)
{
	bool fwild = strcmp(f->lv[0], "+") == 0 || strcmp(f->lv[0], "#") == 0;

	if(t->lv[0][0] == '$' && fwild) return false;
	return ref_match_lv(f->lv, f->n, t->lv, t->n);
}

/* Calls visit(topic levels) for every name of the universe of a and b;
 * stops early when visit returns false. */
static inline bool ref_universe(const struct ref_lv *a, const struct ref_lv *b,
	bool (*visit)(const struct ref_lv *t, void *ctx), void *ctx)
{
	size_t maxlen = 0;
	int L = (a->n > b->n ? a->n : b->n) + 1;
	char fresh[80], freshd[80];
	const char *cand[REF_MAXLV + 2][4];
	int ncand[REF_MAXLV + 2], idx[REF_MAXLV + 2];
	bool go = true;

	for(int i = 0; i < a->n; i++) if(strlen(a->lv[i]) > maxlen) maxlen = strlen(a->lv[i]);
	for(int i = 0; i < b->n; i++) if(strlen(b->lv[i]) > maxlen) maxlen = strlen(b->lv[i]);
	if(maxlen > 70) return true; /* not modelled */
	memset(fresh, 'z', maxlen + 1);
	fresh[maxlen + 1] = '\0';
	freshd[0] = '$';
	memset(freshd + 1, 'z', maxlen + 1);
	freshd[maxlen + 2] = '\0';
	for(int i = 0; i < L; i++){
		int k = 0;
		const struct ref_lv *s[2] = {a, b};
		for(int j = 0; j < 2; j++){
			if(i < s[j]->n && strcmp(s[j]->lv[i], "+") && strcmp(s[j]->lv[i], "#")){
				if(k == 0 || strcmp(cand[i][0], s[j]->lv[i]) != 0) cand[i][k++] = s[j]->lv[i];
			}
		}
		cand[i][k++] = fresh;
		if(i == 0) cand[i][k++] = freshd;
		ncand[i] = k;
	}
	for(int n = 1; n <= L && go; n++){
		for(int i = 0; i < n; i++) idx[i] = 0;
		for(;;){
			struct ref_lv t;
			t.n = n;
			t.buf = NULL;
			for(int i = 0; i < n; i++) t.lv[i] = (char *)cand[i][idx[i]];
			if(!(n == 1 && t.lv[0][0] == '\0')){ /* "" is no topic */
				if(!visit(&t, ctx)){
					go = false;
					break;
				}
			}
			int i = n - 1;
			while(i >= 0 && ++idx[i] == ncand[i]) idx[i--] = 0;
			if(i < 0) break;
		}
	}
	return go;
}

struct ref_pair {
	const struct ref_lv *a, *b;
	bool found;
};

static inline bool ref_visit_escape(const struct ref_lv *t, void *ctx)
{
	struct ref_pair *p = ctx;
	if(ref_match_split(p->b, t) && !ref_match_split(p->a, t)){
		p->found = true;
		return false;
	}
	return true;
}

static inline bool ref_visit_common(const struct ref_lv *t, void *ctx)
{
	struct ref_pair *p = ctx;
	if(ref_match_split(p->a, t) && ref_match_split(p->b, t)){
		p->found = true;
		return false;
	}
	return true;
}

/* 1 or 0 for contains (which=0) or overlaps (which=1); -1 when the inputs
 * are outside the model (invalid, or too many or too long levels). */
static inline int ref_relation(const char *a, const char *b, int which)
{
	struct ref_lv x, y;
	struct ref_pair p;

	if(!ref_valid(a, true) || !ref_valid(b, true)) return -1;
	if(!ref_split(a, &x)) return -1;
	if(!ref_split(b, &y)){
		ref_free(&x);
		return -1;
	}
	p.a = &x;
	p.b = &y;
	p.found = false;
	ref_universe(&x, &y, which == 0 ? ref_visit_escape : ref_visit_common, &p);
	ref_free(&x);
	ref_free(&y);
	return which == 0 ? !p.found : p.found;
}

/* 1 or 0 for filter matching name; -1 when outside the model. */
static inline int ref_matches(const char *filter, const char *name)
{
	struct ref_lv f, t;
	int r;

	if(!ref_valid(filter, true) || !ref_valid(name, false)) return -1;
	if(!ref_split(filter, &f)) return -1;
	if(!ref_split(name, &t)){
		ref_free(&f);
		return -1;
	}
	r = ref_match_split(&f, &t);
	ref_free(&f);
	ref_free(&t);
	return r;
}

#endif
