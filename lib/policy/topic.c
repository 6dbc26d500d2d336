/* MQTT topic algebra: see policy/topic.h for the rules. Everything here works on
 * level slices of the caller's strings and never allocates: these functions
 * run inside the broker on every publish, subscribe and delivery. */
#include "policy/topic.h"

#include <string.h>

enum { LV_LIT = 0, LV_PLUS = 1, LV_HASH = 2 };

/* Checks the wildcard c at each of its places in s[0..len): NULL when every
 * one is a whole level ('#' the last one), else the reason. */
static const char *check_wild(const char *s, size_t len, char c, enum onb_topic_kind kind, uint32_t *flags)
{
	const char *e = s + len;

	for(const char *w = s; (w = memchr(w, c, (size_t)(e - w))) != NULL; w++){
		if(kind == ONB_TOPIC_NAME) return c == '+' ? "'+' in a topic name" : "'#' in a topic name";
		if((w != s && w[-1] != '/') || (w + 1 != e && w[1] != '/')){
			return c == '+' ? "'+' must be a whole level" : "'#' must be a whole level";
		}
		if(c == '#'){
			if(w + 1 != e) return "'#' must be the last level";
			*flags |= ONB_TV_HASH;
		}
		*flags |= ONB_TV_WILD;
		if(w == s) *flags |= ONB_TV_FIRST_WILD;
	}
	return NULL;
}

/* Validates s[0..len): NULL when valid (setting *flags), else the reason.
 * A few memchr() calls rather than a loop over bytes: this runs on every ACL
 * check. */
static const char *validate(const char *s, size_t len, enum onb_topic_kind kind, uint32_t *flags_out)
{
	const char *why;
	uint32_t flags = 0;

	if(!s) return "no topic given";
	if(len == 0) return "empty topic";
	if(len > ONB_TOPIC_MAX) return "longer than 65535 bytes";
	if(memchr(s, '\0', len)) return "holds a NUL byte";
	if((why = check_wild(s, len, '+', kind, &flags)) || (why = check_wild(s, len, '#', kind, &flags))) return why;
	if(s[0] == '$') flags |= ONB_TV_DOLLAR;
	*flags_out = flags;
	return NULL;
}

int onb_topic_check(const char *s, size_t len, enum onb_topic_kind kind, struct onb_err *err)
{
	uint32_t flags;
	const char *why = validate(s, len, kind, &flags);

	if(why) return onb_fail(err, ONB_EINVAL, "%s", why);
	return ONB_OK;
}

int onb_tv_prepare(struct onb_tv *tv, const char *s, size_t len, enum onb_topic_kind kind)
{
	uint32_t flags;

	if(!tv || validate(s, len, kind, &flags)) return ONB_EINVAL;
	tv->s = s;
	tv->ends = NULL;
	tv->len = (uint32_t)len;
	tv->nlv = 0;
	tv->nends = 0;
	tv->flags = flags;
	return ONB_OK;
}

void onb_tv_split(struct onb_tv *tv, uint16_t *ends, size_t cap)
{
	const char *p = tv->s, *e = tv->s + tv->len;
	uint32_t n = 0;

	for(;; n++){
		const char *q = memchr(p, '/', (size_t)(e - p));
		if(n < cap) ends[n] = (uint16_t)((q ? q : e) - tv->s);
		if(!q) break;
		p = q + 1;
	}
	tv->ends = ends;
	tv->nlv = n + 1;
	tv->nends = tv->nlv < cap ? tv->nlv : (uint32_t)cap;
}

int onb_tv_init(struct onb_tv *tv, const char *s, size_t len, enum onb_topic_kind kind,
	uint16_t *ends, size_t cap)
{
	if(cap && !ends) return ONB_EINVAL;
	if(onb_tv_prepare(tv, s, len, kind) != ONB_OK) return ONB_EINVAL;
	onb_tv_split(tv, ends, cap);
	return ONB_OK;
}

/* ---- walking levels ---------------------------------------------------- */

/* Where level i, which starts at pos, ends. */
static inline uint32_t level_end(const struct onb_tv *t, uint32_t i, uint32_t pos)
{
	const char *p;

	if(i < t->nends) return t->ends[i];
	p = memchr(t->s + pos, '/', t->len - pos);
	return p ? (uint32_t)(p - t->s) : t->len;
}

struct cur {
	const struct onb_tv *t;
	uint32_t i, pos, end; /* level i is s[pos..end) */
};

static inline void cur_init(struct cur *c, const struct onb_tv *t)
{
	c->t = t;
	c->i = 0;
	c->pos = 0;
	c->end = level_end(t, 0, 0);
}

/* Moves to the next level; false (and no move) at the last one. */
static inline bool cur_next(struct cur *c)
{
	if(c->i + 1 >= c->t->nlv) return false;
	c->i++;
	c->pos = c->end + 1;
	c->end = level_end(c->t, c->i, c->pos);
	return true;
}

static inline int cur_kind(const struct cur *c)
{
	if(c->end - c->pos != 1) return LV_LIT;
	switch(c->t->s[c->pos]){
	case '+': return LV_PLUS;
	case '#': return LV_HASH;
	default: return LV_LIT;
	}
}

static inline bool cur_eq(const struct cur *a, const struct cur *b)
{
	uint32_t n = a->end - a->pos;

	return n == b->end - b->pos && onb_bytes_eq(a->t->s + a->pos, b->t->s + b->pos, n);
}

/* A filter with '#' matches names of at least nlv - 1 levels, one without
 * exactly nlv: a cheap necessary condition for matching and containment. */
static inline bool levels_fit(const struct onb_tv *f, uint32_t nlv)
{
	return (f->flags & ONB_TV_HASH) ? nlv + 1 >= f->nlv : nlv == f->nlv;
}

/* Level i of a valid tv, found from the start. */
const char *onb_tv_level(const struct onb_tv *tv, uint32_t i, size_t *len)
{
	struct cur c;

	if(!tv || i >= tv->nlv) return NULL;
	cur_init(&c, tv);
	while(c.i < i) cur_next(&c);
	if(len) *len = c.end - c.pos;
	return tv->s + c.pos;
}

/* ---- the algebra ------------------------------------------------------- */

bool onb_tv_matches(const struct onb_tv *f, const struct onb_tv *t)
{
	struct cur a, b;

	if(t->flags & ONB_TV_WILD) return false;
	if(!levels_fit(f, t->nlv)) return false;
	if((t->flags & ONB_TV_DOLLAR) && (f->flags & ONB_TV_FIRST_WILD)) return false;
	cur_init(&a, f);
	cur_init(&b, t);
	for(;;){
		int k = cur_kind(&a);
		bool ma, mb;

		if(k == LV_HASH) return true;
		if(k == LV_LIT && !cur_eq(&a, &b)) return false;
		ma = cur_next(&a);
		mb = cur_next(&b);
		if(!mb) return !ma || cur_kind(&a) == LV_HASH; /* "a/#" matches "a" */
		if(!ma) return false;
	}
}

bool onb_tv_matches_name(const struct onb_tv *f, uint32_t lv, uint32_t pos, const struct onb_tv *t)
{
	const char *s = t->s;
	uint32_t n = t->len, i = lv, fpos = pos, tpos = pos;

	if(t->flags & ONB_TV_WILD) return false;
	if((t->flags & ONB_TV_DOLLAR) && (f->flags & ONB_TV_FIRST_WILD)) return false;
	/* levels 0..lv-1 of f are literal: the name must start with them and '/' */
	if(n < pos || !onb_bytes_eq(s, f->s, pos)) return false;
	for(;;){
		uint32_t fend = level_end(f, i, fpos), flen = fend - fpos, tend;

		if(flen == 1 && f->s[fpos] == '#') return true;
		if(flen == 1 && f->s[fpos] == '+'){
			const char *q = memchr(s + tpos, '/', n - tpos);
			tend = q ? (uint32_t)(q - s) : n;
		}else{
			if(n - tpos < flen || !onb_bytes_eq(s + tpos, f->s + fpos, flen)) return false;
			tend = tpos + flen;
			if(tend < n && s[tend] != '/') return false;
		}
		if(tend == n){
			/* the name ends here: f must too, or go on with '#' alone ("a/#" matches "a") */
			return i + 1 == f->nlv || (i + 2 == f->nlv && f->len == fend + 2 && f->s[fend + 1] == '#');
		}
		if(i + 1 == f->nlv) return false;
		i++;
		fpos = fend + 1;
		tpos = tend + 1;
	}
}

/* p contains f when no topic matched by f escapes p. The walk stops at the
 * first level where a counterexample topic can be built. */
bool onb_tv_contains(const struct onb_tv *p, const struct onb_tv *f)
{
	struct cur a, b;

	/* f matches names of f->nlv (or f->nlv - 1) levels */
	if(!levels_fit(p, f->nlv)) return false;
	/* p cannot match '$' topics; f must not be able to either */
	if((p->flags & ONB_TV_FIRST_WILD) && (f->flags & ONB_TV_DOLLAR)) return false;
	cur_init(&a, p);
	cur_init(&b, f);
	for(;;){
		int pk = cur_kind(&a), fk = cur_kind(&b);
		bool ma, mb;

		if(pk == LV_HASH) return true;
		if(fk == LV_HASH){
			/* f matches its own prefix (the levels before '#'), which p,
			 * having a level here, cannot. Unless that prefix is the empty
			 * string, which is no topic: then f is "+/#" (or "/+/#"), and
			 * p must be exactly that from here on. */
			bool empty_prefix = b.i == 0 || (b.i == 1 && f->s[0] == '/');
			return empty_prefix && pk == LV_PLUS && p->nlv == b.i + 2 && (p->flags & ONB_TV_HASH);
		}
		if(pk == LV_LIT && (fk != LV_LIT || !cur_eq(&a, &b))) return false;
		ma = cur_next(&a);
		mb = cur_next(&b);
		if(!mb) return !ma || cur_kind(&a) == LV_HASH;
		if(!ma) return false;
	}
}

bool onb_tv_overlaps(const struct onb_tv *x, const struct onb_tv *y)
{
	struct cur a, b;

	if(!(x->flags & ONB_TV_HASH) && !levels_fit(y, x->nlv)) return false;
	if(!(y->flags & ONB_TV_HASH) && !levels_fit(x, y->nlv)) return false;
	if((x->flags & ONB_TV_FIRST_WILD) && (y->flags & ONB_TV_DOLLAR)) return false;
	if((y->flags & ONB_TV_FIRST_WILD) && (x->flags & ONB_TV_DOLLAR)) return false;
	cur_init(&a, x);
	cur_init(&b, y);
	for(;;){
		int ak = cur_kind(&a), bk = cur_kind(&b);
		bool ma, mb;

		if(ak == LV_HASH || bk == LV_HASH) return true;
		if(ak == LV_LIT && bk == LV_LIT && !cur_eq(&a, &b)) return false;
		ma = cur_next(&a);
		mb = cur_next(&b);
		if(!ma && !mb) return true;
		if(ma && mb) continue;
		{
			/* one side ended; the other may go on only with '#' (zero levels).
			 * The common topic is then this one level, which must not be
			 * forced to the empty string ("+" vs "/#" share no topic). */
			struct cur *more = ma ? &a : &b;
			struct cur *ended = ma ? &b : &a;

			if(cur_kind(more) != LV_HASH) return false;
			if(ended->i == 0 && cur_kind(ended) == LV_PLUS && more->t->s[0] == '/') return false;
			return true;
		}
	}
}

/* ---- NUL-terminated conveniences ---------------------------------------- */

static bool tv_of(struct onb_tv *tv, const char *s, enum onb_topic_kind kind, uint16_t *ends)
{
	if(!s) return false;
	return onb_tv_init(tv, s, strnlen(s, ONB_TOPIC_MAX + 1), kind, ends, ONB_TV_CACHE) == ONB_OK;
}

bool onb_topic_name_valid(const char *s)
{
	uint16_t e[ONB_TV_CACHE];
	struct onb_tv t;

	return tv_of(&t, s, ONB_TOPIC_NAME, e);
}

bool onb_topic_filter_valid(const char *s)
{
	uint16_t e[ONB_TV_CACHE];
	struct onb_tv t;

	return tv_of(&t, s, ONB_TOPIC_FILTER, e);
}

bool onb_topic_matches(const char *filter, const char *topic)
{
	uint16_t e1[ONB_TV_CACHE], e2[ONB_TV_CACHE];
	struct onb_tv f, t;

	return tv_of(&f, filter, ONB_TOPIC_FILTER, e1) && tv_of(&t, topic, ONB_TOPIC_NAME, e2)
		&& onb_tv_matches(&f, &t);
}

bool onb_filter_contains(const char *p, const char *f)
{
	uint16_t e1[ONB_TV_CACHE], e2[ONB_TV_CACHE];
	struct onb_tv a, b;

	return tv_of(&a, p, ONB_TOPIC_FILTER, e1) && tv_of(&b, f, ONB_TOPIC_FILTER, e2)
		&& onb_tv_contains(&a, &b);
}

bool onb_filter_overlaps(const char *x, const char *y)
{
	uint16_t e1[ONB_TV_CACHE], e2[ONB_TV_CACHE];
	struct onb_tv a, b;

	return tv_of(&a, x, ONB_TOPIC_FILTER, e1) && tv_of(&b, y, ONB_TOPIC_FILTER, e2)
		&& onb_tv_overlaps(&a, &b);
}

const char *onb_filter_unshare(const char *f)
{
	const char *g, *p;

	if(!f) return NULL;
	if(strncmp(f, "$share/", 7) != 0) return f;
	g = f + 7;
	for(p = g; *p && *p != '/'; p++){
		if(*p == '+' || *p == '#') return NULL;
	}
	if(p == g || *p != '/' || p[1] == '\0') return NULL;
	return p + 1;
}
