/* onboardctl: admin CLI for mosquitto-onboard. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <unistd.h>

#include "cli.h"
#include "registry/redis.h"
#include "registry/registry.h"

static const struct {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary;
} domains[] = {
	{ "pki", cmd_pki, "development PKI: init, issue, fingerprint" },
	{ "device", cmd_device, "registry: register, show, list, revoke, quarantine, activate, release, transfer,\n"
		"             rotate, decommission" },
	{ "policy", cmd_policy, "policies: put, get, list, delete, init, assign, test" },
	{ "audit", cmd_audit, "the audit trail: filter by device and time, follow" },
	{ "allowlist", cmd_allowlist, "manufacturing allowlist: import a CSV of serials" },
	{ "claimcode", cmd_claimcode, "claim codes and QR labels: issue (one or a batch), show, revoke, unlock" },
	{ "claim", cmd_claim, "redeem a claim code for a tenant" },
	{ "stats", cmd_stats, "counters of the broker plugins and claimsvc instances" },
	{ "crl", cmd_crl, "certificate revocation list for mosquitto's crlfile: export" },
	{ "template", cmd_template, "provisioning templates: check a directory as claimsvc loads it" },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: onboardctl [--redis URL] [--json] DOMAIN COMMAND [ARGS]\n"
		"       onboardctl --version\n"
		"\n"
		"  --redis URL  registry (default $ONBOARD_REDIS_URL, else " ONB_REDIS_DEFAULT_URL ")\n"
		"               redis://[[user]:password@]host[:port][/db], unix:///path[?db=N] or\n"
		"               redis-sentinel://[[user]:password@]host[:port][,...]/MASTER[?db=N]\n"
		"  --json       print read results as JSON\n"
		"\n"
		"The audit entries it writes trim onb:audit to $ONBOARD_AUDIT_RETENTION_DAYS\n"
		"(default 30), as the plugin and claimsvc do to theirs: set the same value everywhere.\n"
		"\n"
		"domains:\n");
	for(size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++){
		fprintf(out, "  %-10s %s\n", domains[i].name, domains[i].summary);
	}
	fprintf(out, "\n'onboardctl DOMAIN --help' lists a domain's commands.\n"
		"Exit status: 0 success, 1 failure (one line on stderr), 2 usage error\n"
		"(an unknown domain, command or option, a missing argument, a bad --redis URL).\n");
}

int cli_report(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("onboardctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(code == CLI_USAGE ? " (see --help)\n" : "\n", stderr);
	return code;
}

int cli_fail(int ret, const struct onb_err *err)
{
	return cli_error("%s%s", ret == ONB_EUNAVAIL ? "registry unavailable: " : "", err->msg);
}

redisContext *cli_redis(const struct cli *cli)
{
	struct onb_redis_cfg cfg;
	struct onb_err err;
	redisContext *rc;

	if(onb_redis_parse_url(cli->redis_url, &cfg, &err) != ONB_OK){
		cli_error("bad Redis URL: %s", err.msg);
		return NULL;
	}
	cfg.timeout_ms = 5000;
	rc = onb_redis_connect(&cfg, &err);
	if(!rc) cli_error("registry unavailable: %s", err.msg);
	return rc;
}

struct onb_actor cli_actor(const struct cli *cli)
{
	struct onb_actor a = { .who = cli->actor, .source = "cli" };
	return a;
}

static void set_actor(struct cli *cli)
{
	char host[64] = "localhost";
	const char *user = getenv("SUDO_USER");

	if(!user) user = getenv("USER");
	if(!user){
		const struct passwd *pw = getpwuid(getuid());
		user = pw ? pw->pw_name : "unknown";
	}
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(cli->actor, sizeof(cli->actor), "cli:%s@%s", user, host);
}

/* The exit status once the command has run: output that could not be
 * written (a full disk, a reader that went away) is a failure, never a
 * silent success. A reader that stopped early (`| head`) gets no error line. */
static int finish(int ret)
{
	if(fflush(stdout) == 0 && !ferror(stdout)) return ret;
	if(errno != EPIPE) cli_error("cannot write the output: %s", strerror(errno));
	return ret == CLI_OK ? CLI_FAIL : ret;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct onb_redis_cfg url;
	struct onb_err err;
	int i = 1;

	const char *retention = getenv("ONBOARD_AUDIT_RETENTION_DAYS");

	cli.redis_url = getenv("ONBOARD_REDIS_URL");
	if(!cli.redis_url || !*cli.redis_url) cli.redis_url = ONB_REDIS_DEFAULT_URL;
	if(retention && *retention && onb_audit_set_retention_days(atoi(retention)) != ONB_OK){
		return cli_usage_error("ONBOARD_AUDIT_RETENTION_DAYS must be 1..3650");
	}
	set_actor(&cli);
	/* hiredis writes with write(2): a Redis that goes away mid-command must
	 * give an error line, not a silent death by SIGPIPE; so must a closed
	 * stdout (finish). */
	signal(SIGPIPE, SIG_IGN);

	for(; i < argc && argv[i][0] == '-'; i++){
		if(!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")){
			usage(stdout);
			return CLI_OK;
		}else if(!strcmp(argv[i], "--version")){
			printf("onboardctl (mosquitto-onboard) %s\n", ONB_VERSION);
			return finish(CLI_OK);
		}else if(!strcmp(argv[i], "--json")){
			cli.json = true;
		}else if(!strcmp(argv[i], "--redis") && i + 1 < argc){
			cli.redis_url = argv[++i];
			if(onb_redis_parse_url(cli.redis_url, &url, &err) != ONB_OK){
				return cli_usage_error("bad --redis URL: %s", err.msg);
			}
		}else if(!strcmp(argv[i], "--redis")){
			return cli_usage_error("--redis needs a URL");
		}else{
			return cli_usage_error("unknown option '%s'", argv[i]);
		}
	}
	if(i >= argc){
		usage(stderr);
		return CLI_USAGE;
	}
	for(size_t d = 0; d < sizeof(domains) / sizeof(domains[0]); d++){
		if(!strcmp(argv[i], domains[d].name)){
			return finish(domains[d].run(&cli, argc - i, argv + i));
		}
	}
	return cli_usage_error("unknown domain '%s'", argv[i]);
}
