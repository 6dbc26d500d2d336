/* claimsvc logging: one line per event on stderr, with a level. */
#include "claimsvc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum csvc_level csvc_log_level = CSVC_INFO;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

int csvc_level_parse(const char *name)
{
	for(int i = 0; i <= CSVC_DEBUG; i++){
		if(!strcmp(name, level_names[i])) return i;
	}
	return -1;
}

void csvc_log(enum csvc_level level, const char *fmt, ...)
{
	char line[1024], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if(level > csvc_log_level || level < CSVC_ERROR) return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if(n < 0) return;
	/* One line: control characters from anywhere become '?'. */
	for(char *p = line; *p; p++){
		if((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) *p = '?';
	}
	fprintf(stderr, "%s.%03ldZ claimsvc[%ld] %s: %s\n", stamp, ts.tv_nsec / 1000000L,
			(long)getpid(), level_names[level], line);
}
