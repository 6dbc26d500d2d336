/* Reading the audit stream onb:audit (written by every part: see
 * docs/registry.md for its fields). */
#ifndef ONB_AUDIT_H
#define ONB_AUDIT_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "registry/registry.h"

#define ONB_AUDIT_FIELDS_MAX 32

/* One entry: the stream id (its first part is the time in ms) and its
 * field/value pairs, borrowed for the duration of the callback. */
struct onb_audit_record {
	const char *id;
	size_t nfields;
	const char *name[ONB_AUDIT_FIELDS_MAX];
	const char *value[ONB_AUDIT_FIELDS_MAX];
};

/* The value of field name in rec, or NULL. */
const char *onb_audit_field(const struct onb_audit_record *rec, const char *name);

/* Reads up to max entries after last_id ("0-0" for the beginning, or
 * "<ms>-0" for "since"), waiting at most block_ms (0: not at all) for the
 * first, calling cb for each and advancing last_id. Returns the number read
 * or a negative ONB_E* code. */
int onb_audit_read(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], int block_ms, int max,
		void (*cb)(const struct onb_audit_record *rec, void *arg), void *arg,
		struct onb_err *err);

#endif
