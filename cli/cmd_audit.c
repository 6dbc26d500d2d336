/* onboardctl audit: the audit stream, filtered, as text or JSON lines. */
#define _XOPEN_SOURCE 700 /* strptime */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"
#include "registry/audit.h"
#include "core/ids.h"

static const char usage_audit[] =
	"usage: onboardctl [--redis URL] audit [--device ID] [--since T] [--follow] [--json] [--syslog]\n"
	"\n"
	"Prints the audit stream (onb:audit, docs/registry.md), oldest first: connects\n"
	"allowed and denied, registrations, provisioning, claims, state and policy\n"
	"changes, with who, when, from where and the result. Times (the entry's,\n"
	"ts, expires, first_seen, last_seen) are ISO 8601 UTC, in both forms.\n"
	"\n"
	"  --device ID  only entries about device ID\n"
	"  --since T    only entries from T on: 30s, 10m, 2h, 7d ago, or an ISO time\n"
	"               2026-11-23T19:00:00Z, or milliseconds since the epoch\n"
	"  --follow     keep printing new entries until interrupted\n"
	"  --json       one JSON object per line\n"
	"  --syslog     write each entry (as --json) to syslog, facility authpriv,\n"
	"               instead of stdout: with --follow, a forwarder for off-box\n"
	"               retention (config/systemd/onboard-audit.service sends --json\n"
	"               to journald)\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Parses T into milliseconds since the epoch: a duration ago (onb_duration_parse
 * without a unit means seconds, so a bare number is taken as milliseconds
 * since the epoch instead), or an ISO time. */
static int parse_since(const char *s, long long *out)
{
	char *end;
	long long v;
	int64_t ago;
	struct tm tm;

	errno = 0;
	v = strtoll(s, &end, 10);
	if(!errno && end != s && v >= 0 && !*end){
		*out = v;
		return 0;
	}
	if(onb_duration_parse(s, 3650LL * 86400000, &ago)){
		*out = (long long)(onb_now_ms() - ago);
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if(end && (!strcmp(end, "Z") || !*end)){
		*out = (long long)timegm(&tm) * 1000;
		return 0;
	}
	return -1;
}

/* The reader of stdout went away (a pipe whose other end closed): an idle
 * follow writes nothing that could fail, so it asks. SIGPIPE is ignored
 * (main.c). */
static bool stdout_gone(void)
{
	struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

	if(fflush(stdout) != 0 || ferror(stdout)) return true;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

struct filter {
	const char *device;
	bool json, syslog;
	long printed;
};

/* Fields that hold ms since the epoch (docs/registry.md): shown as ISO 8601. */
static bool is_time_field(const char *name)
{
	static const char *const names[] = { "ts", "expires", "first_seen", "last_seen" };

	for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++){
		if(!strcmp(name, names[i])) return true;
	}
	return false;
}

/* A field's value as printed: times as ISO 8601, the rest as stored. */
static const char *shown_value(const char *name, const char *value, char *buf, size_t len)
{
	char *end;
	long long ms;

	if(!is_time_field(name)) return value;
	errno = 0;
	ms = strtoll(value, &end, 10);
	if(errno || end == value || *end || ms <= 0) return value;
	return cli_iso_time(ms, true, buf, len);
}

static void print_record(const struct onb_audit_record *rec, void *arg)
{
	struct filter *f = arg;
	const char *device = onb_audit_field(rec, "device");
	char when[40], t[40];

	if(f->device && (!device || strcmp(device, f->device) != 0)) return;
	cli_iso_time(strtoll(rec->id, NULL, 10), true, when, sizeof(when));
	if(f->json || f->syslog){
		cJSON *o = cJSON_CreateObject();
		char *text;
		cJSON_AddStringToObject(o, "id", rec->id);
		cJSON_AddStringToObject(o, "time", when);
		for(size_t i = 0; i < rec->nfields; i++){
			cJSON_AddStringToObject(o, rec->name[i], shown_value(rec->name[i], rec->value[i], t, sizeof(t)));
		}
		text = cJSON_PrintUnformatted(o);
		if(text && f->syslog) syslog(LOG_NOTICE, "%s", text);
		else if(text) printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(o);
	}else{
		fputs(when, stdout);
		for(size_t i = 0; i < rec->nfields; i++){
			if(strcmp(rec->name[i], "ts") != 0){
				printf("  %s=%s", rec->name[i], shown_value(rec->name[i], rec->value[i], t, sizeof(t)));
			}
		}
		putchar('\n');
	}
	f->printed++;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
	struct filter f = { 0 };
	char last_id[ONB_STREAM_ID_MAX] = "0-0", shown[80];
	const char *since = NULL;
	bool follow = false;
	const struct cli_opt opts[] = {
		CLI_VALUE("--device", &f.device), CLI_VALUE("--since", &since),
		CLI_FLAG("--follow", &follow), CLI_FLAG("--syslog", &f.syslog),
		CLI_END,
	};
	struct onb_err err;
	redisContext *rc;
	int ret = CLI_OK, n;

	ret = cli_parse(cli, "audit", usage_audit, opts, argc - 1, argv + 1, NULL, 0, &n);
	if(ret >= 0) return ret;
	ret = CLI_OK;
	if(f.device && !onb_id_valid(f.device)) return cli_usage_error("audit: invalid device id");
	if(since){
		long long ms;
		if(parse_since(since, &ms) != 0) return cli_usage_error("audit: cannot read --since '%s'", cli_shown(since, shown, sizeof(shown)));
		snprintf(last_id, sizeof(last_id), "%lld-0", ms > 0 ? ms - 1 : 0);
	}
	f.json = cli->json;
	if(!(rc = cli_redis(cli))) return CLI_FAIL;
	if(f.syslog) openlog("onboard-audit", LOG_PID, LOG_AUTHPRIV);
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	/* History first, then (with --follow) whatever arrives. */
	while(!interrupted && !ferror(stdout)){
		n = onb_audit_read(rc, last_id, 0, 1000, print_record, &f, &err);
		if(n < 0){
			ret = cli_error("%s", err.msg);
			break;
		}
		if(n > 0) continue;
		if(!follow) break;
		if(stdout_gone()) break;
		n = onb_audit_read(rc, last_id, 1000, 1000, print_record, &f, &err);
		if(n < 0 && !interrupted){
			ret = cli_error("%s", err.msg);
			break;
		}
	}
	redisFree(rc);
	return ret;
}
