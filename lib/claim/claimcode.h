/* Claim codes (docs/claiming.md): the secret printed on a device's label
 * that proves physical possession when a tenant claims it.
 *
 * A code is 24 symbols of Crockford's base-32 alphabet
 * (0123456789ABCDEFGHJKMNPQRSTVWXYZ): 23 random symbols (115 bits from
 * RAND_bytes) and one check symbol, the weighted sum of the 23 over GF(32),
 * which catches every single-symbol substitution and every swap of two
 * adjacent symbols before anything is looked up.
 *
 *   canonical  7K2QM9XDA4TR0HZPC8VWN3B0         (what is hashed)
 *   human      7K2Q-M9XD-A4TR-0HZP-C8VW-N3B0    (what is printed)
 *   link       the QR payload, from a template (onb_claimcode_link): by
 *              default mqtt-onboard://claim?d=<device>&c=<canonical>, or a
 *              link a phone opens, https://claim.example.com/c?d=...&c=...
 *
 * Input is read as Crockford says: case-insensitive, I and L read as 1, O as
 * 0, dashes and blanks ignored. The registry stores only the SHA-256 of the
 * canonical form. Pure functions: no I/O but RAND_bytes; error messages never
 * contain the code. */
#ifndef ONB_CLAIMCODE_H
#define ONB_CLAIMCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"
#include "core/ids.h"

#define ONB_CC_SYMBOLS 24       /* canonical length: 23 data + 1 check */
#define ONB_CC_DATA_SYMBOLS 23
#define ONB_CC_BITS 115         /* entropy: 23 x 5 bits */
#define ONB_CC_GROUP 4          /* human form: groups of 4 */
#define ONB_CC_HUMAN_LEN 29     /* 24 symbols + 5 dashes */
#define ONB_CC_HASH_HEXLEN 64   /* SHA-256, lower-case hex */
#define ONB_CC_INPUT_MAX 320    /* longer input is refused unread (a link included) */
#define ONB_CC_LINK_DEFAULT "mqtt-onboard://claim?d={device}&c={code}"
#define ONB_CC_LINK_TEMPLATE_MAX 160 /* a template, placeholders included */
#define ONB_CC_URI_MAX 320      /* a rendered link: template + id + code + NUL fits */

/* The 32 symbols, by value. */
extern const char onb_cc_alphabet[33];

/* Draws a new code (RAND_bytes) into canon_out (ONB_CC_SYMBOLS symbols + NUL).
 * ONB_EINTERNAL when the random generator fails. */
int onb_claimcode_generate(char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err);

/* The check symbol's value (0..31) of n symbol values (each 0..31). */
unsigned onb_claimcode_check_value(const unsigned char *values, size_t n);

/* Reads a typed or scanned code (forgiving, see above) into its canonical
 * form. ONB_EINVAL, with a message naming the problem (bad character and its
 * position, wrong length, typo caught by the check symbol) but never the
 * code, otherwise. */
int onb_claimcode_parse(const char *text, char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err);

/* True when canon is a canonical code with a correct check symbol. */
bool onb_claimcode_valid(const char *canon);

/* The printed form of a canonical code: groups of 4 joined by dashes. */
void onb_claimcode_human(const char *canon, char out[ONB_CC_HUMAN_LEN + 1]);

/* SHA-256 of the canonical code as lower-case hex: the only form stored. */
int onb_claimcode_hash(const char *canon, char hex_out[ONB_CC_HASH_HEXLEN + 1], struct onb_err *err);

/* Constant-time equality of two hashes of ONB_CC_HASH_HEXLEN characters
 * (CRYPTO_memcmp); false if either is not that long. */
bool onb_claimcode_hash_equal(const char *a, const char *b);

/* Checks a link template: at most ONB_CC_LINK_TEMPLATE_MAX bytes of
 * printable ASCII without blanks or the characters RFC 3986 never allows
 * (" < > \\ ^ ` |); scheme https:// (a phone opens it; never
 * http://, the code would travel in clear) or mqtt-onboard://, then a
 * host; {device} and {code} exactly once each and no other brace. The error
 * says which rule failed. */
int onb_claimcode_link_check(const char *tmpl, struct onb_err *err);

/* Writes the QR payload: tmpl (NULL: ONB_CC_LINK_DEFAULT) with {device}
 * and {code} replaced by the device id and the canonical code (both are
 * unreserved URI characters, so nothing needs escaping), into out (cap
 * bytes, ONB_CC_URI_MAX is enough). ONB_EINVAL for a bad template, device
 * id or code. */
int onb_claimcode_link(const char *tmpl, const char *device, const char *canon, char *out, size_t cap,
		struct onb_err *err);

/* Parses a claim link. mqtt-onboard://claim (scheme and host
 * case-insensitive), an optional '/', then a query without fragment; or
 * https://<anything>, then a query and/or a fragment ('&' and '#' both
 * separate parameters there, so a template may keep the code out of web
 * servers' logs with https://host/c#d={device}&c={code}). Parameters d (a
 * valid device id) and c (a code, read as onb_claimcode_parse does) each
 * exactly once, percent-escapes decoded, other parameters ignored. A link
 * that carries them elsewhere (in its path) is not read: its page sends the
 * code alone. Outputs written only on success. */
int onb_claimcode_uri_parse(const char *uri, char device_out[ONB_ID_MAX + 1],
		char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err);

/* Either form: a claim link (mqtt-onboard: or https:; device_out then names
 * its device) or a bare code (device_out is then ""). */
int onb_claimcode_input(const char *text, char device_out[ONB_ID_MAX + 1],
		char canon_out[ONB_CC_SYMBOLS + 1], struct onb_err *err);

#endif
