#include "core/ids.h"

#include <string.h>

bool onb_name_valid(const char *s, size_t max, const char *punct)
{
	size_t n = 0;

	if(!s) return false;
	for(; s[n]; n++){
		unsigned char c = (unsigned char)s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			|| strchr(punct, c) != NULL;
		if(!ok || n >= max) return false;
	}
	return n > 0;
}

bool onb_id_valid(const char *s)
{
	return onb_name_valid(s, ONB_ID_MAX, "._:-");
}
