/* Prometheus text exposition format 0.0.4 (prom.c): a size-capped text
 * buffer and the writers for families and samples. Pure: no I/O, no
 * Redis, no MHD, so that a unit test drives it as /metrics does. */
#ifndef CSVC_PROM_H
#define CSVC_PROM_H

#include <stdbool.h>
#include <stddef.h>

/* A growing text that never exceeds max bytes: a write that would is
 * dropped and sets overflow, which the caller turns into an error (a
 * truncated exposition would be read as valid but wrong). */
struct csvc_text {
	char *buf;          /* NUL-terminated, owned; NULL until the first write */
	size_t len, cap, max;
	bool overflow;      /* a write did not fit (or memory ran out) */
};

enum csvc_prom_type { CSVC_PROM_COUNTER, CSVC_PROM_GAUGE };

void csvc_text_init(struct csvc_text *t, size_t max);
void csvc_text_printf(struct csvc_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the buffer to the caller (free() it) and empties t; NULL if nothing
 * was written or t overflowed. */
char *csvc_text_take(struct csvc_text *t, size_t *len);
void csvc_text_free(struct csvc_text *t);

/* "# HELP name help\n# TYPE name type\n". name must be a valid metric name
 * (a programming error otherwise: the family is skipped and t overflows). */
void csvc_prom_family(struct csvc_text *t, const char *name, enum csvc_prom_type type, const char *help);

/* One sample "name{k1="v1",k2="v2"} value\n". k2 may be NULL, k1 too (no
 * labels). Label values are escaped (\\, \", \n); NaN and infinities are
 * written as Prometheus spells them, integers without an exponent. */
void csvc_prom_sample(struct csvc_text *t, const char *name, const char *k1, const char *v1,
		const char *k2, const char *v2, double value);

/* True for [a-zA-Z_:][a-zA-Z0-9_:]* (metric names) and, with colons
 * refused, label names. */
bool csvc_prom_name_valid(const char *name, bool label);

#endif
