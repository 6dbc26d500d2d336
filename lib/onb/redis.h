/* Connecting to Redis: URL parsing, timeouts, authentication.
 * Values always go to Redis as separate arguments (redisCommandArgv or %s/%b),
 * never spliced into a command string. */
#ifndef ONB_REDIS_H
#define ONB_REDIS_H

#include <hiredis/hiredis.h>

#include "onb/common.h"

#define ONB_REDIS_DEFAULT_URL "redis://127.0.0.1:6379/0"

struct onb_redis_cfg {
	char host[256];
	int port;
	char unix_path[108];  /* non-empty: connect to this Unix socket instead */
	int db;
	char user[128];       /* ACL user, empty for the default user */
	char password[256];   /* empty: no AUTH */
	int timeout_ms;       /* connect and every command; default 50 in the plugin */
};

/* Parses redis://[[user]:password@]host[:port][/db] or
 * unix:///path/to/socket[?db=N]. timeout_ms is left untouched. */
int onb_redis_parse_url(const char *url, struct onb_redis_cfg *out, struct onb_err *err);

/* Connects with cfg->timeout_ms applied to connect and to every later
 * command, then AUTH and SELECT. Caller frees with redisFree. NULL on error. */
redisContext *onb_redis_connect(const struct onb_redis_cfg *cfg, struct onb_err *err);

#endif
