/* claimsvc.conf: "key value" lines, '#' comments, strict (docs/provisioning.md).
 * csvc_config_read does the parsing from any stream and touches nothing
 * else, so that tests and tests/fuzz/fuzz_config can feed it from memory
 * (fmemopen); csvc_config_load only opens the file. This file and log.c
 * (for csvc_level_parse) form the csvc_config library. */
#include "claimsvc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/csr.h"
#include "registry/lifecycle.h"
#include "provisioning/provreg.h"

#define LINE_MAX_LEN 4096

/* K_BROKER is the one kind that may repeat: each line adds a broker. */
enum kind { K_STRING, K_INT, K_LONG, K_BOOL, K_LEVEL, K_LISTEN, K_BROKER };

struct option {
	const char *key;
	enum kind kind;
	bool required;
	size_t off;      /* offset in struct csvc_config */
	size_t size;     /* K_STRING: buffer size */
	long min, max;   /* K_INT, K_LONG */
};

#define STR(k, field, req) { k, K_STRING, req, offsetof(struct csvc_config, field), \
	sizeof(((struct csvc_config *)0)->field), 0, 0 }
#define INT(k, field, lo, hi) { k, K_INT, false, offsetof(struct csvc_config, field), 0, lo, hi }
#define LONG(k, field, lo, hi) { k, K_LONG, false, offsetof(struct csvc_config, field), 0, lo, hi }

static const struct option options[] = {
	{ "broker", K_BROKER, false, offsetof(struct csvc_config, brokers), 0, 0, 0 },
	STR("broker_host", broker_host, false),
	INT("broker_port", broker_port, 1, 65535),
	INT("keepalive", keepalive, 5, 3600),
	STR("cafile", cafile, true),
	STR("certfile", certfile, true),
	STR("keyfile", keyfile, true),
	STR("client_id", client_id, false),
	STR("device_ca_cert", device_ca_cert, true),
	STR("device_ca_key", device_ca_key, true),
	STR("redis_url", redis_url, false),
	INT("redis_timeout_ms", redis_timeout_ms, 10, 60000),
	STR("templates_dir", templates_dir, true),
	INT("token_ttl", token_ttl, 60, ONB_TOKEN_TTL_MAX),
	INT("cert_validity_days", cert_validity_days, 1, ONB_CERT_DAYS_MAX),
	{ "create_keys_enabled", K_BOOL, false, offsetof(struct csvc_config, create_keys_enabled), 0, 0, 0 },
	{ "reply_chain", K_BOOL, false, offsetof(struct csvc_config, reply_chain), 0, 0, 0 },
	INT("rate_window_ms", rate_window_ms, 100, 3600000),
	LONG("rate_per_client", rate_per_client, 0, 1000000000L),
	LONG("rate_per_requester", rate_per_requester, 0, 1000000000L),
	LONG("rate_global", rate_global, 0, 1000000000L),
	INT("claim_max_failures", claim_max_failures, 1, 1000),
	LONG("claim_window_ms", claim_window_ms, 1, 86400000L),
	LONG("claim_lockout_ms", claim_lockout_ms, 1, 7 * 86400000L),
	INT("rotation_grace", rotation_grace, 60, ONB_ROTATION_GRACE_MAX_S),
	STR("pkcs11_module", pkcs11_module, false),
	INT("metrics_interval_s", metrics_interval_s, 0, 3600),
	INT("audit_window_s", audit_window_s, 1, 3600),
	INT("audit_retention_days", audit_retention_days, 1, 3650),
	{ "http_listen", K_LISTEN, false, offsetof(struct csvc_config, http_listen), 0, 0, 0 },
	{ "log_level", K_LEVEL, false, offsetof(struct csvc_config, log_level), 0, 0, 0 },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void defaults(struct csvc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->broker_host, sizeof(cfg->broker_host), "127.0.0.1");
	cfg->broker_port = 8883;
	cfg->keepalive = 30;
	snprintf(cfg->redis_url, sizeof(cfg->redis_url), "%s", ONB_REDIS_DEFAULT_URL);
	cfg->redis_timeout_ms = 500;
	cfg->token_ttl = 3600;
	cfg->cert_validity_days = ONB_CERT_DEFAULT_DAYS;
	cfg->create_keys_enabled = false;
	cfg->reply_chain = false;
	cfg->rate_window_ms = 1000;
	cfg->rate_per_client = 20;
	cfg->rate_per_requester = 5000;
	cfg->rate_global = 20000;
	cfg->claim_max_failures = onb_claim_limits_default.max_failures;
	cfg->claim_window_ms = (long)onb_claim_limits_default.window_ms;
	cfg->claim_lockout_ms = (long)onb_claim_limits_default.lockout_ms;
	cfg->rotation_grace = ONB_ROTATION_GRACE_DEFAULT_S;
	cfg->metrics_interval_s = 10;
	cfg->audit_window_s = 60;
	cfg->audit_retention_days = ONB_AUDIT_RETENTION_DAYS;
	cfg->log_level = CSVC_INFO;
	csvc_listen_parse(CSVC_HTTP_DEFAULT_LISTEN, &cfg->http_listen, NULL);
}

/* Strict decimal: the whole value, no sign games, within [min, max]. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	if(!*s || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9'))) return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if(errno != 0 || !end || *end != '\0' || v < min || v > max) return false;
	*out = v;
	return true;
}

/* Appends one "broker" line's broker; the same broker twice is an error
 * (it would be served twice, by one client id, on two connections the
 * broker would take for one client reconnecting). */
static int add_broker(struct csvc_config *cfg, const char *value, const char *path, int lineno,
		struct onb_err *err)
{
	struct csvc_broker b;
	struct onb_err e2;

	if(csvc_broker_parse(value, &b, &e2) != ONB_OK){
		return onb_fail(err, ONB_EINVAL, "%s:%d: broker: %s", path, lineno, e2.msg);
	}
	for(size_t i = 0; i < cfg->nbrokers; i++){
		if(cfg->brokers[i].port == b.port && !strcmp(cfg->brokers[i].host, b.host)){
			return onb_fail(err, ONB_EINVAL, "%s:%d: broker %s is listed twice", path, lineno, value);
		}
	}
	if(cfg->nbrokers == CSVC_BROKERS_MAX){
		return onb_fail(err, ONB_EINVAL, "%s:%d: more than %d broker lines", path, lineno, CSVC_BROKERS_MAX);
	}
	cfg->brokers[cfg->nbrokers++] = b;
	return ONB_OK;
}

static int set_value(struct csvc_config *cfg, const struct option *o, const char *value,
		const char *path, int lineno, struct onb_err *err)
{
	char *base = (char *)cfg + o->off;
	size_t n = strlen(value);
	struct onb_err e2;
	long v;
	int lvl;

	switch(o->kind){
	case K_STRING:
		if(n >= o->size){
			return onb_fail(err, ONB_EINVAL, "%s:%d: %s is longer than %zu bytes", path, lineno,
					o->key, o->size - 1);
		}
		memcpy(base, value, n + 1);
		return ONB_OK;
	case K_INT:
	case K_LONG:
		if(!parse_long(value, o->min, o->max, &v)){
			return onb_fail(err, ONB_EINVAL, "%s:%d: %s must be an integer %ld..%ld", path, lineno,
					o->key, o->min, o->max);
		}
		if(o->kind == K_INT) *(int *)(void *)base = (int)v;
		else *(long *)(void *)base = v;
		return ONB_OK;
	case K_BOOL:
		if(!strcmp(value, "true")){
			*(bool *)(void *)base = true;
		}else if(!strcmp(value, "false")){
			*(bool *)(void *)base = false;
		}else{
			return onb_fail(err, ONB_EINVAL, "%s:%d: %s must be true or false", path, lineno, o->key);
		}
		return ONB_OK;
	case K_LISTEN:
		if(csvc_listen_parse(value, (struct csvc_listen *)(void *)base, &e2) != ONB_OK){
			return onb_fail(err, ONB_EINVAL, "%s:%d: %s: %s", path, lineno, o->key, e2.msg);
		}
		return ONB_OK;
	case K_BROKER:
		return add_broker(cfg, value, path, lineno, err);
	case K_LEVEL:
		lvl = csvc_level_parse(value);
		if(lvl < 0){
			return onb_fail(err, ONB_EINVAL, "%s:%d: log_level must be error, warning, info or debug",
					path, lineno);
		}
		*(enum csvc_level *)(void *)base = (enum csvc_level)lvl;
		return ONB_OK;
	}
	return onb_fail(err, ONB_EINTERNAL, "config: unknown option kind");
}

int csvc_listen_parse(const char *spec, struct csvc_listen *out, struct onb_err *err)
{
	struct csvc_listen l;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t hlen;
	long port;

	memset(&l, 0, sizeof(l));
	if(!spec || strlen(spec) >= sizeof(l.text)) return onb_fail(err, ONB_EINVAL, "expected ADDRESS:PORT or off");
	snprintf(l.text, sizeof(l.text), "%s", spec);
	if(!strcmp(spec, "off")){
		*out = l;
		return ONB_OK;
	}
	if(spec[0] == '['){
		const char *close = strchr(spec, ']');
		if(!close || close[1] != ':') return onb_fail(err, ONB_EINVAL, "expected [IPv6]:PORT");
		hlen = (size_t)(close - spec - 1);
		colon = close + 1;
		spec++;
		l.family = AF_INET6;
	}else{
		colon = strrchr(spec, ':');
		if(!colon) return onb_fail(err, ONB_EINVAL, "expected ADDRESS:PORT or off");
		hlen = (size_t)(colon - spec);
		l.family = AF_INET;
	}
	if(hlen == 0 || hlen >= sizeof(host)) return onb_fail(err, ONB_EINVAL, "expected a numeric address");
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if(inet_pton(l.family, host, l.addr) != 1){
		return onb_fail(err, ONB_EINVAL, "\"%s\" is not a numeric %s address", host,
				l.family == AF_INET ? "IPv4" : "IPv6");
	}
	if(!parse_long(colon + 1, 1, 65535, &port)) return onb_fail(err, ONB_EINVAL, "the port must be 1..65535");
	l.port = (int)port;
	l.enabled = true;
	*out = l;
	return ONB_OK;
}

/* A host name or address as a "broker" line may give it: what a DNS name or
 * an IPv4 address is made of; inside brackets, what an IPv6 address is. */
static bool host_char(char c, bool v6)
{
	if((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) return true;
	if(v6) return c == ':' || c == '.';
	return (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '.' || c == '-' || c == '_';
}

int csvc_broker_parse(const char *spec, struct csvc_broker *out, struct onb_err *err)
{
	struct csvc_broker b;
	const char *host, *colon;
	size_t hlen;
	long port;
	bool v6;

	memset(&b, 0, sizeof(b));
	if(!spec) return onb_fail(err, ONB_EINVAL, "expected HOST:PORT");
	v6 = spec[0] == '[';
	if(v6){
		const char *close = strchr(spec, ']');
		if(!close || close[1] != ':') return onb_fail(err, ONB_EINVAL, "expected [IPv6]:PORT");
		host = spec + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	}else{
		colon = strrchr(spec, ':');
		if(!colon) return onb_fail(err, ONB_EINVAL, "expected HOST:PORT");
		host = spec;
		hlen = (size_t)(colon - spec);
	}
	if(hlen == 0 || hlen >= sizeof(b.host)) return onb_fail(err, ONB_EINVAL, "the host is empty or too long");
	for(size_t i = 0; i < hlen; i++){
		if(!host_char(host[i], v6)){
			return onb_fail(err, ONB_EINVAL, "the host \"%.*s\" holds a character not allowed in a %s",
					(int)hlen, host, v6 ? "bracketed IPv6 address" : "host name or IPv4 address");
		}
	}
	if(!parse_long(colon + 1, 1, 65535, &port)) return onb_fail(err, ONB_EINVAL, "the port must be 1..65535");
	memcpy(b.host, host, hlen);
	b.port = (int)port;
	*out = b;
	return ONB_OK;
}

void csvc_broker_format(const struct csvc_broker *b, char *buf, size_t size)
{
	snprintf(buf, size, strchr(b->host, ':') ? "[%s]:%d" : "%s:%d", b->host, b->port);
}

/* Splits a line in place into key and value; false for a blank or comment line. */
static bool split_line(char *line, char **key, char **value)
{
	char *p = line, *end;

	while(*p == ' ' || *p == '\t') p++;
	if(*p == '\0' || *p == '#') return false;
	*key = p;
	while(*p && *p != ' ' && *p != '\t') p++;
	if(*p) *p++ = '\0';
	while(*p == ' ' || *p == '\t') p++;
	*value = p;
	end = p + strlen(p);
	while(end > p && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
	return true;
}

/* fgets with a count: reads up to and including the next '\n', at most
 * cap - 1 bytes, NUL-terminates, and returns how many bytes it read (0 at
 * the end). The count is what lets a NUL byte inside a line be seen: with
 * fgets, strlen stops at it and the rest of a last line vanished unread. */
static size_t read_line(FILE *f, char *buf, size_t cap)
{
	size_t n = 0;
	int c;

	while(n + 1 < cap && (c = getc(f)) != EOF){
		buf[n++] = (char)c;
		if(c == '\n') break;
	}
	buf[n] = '\0';
	return n;
}

static bool seen_key(const bool *seen, const char *key)
{
	for(size_t i = 0; i < NOPTIONS; i++){
		if(!strcmp(options[i].key, key)) return seen[i];
	}
	return false;
}

/* The broker list: the "broker" lines, or else the one broker of
 * broker_host + broker_port (their defaults when unset, as before the list
 * existed). Both forms at once would leave it unclear which is meant. */
static int settle_brokers(struct csvc_config *cfg, const bool *seen, const char *path, struct onb_err *err)
{
	if(cfg->nbrokers > 0){
		if(seen_key(seen, "broker_host") || seen_key(seen, "broker_port")){
			return onb_fail(err, ONB_EINVAL, "%s: broker lines and broker_host/broker_port are two ways to "
					"name the brokers: use broker lines only", path);
		}
		/* the one-broker fields name the first broker, for code that shows one */
		snprintf(cfg->broker_host, sizeof(cfg->broker_host), "%s", cfg->brokers[0].host);
		cfg->broker_port = cfg->brokers[0].port;
		return ONB_OK;
	}
	snprintf(cfg->brokers[0].host, sizeof(cfg->brokers[0].host), "%s", cfg->broker_host);
	cfg->brokers[0].port = cfg->broker_port;
	cfg->nbrokers = 1;
	return ONB_OK;
}

int csvc_config_read(FILE *f, const char *path, struct csvc_config *out, struct onb_err *err)
{
	int ret = ONB_OK, lineno = 0;
	bool seen[NOPTIONS] = { false };
	struct csvc_config cfg;
	char line[LINE_MAX_LEN + 2];
	size_t n;

	if(!f || !path || !out) return onb_fail(err, ONB_EINVAL, "no config file given");
	defaults(&cfg);
	while((n = read_line(f, line, sizeof(line))) > 0){
		char *key, *value;
		size_t i;

		lineno++;
		if(n > 0 && line[n - 1] == '\n'){
			line[--n] = '\0';
		}else if(!feof(f)){
			ret = onb_fail(err, ONB_EINVAL, "%s:%d: line longer than %d bytes", path, lineno, LINE_MAX_LEN);
			goto cleanup;
		}
		if(n > 0 && line[n - 1] == '\r') line[--n] = '\0';
		if(memchr(line, '\0', n)){
			ret = onb_fail(err, ONB_EINVAL, "%s:%d: NUL byte", path, lineno);
			goto cleanup;
		}
		if(!split_line(line, &key, &value)) continue;
		for(i = 0; i < NOPTIONS && strcmp(options[i].key, key) != 0; i++){
		}
		if(i == NOPTIONS){
			ret = onb_fail(err, ONB_EINVAL, "%s:%d: unknown key \"%.64s\"", path, lineno, key);
			goto cleanup;
		}
		if(seen[i] && options[i].kind != K_BROKER){
			ret = onb_fail(err, ONB_EINVAL, "%s:%d: %s is set twice", path, lineno, key);
			goto cleanup;
		}
		if(!*value){
			ret = onb_fail(err, ONB_EINVAL, "%s:%d: %s has no value", path, lineno, key);
			goto cleanup;
		}
		seen[i] = true;
		ret = set_value(&cfg, &options[i], value, path, lineno, err);
		if(ret != ONB_OK) goto cleanup;
	}
	if(ferror(f)){
		ret = onb_fail(err, ONB_EUNAVAIL, "cannot read %s", path);
		goto cleanup;
	}
	for(size_t i = 0; i < NOPTIONS; i++){
		if(options[i].required && !seen[i]){
			ret = onb_fail(err, ONB_EINVAL, "%s: required key %s is missing", path, options[i].key);
			goto cleanup;
		}
	}
	ret = settle_brokers(&cfg, seen, path, err);
	if(ret != ONB_OK) goto cleanup;
	if(cfg.client_id[0] && !onb_id_valid(cfg.client_id)){
		ret = onb_fail(err, ONB_EINVAL, "%s: client_id must match [A-Za-z0-9._:-]{1,%d}", path, ONB_ID_MAX);
		goto cleanup;
	}
	*out = cfg;
cleanup:
	return ret;
}

int csvc_config_load(const char *path, struct csvc_config *out, struct onb_err *err)
{
	FILE *f;
	int ret;

	if(!path || !out) return onb_fail(err, ONB_EINVAL, "no config file given");
	f = fopen(path, "r");
	if(!f) return onb_fail(err, ONB_EUNAVAIL, "cannot open %s: %s", path, strerror(errno));
	ret = csvc_config_read(f, path, out, err);
	fclose(f);
	return ret;
}
