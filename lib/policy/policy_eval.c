/* Policy compilation (once per connection) and evaluation (every ACL check).
 *
 * A compiled policy is one heap block: for each action, the resources that
 * take part in its checks, deny statements first, each as an onb_tv over its
 * substituted pattern with every level end precomputed, tagged with a shape.
 * An ACL check validates the subject in place (a few memchr calls; a
 * delivery's topic, which the broker accepted already, only for its length:
 * onb_policy_allows_receive); patterns without '+' are then compared as whole
 * strings ("L" exactly, "L/#" as "is L or starts with L/"). A topic name
 * against a pattern with one '+' is three compares (literal prefix, the
 * level '+' takes, literal rest); with several, the literal prefix, then one
 * pass over the unsplit name (onb_tv_matches_name). A filter (subscribe) is
 * split on first need into a stack array of ONB_TV_CACHE level ends (later
 * levels are found by scanning) for the containment and overlap walks. A
 * check that wants no onb_decision skips deny entries that overlap no allow
 * entry (struct onb_compiled). Evaluation calls no allocator and builds no
 * string.
 *
 * Hostile variables (see policy/policy.h): an allow statement using one is
 * disabled; in a deny statement each resource using one is cut at the level
 * holding it and ends in '#' ("devices/${deviceId}/x" -> "devices/#"; at the
 * first level: every subject, '$' topics included; in client: patterns,
 * "<prefix>*"), a superset of what any value could have produced. So a bad
 * value never opens anything and never narrows a deny. */
#include "policy/policy.h"
#include "policy/topic.h"
#include "policy/policy_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_ASIS = 0, ST_DISABLED = 1, ST_BROADENED = 2 };

/* How a topic pattern can be matched without walking levels. */
enum shape {
	SH_GENERAL = 0, /* has several '+': walk the levels */
	SH_EXACT,       /* no wildcard: one string compare */
	SH_PREFIX,      /* "L/#" (or "#"): the subject is L or starts with "L/" */
	SH_ONEPLUS,     /* "P+T" or "P+T/#", P and T literal (P "" or ending in '/', T "" or
	                 * starting with '/'): compare P, skip one level, compare T */
};

struct cres {
	struct onb_tv tv; /* the substituted pattern; client: only s and len, '*' globs */
	/* SH_PREFIX: length of "L/" (0 for "#"); SH_ONEPLUS, SH_GENERAL: bytes
	 * before the first '+' (P, the literal levels and their '/') */
	uint32_t plen;
	uint32_t tlen;    /* SH_ONEPLUS: length of T, which starts at plen + 1 */
	uint16_t stmt, res;
	uint16_t plv;     /* SH_ONEPLUS, SH_GENERAL: levels before the first '+' */
	uint8_t all;      /* a broadened deny that matches every subject */
	uint8_t shape;    /* enum shape */
};

struct onb_compiled {
	size_t size;
	uint32_t nstmt;
	uint32_t first[ONB_ACT_COUNT], ndeny[ONB_ACT_COUNT], nallow[ONB_ACT_COUNT];
	/* Per action, for checks that want only the answer (no onb_decision):
	 * copies of the deny entries that overlap some allow entry, at
	 * res[live[a]]. A deny that no allowed subject can match never changes
	 * an answer (allowed = some allow matches and no deny does); it only
	 * names the statement of a refusal that is refused by default anyway. */
	uint32_t live[ONB_ACT_COUNT], nlive[ONB_ACT_COUNT];
	struct cres *res;  /* per action: ndeny deny entries, then nallow allow entries; then the live copies */
	uint8_t *st_state; /* per statement: ST_* */
	uint8_t *st_vars;  /* per statement: the hostile variables it uses */
};

/* Per-resource scratch of a compile. */
struct scratch {
	struct onb_tv tv;
	size_t len;
	uint32_t nlv;
	bool all, on;
};

static uint8_t hostile_vars(const char *const vals[VAR_COUNT])
{
	uint8_t bad = 0;

	for(int i = 0; i < VAR_COUNT; i++){
		const char *v = vals[i];
		if(!v || !v[0] || strnlen(v, ONB_POLICY_VAR_MAX + 1) > ONB_POLICY_VAR_MAX || strpbrk(v, "/+#*")){
			bad |= (uint8_t)(1u << i);
		}
	}
	return bad;
}

/* Substitutes r's variables into out[0..cap) (only measuring when out is
 * NULL) and returns the length. A variable in `bad` cuts the pattern as
 * described at the top of this file, rewinding to the start of its level:
 * bytes past cap written before a cut are dropped, so cap is the measured
 * length. *all is set when nothing is left of the pattern. */
static size_t subst(const struct pres *r, const char *const vals[VAR_COUNT], uint8_t bad, char *out,
	size_t cap, uint32_t *nlv, bool *all)
{
	const char *s = r->pat;
	bool topic = r->type != RES_CLIENT;
	size_t o = 0, lv_o = 0, lv_i = 0;
	uint32_t lv = 0;

	*all = false;
	for(size_t i = 0; s[i];){
		if(topic && s[i] == '/'){
			if(out && o < cap) out[o] = '/';
			o++;
			lv++;
			lv_o = o;
			lv_i = ++i;
		}else if(topic && s[i] == '*' && i == lv_i && (s[i + 1] == '/' || !s[i + 1])){
			if(out && o < cap) out[o] = '+';
			o++;
			i++;
		}else if(s[i] == '$' && s[i + 1] == '{'){
			size_t adv = 0, n;
			int v = onb_policy_var_at(s + i, &adv); /* known: the parser checked */
			if(v < 0) v = VAR_DEVICE;
			if(bad & (1u << v)){
				if(topic && lv == 0){
					*all = true;
					*nlv = 0;
					return 0;
				}
				if(topic) o = lv_o;
				if(out && o < cap) out[o] = topic ? '#' : '*';
				o++;
				break;
			}
			n = strlen(vals[v]);
			if(out && o < cap) memcpy(out + o, vals[v], n < cap - o ? n : cap - o);
			o += n;
			i += adv;
		}else{
			if(out && o < cap) out[o] = s[i];
			o++;
			i++;
		}
	}
	*nlv = lv + 1;
	return o;
}

/* Sets the shape of e, a pattern with a '+' (a compiled pattern knows all
 * its level ends): the levels before the first '+' (number and bytes, '/'
 * included), and SH_ONEPLUS with T's length when that is the only '+'. */
static void plus_shape(struct cres *e)
{
	const struct onb_tv *tv = &e->tv;
	uint32_t start = 0, nplus = 0;

	e->shape = SH_GENERAL;
	e->plv = 0;
	e->plen = 0;
	for(uint32_t i = 0; i < tv->nends; i++){
		if(tv->ends[i] - start == 1 && tv->s[start] == '+' && nplus++ == 0 && i < UINT16_MAX){
			e->plv = (uint16_t)i;
			e->plen = start;
		}
		start = tv->ends[i] + 1u;
	}
	if(nplus == 1 && tv->nends == tv->nlv){
		e->shape = SH_ONEPLUS;
		e->tlen = tv->len - e->plen - 1 - ((tv->flags & ONB_TV_HASH) ? 2 : 0);
	}
}

/* Copies action a's deny entries that can change an answer to res[*next...]
 * (see struct onb_compiled). Overlap of two compiled patterns is exact, or
 * errs towards "overlaps", i.e. towards keeping a deny. Client patterns, and
 * policies too large to compare every pair at each compile, keep them all. */
#define LIVE_PAIRS_MAX 4096

static void live_denies(struct onb_compiled *c, enum onb_action a, size_t *next)
{
	const struct cres *deny = c->res + c->first[a], *allow = deny + c->ndeny[a];
	bool prune = a != ONB_ACT_CONNECT && (size_t)c->ndeny[a] * c->nallow[a] <= LIVE_PAIRS_MAX;

	c->live[a] = (uint32_t)*next;
	for(uint32_t i = 0; i < c->ndeny[a]; i++){
		bool keep = !prune || deny[i].all;
		for(uint32_t j = 0; !keep && j < c->nallow[a]; j++){
			keep = onb_tv_overlaps(&deny[i].tv, &allow[j].tv);
		}
		if(keep) c->res[(*next)++] = deny[i];
	}
	c->nlive[a] = (uint32_t)*next - c->live[a];
}

int onb_policy_compile(const struct onb_policy *p, const struct onb_policy_vars *v,
	struct onb_compiled **out, struct onb_err *err)
{
	const char *vals[VAR_COUNT] = {0};
	struct onb_compiled *c;
	struct scratch *t = NULL;
	uint8_t bad, *state = NULL, *svars = NULL;
	size_t ntotal = 0, nent = 0, ndenies = 0, nends = 0, nchars = 0, size, k;
	uint16_t *ep;
	char *cp;
	int rc = ONB_OK;

	if(!p || !out) return onb_fail(err, ONB_EINVAL, "policy compile: no policy");
	if(v){
		vals[VAR_DEVICE] = v->device_id;
		vals[VAR_CLIENT] = v->client_id;
		vals[VAR_TENANT] = v->tenant_id;
		vals[VAR_CERTFP] = v->cert_fp;
		vals[VAR_STATE] = v->state;
	}
	bad = hostile_vars(vals);
	for(size_t si = 0; si < p->nstmt; si++) ntotal += p->st[si].nres;
	t = calloc(ntotal + 1, sizeof(*t));
	state = calloc(p->nstmt + 1, 1);
	svars = calloc(p->nstmt + 1, 1);
	if(!t || !state || !svars){
		rc = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto out;
	}

	/* pass 1: what each statement becomes, and the sizes */
	k = 0;
	for(size_t si = 0; si < p->nstmt; si++){
		const struct pstmt *st = &p->st[si];
		bool deny = st->effect == ONB_EFFECT_DENY;

		svars[si] = st->vars & bad;
		state[si] = svars[si] ? (deny ? ST_BROADENED : ST_DISABLED) : ST_ASIS;
		for(size_t ri = 0; ri < st->nres && state[si] != ST_DISABLED; ri++){
			struct scratch *tr = &t[k + ri];
			tr->len = subst(&st->res[ri], vals, deny ? bad : 0, NULL, 0, &tr->nlv, &tr->all);
			if(tr->len > ONB_TOPIC_MAX){ /* only with many long values */
				state[si] = deny ? ST_BROADENED : ST_DISABLED;
				tr->all = true;
				tr->len = 0;
			}
		}
		for(size_t ri = 0; ri < st->nres && state[si] != ST_DISABLED; ri++){
			struct scratch *tr = &t[k + ri];
			tr->on = true;
			nchars += tr->len + 1;
			if(st->res[ri].type != RES_CLIENT && !tr->all) nends += tr->nlv;
			for(int a = 0; a < ONB_ACT_COUNT; a++){
				if((st->actions & (1u << a)) && onb_policy_applies(st->res[ri].type, st->effect, (enum onb_action)a)){
					nent++;
					ndenies += deny;
				}
			}
		}
		k += st->nres;
	}

	/* pass 2: one block, laid out by decreasing alignment */
	size = sizeof(*c) + (nent + ndenies) * sizeof(struct cres) + nends * sizeof(uint16_t) + 2 * p->nstmt + nchars;
	if(!(c = malloc(size))){
		rc = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto out;
	}
	memset(c, 0, sizeof(*c));
	c->size = size;
	c->nstmt = (uint32_t)p->nstmt;
	c->res = (struct cres *)(c + 1);
	ep = (uint16_t *)(c->res + nent + ndenies);
	c->st_state = (uint8_t *)(ep + nends);
	c->st_vars = c->st_state + p->nstmt;
	cp = (char *)(c->st_vars + p->nstmt);
	if(p->nstmt){
		memcpy(c->st_state, state, p->nstmt);
		memcpy(c->st_vars, svars, p->nstmt);
	}
	k = 0;
	for(size_t si = 0; si < p->nstmt; si++){
		const struct pstmt *st = &p->st[si];
		for(size_t ri = 0; ri < st->nres; ri++){
			struct scratch *tr = &t[k + ri];
			uint32_t nlv;
			bool all;
			if(!tr->on) continue;
			memset(&tr->tv, 0, sizeof(tr->tv));
			tr->tv.s = cp;
			if(!tr->all){
				subst(&st->res[ri], vals, st->effect == ONB_EFFECT_DENY ? bad : 0, cp, tr->len, &nlv, &all);
			}
			cp[tr->len] = '\0';
			if(st->res[ri].type == RES_CLIENT || tr->all){
				tr->tv.len = (uint32_t)tr->len;
			}else{
				if(onb_tv_init(&tr->tv, cp, tr->len, ONB_TOPIC_FILTER, ep, tr->nlv) != ONB_OK
					|| tr->tv.nlv != tr->nlv){
					onb_compiled_free(c);
					rc = onb_fail(err, ONB_EINTERNAL, "statement[%zu].resource[%zu]: compiled to an "
						"invalid filter", si, ri);
					goto out;
				}
				ep += tr->nlv;
			}
			cp += tr->len + 1;
		}
		k += st->nres;
	}

	/* the per-action lists: deny statements first, each in document order */
	nent = 0;
	for(int a = 0; a < ONB_ACT_COUNT; a++){
		c->first[a] = (uint32_t)nent;
		for(int pass = 0; pass < 2; pass++){
			int effect = pass == 0 ? ONB_EFFECT_DENY : ONB_EFFECT_ALLOW;
			k = 0;
			for(size_t si = 0; si < p->nstmt; k += p->st[si].nres, si++){
				const struct pstmt *st = &p->st[si];
				if(st->effect != effect || !(st->actions & (1u << a)) || state[si] == ST_DISABLED) continue;
				for(size_t ri = 0; ri < st->nres; ri++){
					struct cres *e;
					if(!onb_policy_applies(st->res[ri].type, effect, (enum onb_action)a)) continue;
					e = &c->res[nent++];
					memset(e, 0, sizeof(*e));
					e->tv = t[k + ri].tv;
					e->stmt = (uint16_t)si;
					e->res = (uint16_t)ri;
					e->all = t[k + ri].all;
					if(st->res[ri].type != RES_CLIENT && !e->all){
						if(!(e->tv.flags & ONB_TV_WILD)){
							e->shape = SH_EXACT;
						}else if(!memchr(e->tv.s, '+', e->tv.len)){
							e->shape = SH_PREFIX; /* the one wildcard is the last level, '#' */
							e->plen = e->tv.len - 1;
						}else{
							plus_shape(e);
						}
					}
					if(pass == 0) c->ndeny[a]++;
					else c->nallow[a]++;
				}
			}
		}
	}
	for(int a = 0; a < ONB_ACT_COUNT; a++) live_denies(c, (enum onb_action)a, &nent);
	*out = c;
out:
	free(t);
	free(state);
	free(svars);
	return rc;
}

void onb_compiled_free(struct onb_compiled *c)
{
	free(c);
}

size_t onb_compiled_size(const struct onb_compiled *c)
{
	return c ? c->size : 0;
}

/* ---- evaluation: no allocation below this line -------------------------- */

/* '*' in p matches any run of bytes, everything else itself. */
static bool glob(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;

	while(si < sn){
		if(pi < pn && p[pi] == '*'){
			star = pi++;
			mark = si;
		}else if(pi < pn && p[pi] == s[si]){
			pi++;
			si++;
		}else if(star != SIZE_MAX){
			pi = star + 1;
			si = ++mark;
		}else{
			return false;
		}
	}
	while(pi < pn && p[pi] == '*') pi++;
	return pi == pn;
}

static bool decided(struct onb_decision *d, const struct cres *e, bool allow)
{
	d->allowed = allow;
	d->why = ONB_WHY_MATCH;
	d->stmt = e->stmt;
	d->res = e->res;
	return allow;
}

/* A filter being checked (subscribe): validated at once, split into levels
 * only when a candidate needs them. */
struct subject {
	struct onb_tv tv;
	uint16_t ends[ONB_TV_CACHE];
};

static inline const struct onb_tv *split(struct subject *x)
{
	if(!x->tv.nlv) onb_tv_split(&x->tv, x->ends, ONB_TV_CACHE);
	return &x->tv;
}

/* "P+T" or "P+T/#" (SH_ONEPLUS) matches name t. */
static inline __attribute__((always_inline)) bool match_oneplus(const struct cres *r, const struct onb_tv *t)
{
	const char *s = t->s, *q;
	uint32_t n = t->len, j;

	if((r->tv.flags & ONB_TV_FIRST_WILD) && (t->flags & ONB_TV_DOLLAR)) return false;
	if(n < r->plen || !onb_bytes_eq(s, r->tv.s, r->plen)) return false;
	q = memchr(s + r->plen, '/', n - r->plen); /* the level '+' takes */
	j = q ? (uint32_t)(q - s) : n;
	if(n - j < r->tlen || !onb_bytes_eq(s + j, r->tv.s + r->plen + 1, r->tlen)) return false;
	j += r->tlen;
	/* T ends the name (also for "P+T/#": "L/#" matches "L"), or '#' takes the rest */
	return j == n || ((r->tv.flags & ONB_TV_HASH) && s[j] == '/');
}

/* Pattern r matches topic name t (prepared, never split). Tests in order of
 * frequency in real policies rather than a switch (a jump table costs more
 * than the compare it saves here). */
static inline __attribute__((always_inline)) bool match_name(const struct cres *r, const struct onb_tv *t)
{
	if(r->shape == SH_EXACT) return t->len == r->tv.len && onb_bytes_eq(t->s, r->tv.s, t->len);
	if(r->shape == SH_PREFIX){
		if(r->plen == 0) return !(t->flags & ONB_TV_DOLLAR);
		if(t->len >= r->plen) return onb_bytes_eq(t->s, r->tv.s, r->plen);
		return t->len + 1 == r->plen && onb_bytes_eq(t->s, r->tv.s, t->len); /* "L/#" matches "L" */
	}
	if(r->shape == SH_ONEPLUS) return match_oneplus(r, t);
	return onb_tv_matches_name(&r->tv, r->plv, r->plen, t);
}

/* Pattern r contains filter x. The fast shapes hold because a filter inside
 * "L" or "L/#" must spell out L's levels literally. */
static inline bool contains_filter(const struct cres *r, struct subject *x)
{
	const struct onb_tv *f = &x->tv;

	switch(r->shape){
	case SH_EXACT:
		return f->len == r->tv.len && onb_bytes_eq(f->s, r->tv.s, f->len);
	case SH_PREFIX:
		if(r->plen == 0) return !(f->flags & ONB_TV_DOLLAR);
		if(f->len >= r->plen) return onb_bytes_eq(f->s, r->tv.s, r->plen);
		return f->len + 1 == r->plen && onb_bytes_eq(f->s, r->tv.s, f->len);
	default:
		return onb_tv_contains(&r->tv, split(x));
	}
}

/* Resets d (or scratch) to "denied: invalid subject" and returns it. */
static inline struct onb_decision *start(struct onb_decision *d, struct onb_decision *scratch)
{
	if(!d) d = scratch;
	d->allowed = false;
	d->why = ONB_WHY_INVALID;
	d->stmt = -1;
	d->res = -1;
	return d;
}

/* The entries of action a in *deny..*deny_end and *allow..*allow_end: every
 * deny in document order when the caller wants the deciding statement (why),
 * else only the live ones (struct onb_compiled). */
struct lists {
	const struct cres *deny, *deny_end, *allow, *allow_end;
};

static inline struct lists lists_of(const struct onb_compiled *c, enum onb_action a, bool why)
{
	struct lists l;

	l.allow = c->res + c->first[a] + c->ndeny[a];
	l.allow_end = l.allow + c->nallow[a];
	l.deny = why ? c->res + c->first[a] : c->res + c->live[a];
	l.deny_end = l.deny + (why ? c->ndeny[a] : c->nlive[a]);
	return l;
}

/* Publish or receive of a valid topic name t. Inlined into both callers:
 * a call here costs a tenth of a typical check. */
static inline __attribute__((always_inline)) bool eval_name(const struct lists *l, const struct onb_tv *t,
	struct onb_decision *d)
{
	for(const struct cres *r = l->deny; r < l->deny_end; r++){
		if(r->all || match_name(r, t)) return decided(d, r, false);
	}
	for(const struct cres *r = l->allow; r < l->allow_end; r++){
		if(match_name(r, t)) return decided(d, r, true);
	}
	d->why = ONB_WHY_DEFAULT;
	return false;
}

bool onb_policy_allows(const struct onb_compiled *c, enum onb_action a, const char *subject,
	struct onb_decision *d)
{
	struct onb_decision scratch;
	const struct cres *r;
	struct lists l;
	struct subject x;
	size_t n;
	bool why = d != NULL;

	d = start(d, &scratch);
	if(!c || !subject || (unsigned)a >= ONB_ACT_COUNT) return false;
	l = lists_of(c, a, why);
	if(a == ONB_ACT_PUBLISH || a == ONB_ACT_RECEIVE){
		n = strnlen(subject, ONB_TOPIC_MAX + 1);
		if(onb_tv_prepare(&x.tv, subject, n, ONB_TOPIC_NAME) != ONB_OK) return false;
		return eval_name(&l, &x.tv, d);
	}
	if(a == ONB_ACT_CONNECT){
		n = strnlen(subject, ONB_TOPIC_MAX + 1);
		if(n == 0 || n > ONB_TOPIC_MAX) return false;
		for(r = l.deny; r < l.deny_end; r++){
			if(r->all || glob(r->tv.s, r->tv.len, subject, n)) return decided(d, r, false);
		}
		for(r = l.allow; r < l.allow_end; r++){
			if(glob(r->tv.s, r->tv.len, subject, n)) return decided(d, r, true);
		}
	}else{
		if(!(subject = onb_filter_unshare(subject))) return false;
		n = strnlen(subject, ONB_TOPIC_MAX + 1);
		if(onb_tv_prepare(&x.tv, subject, n, ONB_TOPIC_FILTER) != ONB_OK) return false;
		for(r = l.deny; r < l.deny_end; r++){
			if(r->all || onb_tv_overlaps(&r->tv, split(&x))) return decided(d, r, false);
		}
		for(r = l.allow; r < l.allow_end; r++){
			if(contains_filter(r, &x)) return decided(d, r, true);
		}
	}
	d->why = ONB_WHY_DEFAULT;
	return false;
}

bool onb_policy_allows_receive(const struct onb_compiled *c, const char *topic, struct onb_decision *d)
{
	struct onb_decision scratch;
	struct onb_tv t;
	struct lists l;
	size_t n;
	bool why = d != NULL;

	d = start(d, &scratch);
	if(!c || !topic) return false;
	n = strnlen(topic, ONB_TOPIC_MAX + 1);
	if(n == 0 || n > ONB_TOPIC_MAX) return false;
	/* what onb_tv_prepare sets for a valid name, without its scans */
	t.s = topic;
	t.ends = NULL;
	t.len = (uint32_t)n;
	t.nlv = 0;
	t.nends = 0;
	t.flags = topic[0] == '$' ? ONB_TV_DOLLAR : 0;
	l = lists_of(c, ONB_ACT_RECEIVE, why);
	return eval_name(&l, &t, d);
}

/* ---- explanation (for onboardctl policy test) --------------------------- */

/* Appends to buf at *o what fits; returns false once buf is full. */
static bool put(char *buf, size_t len, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static bool put(char *buf, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if(*o >= len - 1) return false;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, len - *o, fmt, ap);
	va_end(ap);
	if(n < 0) return false;
	*o = (size_t)n >= len - *o ? len - 1 : *o + (size_t)n;
	return *o < len - 1;
}

int onb_policy_explain(const struct onb_policy *p, const struct onb_compiled *c, enum onb_action a,
	const struct onb_decision *d, char *buf, size_t len)
{
	size_t o = 0;

	if(!buf || len == 0) return ONB_EINVAL;
	buf[0] = '\0';
	if(!d) return ONB_EINVAL;
	switch(d->why){
	case ONB_WHY_INVALID:
		put(buf, len, &o, "deny: invalid %s", a == ONB_ACT_CONNECT ? "client id"
			: a == ONB_ACT_SUBSCRIBE ? "topic filter" : "topic name");
		break;
	case ONB_WHY_DEFAULT:
		put(buf, len, &o, "deny: no statement allows %s on it (default deny)", onb_action_name(a));
		break;
	case ONB_WHY_MATCH:
		put(buf, len, &o, "%s: statement %d", d->allowed ? "allow" : "deny", d->stmt);
		if(p && d->stmt >= 0 && (size_t)d->stmt < p->nstmt){
			const struct pstmt *st = &p->st[d->stmt];
			if(st->sid) put(buf, len, &o, " \"%.64s\"", st->sid);
			if(d->res >= 0 && d->res < st->nres) put(buf, len, &o, " resource %d %.200s", d->res, st->res[d->res].text);
		}
		break;
	}
	for(uint32_t si = 0; c && si < c->nstmt; si++){
		if(c->st_state[si] == ST_ASIS) continue;
		if(!put(buf, len, &o, "; statement %u %s", si, c->st_state[si] == ST_DISABLED ? "disabled" : "broadened")) break;
		if(!c->st_vars[si]) put(buf, len, &o, " (substituted pattern too long)");
		for(int i = 0; i < VAR_COUNT; i++){
			if(c->st_vars[si] & (1u << i)) put(buf, len, &o, " ${%s}", onb_policy_var_name(i));
		}
	}
	return ONB_OK;
}
