/* Connecting to Redis: URL parsing, timeouts, authentication.
 *
 * Accepted URLs (no percent-decoding, so '%' is refused rather than guessed):
 *   redis://[[user]:password@]host[:port][/db]     host may be [ipv6]
 *   unix://[[user]:password@]/path/to/socket[?db=N]
 *   redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[?db=N]
 *       (sentinels, default port 26379; the credentials are for the data nodes)
 * Error messages never echo the URL or the password, only the part that is
 * wrong when that part cannot hold a secret. */
#include "registry/redis.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define SCHEME_REDIS "redis://"
#define SCHEME_UNIX "unix://"
#define SCHEME_SENTINEL "redis-sentinel://"
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

/* host[:port] or [v6][:port] filling exactly s[0..len), into host/port. */
static int parse_hostport(const char *s, size_t len, char *host, size_t hostcap, int *port,
		int default_port, struct onb_err *err)
{
	const char *p = s, *end = s + len, *h, *h_end;
	long v;

	if(p < end && *p == '['){
		h = ++p;
		while(p < end && *p != ']'){
			if(!is_hex(*p) && *p != ':' && *p != '.'){
				return onb_fail(err, ONB_EINVAL, "bad character in IPv6 address");
			}
			p++;
		}
		if(p >= end) return onb_fail(err, ONB_EINVAL, "unterminated '[' in host");
		h_end = p++;
	}else{
		h = p;
		while(p < end && *p != ':'){
			if(!is_host_char(*p)){
				return onb_fail(err, ONB_EINVAL, "bad character in host name (0x%02x)",
						(unsigned)(unsigned char)*p);
			}
			p++;
		}
		h_end = p;
	}
	if(h_end == h) return onb_fail(err, ONB_EINVAL, "missing host");
	if(!copy_part(host, hostcap, h, (size_t)(h_end - h))){
		return onb_fail(err, ONB_EINVAL, "host name longer than %zu bytes", hostcap - 1);
	}
	*port = default_port;
	if(p < end && *p == ':'){
		p++;
		if(!parse_int(p, (size_t)(end - p), 1, 65535, &v)){
			return onb_fail(err, ONB_EINVAL, "port must be a number from 1 to 65535");
		}
		*port = (int)v;
	}else if(p < end){
		return onb_fail(err, ONB_EINVAL, "unexpected character after host");
	}
	return ONB_OK;
}

/* The query of a unix:// or redis-sentinel:// URL (after '?'): only db=N. */
static int parse_query(const char *q, struct onb_redis_cfg *cfg, struct onb_err *err)
{
	long v;

	if(strncmp(q, "db=", 3) != 0){
		return onb_fail(err, ONB_EINVAL, "the only query parameter is ?db=N");
	}
	if(!parse_int(q + 3, strlen(q + 3), 0, DB_MAX, &v)){
		return onb_fail(err, ONB_EINVAL, "database must be a number from 0 to %d", DB_MAX);
	}
	cfg->db = (int)v;
	return ONB_OK;
}

/* host[:port][/db] in s (NUL-terminated, credentials removed). */
static int parse_tcp(const char *s, struct onb_redis_cfg *cfg, struct onb_err *err)
{
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	long v;
	int r;

	r = parse_hostport(s, hlen, cfg->host, sizeof(cfg->host), &cfg->port, 6379, err);
	if(r != ONB_OK) return r;
	cfg->db = 0;
	if(slash){
		const char *db = slash + 1;
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
	return q ? parse_query(q + 1, cfg, err) : ONB_OK;
}

static bool master_name_valid(const char *s, size_t len)
{
	if(len == 0 || len > ONB_REDIS_MASTER_NAME_MAX) return false;
	for(size_t i = 0; i < len; i++){
		char c = s[i];
		if(!is_digit(c) && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z')
				&& c != '.' && c != '-' && c != '_'){
			return false;
		}
	}
	return true;
}

/* host[:port][,host[:port]...]/MASTER[?db=N] in s (credentials removed). */
static int parse_sentinel(const char *s, struct onb_redis_cfg *cfg, struct onb_err *err)
{
	const char *slash = strchr(s, '/'), *p = s, *name, *q;
	size_t nlen;
	int r;

	if(!slash) return onb_fail(err, ONB_EINVAL, "missing /MASTERNAME after the sentinel list");
	cfg->nsentinels = 0;
	while(p <= slash){
		const char *comma = memchr(p, ',', (size_t)(slash - p));
		const char *e = comma ? comma : slash;
		struct onb_redis_addr *a;

		if(cfg->nsentinels == ONB_REDIS_SENTINELS_MAX){
			return onb_fail(err, ONB_EINVAL, "more than %d sentinels", ONB_REDIS_SENTINELS_MAX);
		}
		a = &cfg->sentinel[cfg->nsentinels];
		r = parse_hostport(p, (size_t)(e - p), a->host, sizeof(a->host), &a->port,
				ONB_REDIS_SENTINEL_PORT, err);
		if(r != ONB_OK) return r;
		cfg->nsentinels++;
		p = e + 1;
	}
	name = slash + 1;
	q = strchr(name, '?');
	nlen = q ? (size_t)(q - name) : strlen(name);
	if(!master_name_valid(name, nlen)){
		return onb_fail(err, ONB_EINVAL, "master name must be 1..%d of [A-Za-z0-9._-]",
				ONB_REDIS_MASTER_NAME_MAX);
	}
	memcpy(cfg->master_name, name, nlen);
	cfg->master_name[nlen] = '\0';
	cfg->db = 0;
	return q ? parse_query(q + 1, cfg, err) : ONB_OK;
}

int onb_redis_parse_url(const char *url, struct onb_redis_cfg *out, struct onb_err *err)
{
	struct onb_redis_cfg cfg;
	const char *rest, *at;
	enum { TCP, UNIX, SENTINEL } kind;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	if(!url || !*url) return onb_fail(err, ONB_EINVAL, "empty Redis URL");
	if(!strncmp(url, SCHEME_REDIS, strlen(SCHEME_REDIS))){
		kind = TCP;
		rest = url + strlen(SCHEME_REDIS);
	}else if(!strncmp(url, SCHEME_UNIX, strlen(SCHEME_UNIX))){
		kind = UNIX;
		rest = url + strlen(SCHEME_UNIX);
	}else if(!strncmp(url, SCHEME_SENTINEL, strlen(SCHEME_SENTINEL))){
		kind = SENTINEL;
		rest = url + strlen(SCHEME_SENTINEL);
	}else if(!strncmp(url, "rediss://", 9)){
		return onb_fail(err, ONB_EINVAL, "rediss:// (TLS) is not supported by this hiredis build");
	}else{
		return onb_fail(err, ONB_EINVAL,
				"Redis URL must start with redis://, unix:// or redis-sentinel://");
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
	switch(kind){
	case TCP: r = parse_tcp(rest, &cfg, err); break;
	case UNIX: r = parse_unix(rest, &cfg, err); break;
	default: r = parse_sentinel(rest, &cfg, err); break;
	}
	if(r != ONB_OK) return r;

	/* every field but timeout_ms, which belongs to the caller (and may be
	 * unset when it sets it afterwards) */
	memcpy(out->host, cfg.host, sizeof(out->host));
	out->port = cfg.port;
	memcpy(out->unix_path, cfg.unix_path, sizeof(out->unix_path));
	out->db = cfg.db;
	memcpy(out->user, cfg.user, sizeof(out->user));
	memcpy(out->password, cfg.password, sizeof(out->password));
	memcpy(out->master_name, cfg.master_name, sizeof(out->master_name));
	out->nsentinels = cfg.nsentinels;
	memcpy(out->sentinel, cfg.sentinel, sizeof(out->sentinel));
	return ONB_OK;
}

/* Why a command got no reply, for an error line (errno as left by hiredis). */
static const char *no_reply_why(const redisContext *c)
{
	bool timeout = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
	return timeout ? "timed out" : c->err ? c->errstr : "no reply";
}

/* Checks a reply to AUTH/SELECT: a status reply, else one error line. The
 * text Redis returns for a failed AUTH does not contain the password. */
static int expect_status(redisContext *c, redisReply *r, const char *what, struct onb_err *err)
{
	int ret;

	if(!r) return onb_fail(err, ONB_EUNAVAIL, "%s: %s", what, no_reply_why(c));
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

/* A TCP (unix_path NULL) or Unix connection with tv applied to the connect
 * and to every later command. */
static redisContext *open_conn(const char *host, int port, const char *unix_path,
		const struct timeval *tv, const char *where, struct onb_err *err)
{
	redisContext *c = unix_path ? redisConnectUnixWithTimeout(unix_path, *tv)
		: redisConnectWithTimeout(host, port, *tv);

	if(!c){
		onb_fail(err, ONB_EINTERNAL, "cannot allocate a Redis context");
		return NULL;
	}
	if(c->err){
		onb_fail(err, ONB_EUNAVAIL, "cannot connect to Redis at %s: %s", where, c->errstr);
		goto fail;
	}
	if(redisSetTimeout(c, *tv) != REDIS_OK){
		onb_fail(err, ONB_EUNAVAIL, "cannot set the Redis timeout: %s", c->errstr);
		goto fail;
	}
	return c;

fail:
	redisFree(c);
	return NULL;
}

/* A host name or address as a sentinel reports it (IPv6 unbracketed). */
static bool reported_host_valid(const char *s, size_t len)
{
	if(len == 0 || len >= sizeof(((struct onb_redis_addr *)0)->host)) return false;
	for(size_t i = 0; i < len; i++){
		if(!is_host_char(s[i]) && s[i] != ':') return false;
	}
	return true;
}

/* Asks one sentinel for the current address of master `name`. */
static int ask_sentinel(const struct onb_redis_addr *sentinel, const char *name,
		const struct timeval *tv, struct onb_redis_addr *master, struct onb_err *err)
{
	const char *argv[3] = { "SENTINEL", "get-master-addr-by-name", name };
	size_t argvlen[3] = { 8, 23, strlen(name) };
	char where[300];
	redisContext *c;
	redisReply *r = NULL;
	long port;
	int ret = ONB_EUNAVAIL;

	snprintf(where, sizeof(where), "sentinel %s:%d", sentinel->host, sentinel->port);
	c = open_conn(sentinel->host, sentinel->port, NULL, tv, where, err);
	if(!c) return ONB_EUNAVAIL;
	errno = 0;
	r = redisCommandArgv(c, 3, argv, argvlen);
	if(!r){
		onb_fail(err, ONB_EUNAVAIL, "%s: %s", where, no_reply_why(c));
		goto cleanup;
	}
	if(r->type == REDIS_REPLY_NIL){
		onb_fail(err, ONB_EUNAVAIL, "%s does not know master %s", where, name);
		goto cleanup;
	}
	if(r->type == REDIS_REPLY_ERROR){
		onb_fail(err, ONB_EUNAVAIL, "%s refused: %.*s", where, (int)r->len, r->str);
		goto cleanup;
	}
	if(r->type != REDIS_REPLY_ARRAY || r->elements != 2
			|| r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING){
		onb_fail(err, ONB_EUNAVAIL, "%s: unexpected reply to get-master-addr-by-name", where);
		goto cleanup;
	}
	if(!reported_host_valid(r->element[0]->str, r->element[0]->len)
			|| !parse_int(r->element[1]->str, r->element[1]->len, 1, 65535, &port)){
		onb_fail(err, ONB_EUNAVAIL, "%s: unusable master address in its reply", where);
		goto cleanup;
	}
	memcpy(master->host, r->element[0]->str, r->element[0]->len);
	master->host[r->element[0]->len] = '\0';
	master->port = (int)port;
	ret = ONB_OK;

cleanup:
	if(r) freeReplyObject(r);
	redisFree(c);
	return ret;
}

/* ROLE must say "master": a sentinel's answer may be stale during a failover,
 * and a demoted primary accepts reads but refuses writes. */
static int expect_master(redisContext *c, const char *where, struct onb_err *err)
{
	redisReply *r;
	int ret = ONB_EUNAVAIL;

	errno = 0;
	r = redisCommand(c, "ROLE");
	if(!r) return onb_fail(err, ONB_EUNAVAIL, "ROLE at %s: %s", where, no_reply_why(c));
	if(r->type == REDIS_REPLY_ERROR){
		onb_fail(err, ONB_EUNAVAIL, "ROLE refused at %s (the Redis user needs +role): %.*s",
				where, (int)r->len, r->str);
	}else if(r->type != REDIS_REPLY_ARRAY || r->elements < 1
			|| r->element[0]->type != REDIS_REPLY_STRING){
		onb_fail(err, ONB_EUNAVAIL, "ROLE at %s: unexpected reply", where);
	}else if(strcmp(r->element[0]->str, "master") != 0){
		onb_fail(err, ONB_EUNAVAIL, "%s is a %.16s, not the master (failover in progress?)",
				where, r->element[0]->str);
	}else{
		ret = ONB_OK;
	}
	freeReplyObject(r);
	return ret;
}

redisContext *onb_redis_connect(const struct onb_redis_cfg *cfg, struct onb_err *err)
{
	struct onb_redis_addr master;
	struct timeval tv;
	redisContext *c;
	char where[700], what[800];

	if(!cfg || cfg->timeout_ms <= 0){
		onb_fail(err, ONB_EINVAL, "Redis timeout_ms must be positive");
		return NULL;
	}
	tv.tv_sec = cfg->timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(cfg->timeout_ms % 1000) * 1000;

	if(cfg->master_name[0]){
		struct onb_err last = { "no sentinel configured" };
		int i;

		/* In list order, each with the full timeout: the first that names
		 * the master wins. */
		for(i = 0; i < cfg->nsentinels && i < ONB_REDIS_SENTINELS_MAX; i++){
			if(ask_sentinel(&cfg->sentinel[i], cfg->master_name, &tv, &master, &last) == ONB_OK) break;
		}
		if(i >= cfg->nsentinels || i >= ONB_REDIS_SENTINELS_MAX){
			onb_fail(err, ONB_EUNAVAIL, "no sentinel named the master of %s (%d asked; last: %s)",
					cfg->master_name, cfg->nsentinels, last.msg);
			return NULL;
		}
		snprintf(where, sizeof(where), "%s:%d (master %s from sentinel %s:%d)", master.host,
				master.port, cfg->master_name, cfg->sentinel[i].host, cfg->sentinel[i].port);
		c = open_conn(master.host, master.port, NULL, &tv, where, err);
	}else if(cfg->unix_path[0]){
		snprintf(where, sizeof(where), "%s", cfg->unix_path);
		c = open_conn(NULL, 0, cfg->unix_path, &tv, where, err);
	}else{
		snprintf(where, sizeof(where), "%s:%d", cfg->host, cfg->port);
		c = open_conn(cfg->host, cfg->port, NULL, &tv, where, err);
	}
	if(!c) return NULL;

	if(cfg->user[0] || cfg->password[0]){
		const char *argv[3];
		size_t argvlen[3];
		int argc = 0;

		argv[argc] = "AUTH"; argvlen[argc++] = 4;
		if(cfg->user[0]){
			argv[argc] = cfg->user; argvlen[argc++] = strlen(cfg->user);
		}
		argv[argc] = cfg->password; argvlen[argc++] = strlen(cfg->password);
		snprintf(what, sizeof(what), "Redis AUTH at %s", where);
		errno = 0;
		if(expect_status(c, redisCommandArgv(c, argc, argv, argvlen), what, err) != ONB_OK) goto fail;
	}
	if(cfg->master_name[0] && expect_master(c, where, err) != ONB_OK) goto fail;
	if(cfg->db != 0){
		char db[16];
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
