/* Conventions shared by every module of lib/.
 *
 * Functions return ONB_OK (0) on success and a negative ONB_E* code on
 * failure; when they fail they write one human-readable line into the
 * caller's struct onb_err (never NULL-terminated garbage, never secrets).
 * Out-parameters are written only on success. */
#ifndef ONB_COMMON_H
#define ONB_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ONB_ERRLEN 256

enum onb_rc {
	ONB_OK = 0,
	ONB_EINVAL = -1,      /* bad input from the caller or the outside world */
	ONB_ENOTFOUND = -2,   /* the thing asked for does not exist */
	ONB_EUNAVAIL = -3,    /* a dependency (Redis, a file) is unreachable */
	ONB_EREFUSED = -4,    /* well-formed but not allowed (e.g. illegal transition) */
	ONB_EEXIST = -5,      /* would overwrite something that must not be overwritten */
	ONB_EINTERNAL = -6,   /* out of memory, library failure */
};

struct onb_err {
	char msg[ONB_ERRLEN];
};

/* Formats one line into err (if err is non-NULL) and returns rc, so that
 * error paths read `return onb_fail(err, ONB_EINVAL, "bad id %s", id);`. */
int onb_fail(struct onb_err *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Short stable name of an onb_rc ("invalid", "not-found", ...). */
const char *onb_rc_name(int rc);

/* Parses a duration "90d", "12h", "30m", "45s" or "3600" (seconds) into
 * milliseconds; false unless it is a whole number > 0 with at most one unit
 * and the result is at most max_ms. */
bool onb_duration_parse(const char *s, int64_t max_ms, int64_t *ms_out);

/* FNV-1a of a string: spreads keys over hash-table slots. Not for anything
 * an attacker could use to collide at will (the tables here hold ids and
 * fingerprints that passed our checks). */
uint64_t onb_hash_str(const char *s);

/* Writes all len bytes of data to fd, retrying short writes and EINTR;
 * false on error (errno set). */
bool onb_write_all(int fd, const char *data, size_t len);

/* Makes a new private file from tmpl with mkstemp (tmpl ends in "XXXXXX" and
 * is rewritten to the name made), gives it mode, writes data, syncs and
 * closes it: the first half of an atomic replace, the caller renames or links
 * it into place and unlinks it if that fails. On error nothing is left on disk,
 * errno is set and *created says whether the file had been made (the
 * failure was in writing it, not in creating it). */
bool onb_write_temp(char *tmpl, mode_t mode, const char *data, size_t len, bool *created);

/* Wall-clock milliseconds since the epoch and monotonic milliseconds. */
int64_t onb_now_ms(void);
int64_t onb_mono_ms(void);

#endif
