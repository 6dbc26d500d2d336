#include "onb/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t onb_now_ms(void) { return clock_ms(CLOCK_REALTIME); }
int64_t onb_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
