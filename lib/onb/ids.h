/* Identifiers that may reach a topic, a Redis key or a log line. */
#ifndef ONB_IDS_H
#define ONB_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define ONB_ID_MAX 128 /* device and tenant ids: [A-Za-z0-9._:-]{1,128} */

/* True when s is a valid device (or tenant) id. NULL is not valid. */
bool onb_id_valid(const char *s);

#endif
