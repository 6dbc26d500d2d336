/* Prometheus text exposition format 0.0.4 (contract: prom.h). */
#include "prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void csvc_text_init(struct csvc_text *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
}

/* Makes room for n more bytes and the NUL; false (and overflow) past max. */
static bool reserve(struct csvc_text *t, size_t n)
{
	size_t want, cap;
	char *p;

	if(t->overflow) return false;
	if(n > t->max || t->len + n + 1 > t->max){
		t->overflow = true;
		return false;
	}
	want = t->len + n + 1;
	if(want <= t->cap) return true;
	cap = t->cap ? t->cap : 4096;
	while(cap < want) cap *= 2;
	if(cap > t->max) cap = t->max;
	p = realloc(t->buf, cap);
	if(!p){
		t->overflow = true;
		return false;
	}
	t->buf = p;
	t->cap = cap;
	return true;
}

static void vappend(struct csvc_text *t, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if(n < 0){
		t->overflow = true;
		return;
	}
	if(!reserve(t, (size_t)n)) return;
	vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	t->len += (size_t)n;
}

void csvc_text_printf(struct csvc_text *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(t, fmt, ap);
	va_end(ap);
}

static void append(struct csvc_text *t, const char *s, size_t n)
{
	if(!reserve(t, n)) return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

char *csvc_text_take(struct csvc_text *t, size_t *len)
{
	char *out = t->buf;

	if(t->overflow || !out){
		csvc_text_free(t);
		return NULL;
	}
	if(len) *len = t->len;
	t->buf = NULL;
	t->len = t->cap = 0;
	return out;
}

void csvc_text_free(struct csvc_text *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}

bool csvc_prom_name_valid(const char *name, bool label)
{
	if(!name || !*name) return false;
	for(const char *p = name; *p; p++){
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
		if(!alpha && (p == name || c < '0' || c > '9')) return false;
	}
	return true;
}

void csvc_prom_family(struct csvc_text *t, const char *name, enum csvc_prom_type type, const char *help)
{
	if(!csvc_prom_name_valid(name, false)){
		t->overflow = true;
		return;
	}
	/* help texts are ours: no backslash nor newline to escape */
	csvc_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			type == CSVC_PROM_COUNTER ? "counter" : "gauge");
}

/* A label value inside its double quotes: \ " and newline escaped. */
static void label_value(struct csvc_text *t, const char *v)
{
	const char *p = v, *run = v;

	for(; *p; p++){
		const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
		if(!esc) continue;
		append(t, run, (size_t)(p - run));
		append(t, esc, 2);
		run = p + 1;
	}
	append(t, run, (size_t)(p - run));
}

static void label(struct csvc_text *t, const char *k, const char *v, bool first)
{
	if(!csvc_prom_name_valid(k, true)){
		t->overflow = true;
		return;
	}
	csvc_text_printf(t, "%s%s=\"", first ? "" : ",", k);
	label_value(t, v ? v : "");
	append(t, "\"", 1);
}

/* The shortest %g text that reads back as v (1765112345.123, not
 * 1765112345.1229999): 17 digits always do. */
static const char *shortest(double v, char *buf, size_t size)
{
	for(int prec = 15; prec <= 17; prec++){
		snprintf(buf, size, "%.*g", prec, v);
		if(strtod(buf, NULL) == v) break;
	}
	return buf;
}

void csvc_prom_sample(struct csvc_text *t, const char *name, const char *k1, const char *v1,
		const char *k2, const char *v2, double value)
{
	char buf[40];

	append(t, name, strlen(name));
	if(k1){
		append(t, "{", 1);
		label(t, k1, v1, true);
		if(k2) label(t, k2, v2, false);
		append(t, "}", 1);
	}
	if(isnan(value)) csvc_text_printf(t, " NaN\n");
	else if(isinf(value)) csvc_text_printf(t, " %sInf\n", value > 0 ? "+" : "-");
	/* counters are integers: exact up to 2^53, written without an exponent */
	else if(value == floor(value) && fabs(value) < 9007199254740992.0) csvc_text_printf(t, " %.0f\n", value);
	else csvc_text_printf(t, " %s\n", shortest(value, buf, sizeof(buf)));
}
