#include "core/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int onb_fail(struct onb_err *err, int rc, const char *fmt, ...)
{
	if(err){
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

const char *onb_rc_name(int rc)
{
	switch(rc){
	case ONB_OK: return "ok";
	case ONB_EINVAL: return "invalid";
	case ONB_ENOTFOUND: return "not-found";
	case ONB_EUNAVAIL: return "unavailable";
	case ONB_EREFUSED: return "refused";
	case ONB_EEXIST: return "exists";
	default: return "internal";
	}
}

bool onb_duration_parse(const char *s, int64_t max_ms, int64_t *ms_out)
{
	char *end;
	long long v, unit = 1000;

	if(!s || *s < '0' || *s > '9') return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if(errno != 0 || v <= 0) return false;
	if(*end){
		switch(*end){
		case 's': unit = 1000; break;
		case 'm': unit = 60LL * 1000; break;
		case 'h': unit = 3600LL * 1000; break;
		case 'd': unit = 86400LL * 1000; break;
		default: return false;
		}
		if(end[1]) return false;
	}
	if(v > max_ms / unit) return false;
	*ms_out = (int64_t)(v * unit);
	return true;
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t onb_now_ms(void) { return clock_ms(CLOCK_REALTIME); }
int64_t onb_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

uint64_t onb_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for(; *s; s++){
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

bool onb_write_all(int fd, const char *data, size_t len)
{
	while(len > 0){
		ssize_t w = write(fd, data, len);
		if(w < 0){
			if(errno == EINTR) continue;
			return false;
		}
		data += w;
		len -= (size_t)w;
	}
	return true;
}

bool onb_write_temp(char *tmpl, mode_t mode, const char *data, size_t len, bool *created)
{
	int fd = mkstemp(tmpl), e;

	*created = fd >= 0;
	if(fd < 0) return false;
	if(fchmod(fd, mode) != 0 || !onb_write_all(fd, data, len) || fsync(fd) != 0){
		e = errno;
		close(fd);
		errno = e;
	}else if(close(fd) == 0){
		return true;
	}
	e = errno;
	unlink(tmpl);
	errno = e;
	return false;
}
