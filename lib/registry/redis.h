/* Connecting to Redis: URL parsing, timeouts, authentication.
 * Values always go to Redis as separate arguments (redisCommandArgv or %s/%b),
 * never spliced into a command string. */
#ifndef ONB_REDIS_H
#define ONB_REDIS_H

#include <hiredis/hiredis.h>

#include "core/common.h"

#define ONB_REDIS_DEFAULT_URL "redis://127.0.0.1:6379/0"
#define ONB_REDIS_SENTINELS_MAX 8
#define ONB_REDIS_MASTER_NAME_MAX 64
#define ONB_REDIS_SENTINEL_PORT 26379

struct onb_redis_addr {
	char host[256];
	int port;
};

struct onb_redis_cfg {
	char host[256];       /* unused with Sentinel: asked of the sentinels at each connect */
	int port;
	char unix_path[108];  /* non-empty: connect to this Unix socket instead */
	int db;
	char user[128];       /* ACL user, empty for the default user */
	char password[256];   /* empty: no AUTH */
	int timeout_ms;       /* connect and every command; default 50 in the plugin */
	/* Sentinel discovery (redis-sentinel://): non-empty master_name */
	char master_name[ONB_REDIS_MASTER_NAME_MAX + 1];
	int nsentinels;
	struct onb_redis_addr sentinel[ONB_REDIS_SENTINELS_MAX];
};

/* Parses redis://[[user]:password@]host[:port][/db],
 * unix://[[user]:password@]/path/to/socket[?db=N] or
 * redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[?db=N]
 * (docs/registry.md). timeout_ms is left untouched; out only on success. */
int onb_redis_parse_url(const char *url, struct onb_redis_cfg *out, struct onb_err *err);

/* Connects with cfg->timeout_ms applied to connect and to every later
 * command, then AUTH and SELECT. With Sentinel (cfg->master_name set) it first
 * asks each sentinel in turn for MASTER's address and, after AUTH, refuses
 * the node unless ROLE says master. Caller frees with redisFree. NULL on error. */
redisContext *onb_redis_connect(const struct onb_redis_cfg *cfg, struct onb_err *err);

#endif
