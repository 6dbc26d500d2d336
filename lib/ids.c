#include "onb/ids.h"

#include <string.h>

bool onb_id_valid(const char *s)
{
	size_t n = 0;

	if(!s) return false;
	for(; s[n]; n++){
		unsigned char c = (unsigned char)s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			|| c == '.' || c == '_' || c == ':' || c == '-';
		if(!ok || n >= ONB_ID_MAX) return false;
	}
	return n > 0;
}
