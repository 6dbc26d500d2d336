/* Connecting to Redis: URL parsing, timeouts, authentication.
 *
 * Accepted URLs (no percent-decoding, so '%' is refused rather than guessed):
 *   redis://[[user]:password@]host[:port][/db]     host may be [ipv6]
 *   unix://[[user]:password@]/path/to/socket[?db=N]
 * Error messages never echo the URL or the password, only the part that is
 * wrong when that part cannot hold a secret. */
#include "onb/redis.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define SCHEME_REDIS "redis://"
#define SCHEME_UNIX "unix://"
#define DB_MAX 15

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)
		|| c == '.' || c == '-' || c == '_';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Parses the decimal integer s[0..len) into [min, max] with strtol and an end
 * pointer; no sign, no blanks, no trailing bytes. */
static bool parse_int(const char *s, size_t len, long min, long max, long *out)
{
	char buf[16];
	char *end;
	long v;

	if(len == 0 || len >= sizeof(buf)) return false;
	for(size_t i = 0; i < len; i++){
		if(!is_digit(s[i])) return false;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if(errno != 0 || end != buf + len || v < min || v > max) return false;
	*out = v;
	return true;
}

/* Copies s[0..len) into dst (capacity cap, NUL included). */
static bool copy_part(char *dst, size_t cap, const char *s, size_t len)
{
	if(len >= cap) return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

/* "[user]:password" in s[0..len). The password may hold any printable byte
 * but '@' (checked by the caller); the user may not hold ':'. */
static int parse_userinfo(const char *s, size_t len, struct onb_redis_cfg *cfg, struct onb_err *err)
{
	const char *colon = memchr(s, ':', len);
	size_t ulen, plen;

	if(!colon){
		return onb_fail(err, ONB_EINVAL, "credentials must be written [user]:password@ "
				"(a user without a password is ambiguous)");
	}
	ulen = (size_t)(colon - s);
	plen = len - ulen - 1;
	for(size_t i = 0; i < ulen; i++){
		if(strchr("/?#[]", s[i])){
			return onb_fail(err, ONB_EINVAL, "'%c' in the user name is ambiguous", s[i]);
		}
	}
	if(!copy_part(cfg->user, sizeof(cfg->user), s, ulen)){
		return onb_fail(err, ONB_EINVAL, "user name longer than %zu bytes", sizeof(cfg->user) - 1);
	}
	if(!copy_part(cfg->password, sizeof(cfg->password), colon + 1, plen)){
		return onb_fail(err, ONB_EINVAL, "password longer than %zu bytes", sizeof(cfg->password) - 1);
	}
	if(plen == 0 && ulen == 0){
		return onb_fail(err, ONB_EINVAL, "empty credentials before '@'");
	}
	return ONB_OK;
}

/* host[:port][/db] or [v6]:port... in s (NUL-terminated, credentials removed). */
static int parse_tcp(const char *s, struct onb_redis_cfg *cfg, struct onb_err *err)
{
	const char *p = s, *host, *host_end;
	long v;

	if(*p == '['){
		host = ++p;
		while(*p && *p != ']'){
			if(!is_hex(*p) && *p != ':' && *p != '.'){
				return onb_fail(err, ONB_EINVAL, "bad character in IPv6 address");
			}
			p++;
		}
		if(*p != ']') return onb_fail(err, ONB_EINVAL, "unterminated '[' in host");
		host_end = p++;
	}else{
		host = p;
		while(*p && *p != ':' && *p != '/'){
			if(!is_host_char(*p)){
				return onb_fail(err, ONB_EINVAL, "bad character in host name (0x%02x)",
						(unsigned)(unsigned char)*p);
			}
			p++;
		}
		host_end = p;
	}
	if(host_end == host) return onb_fail(err, ONB_EINVAL, "missing host");
	if(!copy_part(cfg->host, sizeof(cfg->host), host, (size_t)(host_end - host))){
		return onb_fail(err, ONB_EINVAL, "host name longer than %zu bytes", sizeof(cfg->host) - 1);
	}

	cfg->port = 6379;
	if(*p == ':'){
		const char *port = ++p;
		while(*p && *p != '/') p++;
		if(!parse_int(port, (size_t)(p - port), 1, 65535, &v)){
			return onb_fail(err, ONB_EINVAL, "port must be a number from 1 to 65535");
		}
		cfg->port = (int)v;
	}else if(*p && *p != '/'){
		return onb_fail(err, ONB_EINVAL, "unexpected character after host");
	}

	cfg->db = 0;
	if(*p == '/'){
		const char *db = ++p;
		size_t n = strlen(db);
		/* "redis://host/" is the same as no database */
		if(n && !parse_int(db, n, 0, DB_MAX, &v)){
			return onb_fail(err, ONB_EINVAL, "database must be a number from 0 to %d", DB_MAX);
		}
		if(n) cfg->db = (int)v;
	}
	return ONB_OK;
}

/* /path[?db=N] in s (NUL-terminated, credentials removed). */
static int parse_unix(const char *s, struct onb_redis_cfg *cfg, struct onb_err *err)
{
	const char *q = strchr(s, '?');
	size_t plen = q ? (size_t)(q - s) : strlen(s);
	long v;

	if(s[0] != '/'){
		return onb_fail(err, ONB_EINVAL, "unix socket path must be absolute (unix:///path)");
	}
	if(plen < 2) return onb_fail(err, ONB_EINVAL, "missing unix socket path");
	if(memchr(s, '#', plen)) return onb_fail(err, ONB_EINVAL, "'#' in unix socket path");
	if(!copy_part(cfg->unix_path, sizeof(cfg->unix_path), s, plen)){
		return onb_fail(err, ONB_EINVAL, "unix socket path longer than %zu bytes",
				sizeof(cfg->unix_path) - 1);
	}
	cfg->db = 0;
	if(q){
		if(strncmp(q + 1, "db=", 3) != 0){
			return onb_fail(err, ONB_EINVAL, "the only query parameter is ?db=N");
		}
		if(!parse_int(q + 4, strlen(q + 4), 0, DB_MAX, &v)){
			return onb_fail(err, ONB_EINVAL, "database must be a number from 0 to %d", DB_MAX);
		}
		cfg->db = (int)v;
	}
	return ONB_OK;
}

int onb_redis_parse_url(const char *url, struct onb_redis_cfg *out, struct onb_err *err)
{
	struct onb_redis_cfg cfg;
	const char *rest, *at;
	bool is_unix;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	if(!url || !*url) return onb_fail(err, ONB_EINVAL, "empty Redis URL");
	if(!strncmp(url, SCHEME_REDIS, strlen(SCHEME_REDIS))){
		is_unix = false;
		rest = url + strlen(SCHEME_REDIS);
	}else if(!strncmp(url, SCHEME_UNIX, strlen(SCHEME_UNIX))){
		is_unix = true;
		rest = url + strlen(SCHEME_UNIX);
	}else if(!strncmp(url, "rediss://", 9)){
		return onb_fail(err, ONB_EINVAL, "rediss:// (TLS) is not supported by this hiredis build");
	}else{
		return onb_fail(err, ONB_EINVAL, "Redis URL must start with redis:// or unix://");
	}
	for(const char *p = rest; *p; p++){
		unsigned char c = (unsigned char)*p;
		if(c <= 0x20 || c == 0x7f){
			return onb_fail(err, ONB_EINVAL, "blank or control character in Redis URL");
		}
		if(c == '%'){
			return onb_fail(err, ONB_EINVAL, "percent-encoding is not supported in the Redis URL");
		}
	}

	at = strchr(rest, '@');
	if(at){
		if(strchr(at + 1, '@')){
			return onb_fail(err, ONB_EINVAL, "more than one '@' in Redis URL "
					"(a password containing '@' is not supported)");
		}
		r = parse_userinfo(rest, (size_t)(at - rest), &cfg, err);
		if(r != ONB_OK) return r;
		rest = at + 1;
	}
	r = is_unix ? parse_unix(rest, &cfg, err) : parse_tcp(rest, &cfg, err);
	if(r != ONB_OK) return r;

	/* every field but timeout_ms, which belongs to the caller */
	memcpy(out->host, cfg.host, sizeof(out->host));
	out->port = cfg.port;
	memcpy(out->unix_path, cfg.unix_path, sizeof(out->unix_path));
	out->db = cfg.db;
	memcpy(out->user, cfg.user, sizeof(out->user));
	memcpy(out->password, cfg.password, sizeof(out->password));
	return ONB_OK;
}

/* Checks a reply to AUTH/SELECT: a status reply, else one error line. The
 * text Redis returns for a failed AUTH does not contain the password. */
static int expect_status(redisContext *c, redisReply *r, const char *what, struct onb_err *err)
{
	int ret;

	if(!r){
		bool timeout = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
		return onb_fail(err, ONB_EUNAVAIL, "%s: %s", what,
				timeout ? "timed out" : c->err ? c->errstr : "no reply");
	}
	if(r->type == REDIS_REPLY_STATUS){
		ret = ONB_OK;
	}else if(r->type == REDIS_REPLY_ERROR){
		ret = onb_fail(err, ONB_EUNAVAIL, "%s refused: %.*s", what, (int)r->len, r->str);
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "%s: unexpected reply type %d", what, r->type);
	}
	freeReplyObject(r);
	return ret;
}

redisContext *onb_redis_connect(const struct onb_redis_cfg *cfg, struct onb_err *err)
{
	struct timeval tv;
	redisContext *c;
	char where[300];

	if(!cfg || cfg->timeout_ms <= 0){
		onb_fail(err, ONB_EINVAL, "Redis timeout_ms must be positive");
		return NULL;
	}
	tv.tv_sec = cfg->timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(cfg->timeout_ms % 1000) * 1000;

	if(cfg->unix_path[0]){
		snprintf(where, sizeof(where), "%s", cfg->unix_path);
		c = redisConnectUnixWithTimeout(cfg->unix_path, tv);
	}else{
		snprintf(where, sizeof(where), "%s:%d", cfg->host, cfg->port);
		c = redisConnectWithTimeout(cfg->host, cfg->port, tv);
	}
	if(!c){
		onb_fail(err, ONB_EINTERNAL, "cannot allocate a Redis context");
		return NULL;
	}
	if(c->err){
		onb_fail(err, ONB_EUNAVAIL, "cannot connect to Redis at %s: %s", where, c->errstr);
		goto fail;
	}
	if(redisSetTimeout(c, tv) != REDIS_OK){
		onb_fail(err, ONB_EUNAVAIL, "cannot set the Redis timeout: %s", c->errstr);
		goto fail;
	}

	if(cfg->user[0] || cfg->password[0]){
		const char *argv[3];
		size_t argvlen[3];
		int argc = 0;

		argv[argc] = "AUTH"; argvlen[argc++] = 4;
		if(cfg->user[0]){
			argv[argc] = cfg->user; argvlen[argc++] = strlen(cfg->user);
		}
		argv[argc] = cfg->password; argvlen[argc++] = strlen(cfg->password);
		char what[320];
		snprintf(what, sizeof(what), "Redis AUTH at %s", where);
		errno = 0;
		if(expect_status(c, redisCommandArgv(c, argc, argv, argvlen), what, err) != ONB_OK) goto fail;
	}
	if(cfg->db != 0){
		char db[16], what[320];
		const char *argv[2] = { "SELECT", db };
		size_t argvlen[2];

		snprintf(db, sizeof(db), "%d", cfg->db);
		argvlen[0] = 6;
		argvlen[1] = strlen(db);
		snprintf(what, sizeof(what), "Redis SELECT %d at %s", cfg->db, where);
		errno = 0;
		if(expect_status(c, redisCommandArgv(c, 2, argv, argvlen), what, err) != ONB_OK) goto fail;
	}
	return c;

fail:
	redisFree(c);
	return NULL;
}
