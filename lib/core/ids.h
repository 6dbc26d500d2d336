/* Identifiers that may reach a topic, a Redis key or a log line. */
#ifndef ONB_IDS_H
#define ONB_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define ONB_ID_MAX 128 /* device and tenant ids: [A-Za-z0-9._:-]{1,128} */

/* True when s is a valid device (or tenant) id. NULL is not valid. */
bool onb_id_valid(const char *s);

/* The one shape of every name: 1 to max characters, each an ASCII letter,
 * a digit or one of punct (e.g. "._-"). NULL is not valid. */
bool onb_name_valid(const char *s, size_t max, const char *punct);

#endif
