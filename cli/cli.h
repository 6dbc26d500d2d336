/* onboardctl: one file per domain (cmd_pki.c, cmd_device.c, ...) behind the
 * small dispatcher in main.c. A command prints its result on stdout and, on
 * failure, exactly one line "onboardctl: ..." on stderr, then returns non-zero. */
#ifndef ONB_CLI_H
#define ONB_CLI_H

#include <stdbool.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "registry/registry.h"

struct cli {
	const char *redis_url; /* --redis, else $ONBOARD_REDIS_URL, else the default */
	bool json;             /* --json: read commands print JSON */
	char actor[160];       /* "cli:<user>@<host>" for the audit stream */
};

/* Exit codes. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "onboardctl: <msg>" on stderr, with a hint to --help when code is
 * CLI_USAGE, and returns code. Called through the two macros below. */
int cli_report(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "onboardctl: <msg>" on stderr and returns CLI_FAIL. */
#define cli_error(...) cli_report(CLI_FAIL, __VA_ARGS__)
/* Prints "onboardctl: <msg>" and a hint to --help on stderr; returns CLI_USAGE. */
#define cli_usage_error(...) cli_report(CLI_USAGE, __VA_ARGS__)

/* The error line of a lib call that failed with ret: err's message, named
 * as the registry's when ret is ONB_EUNAVAIL. Returns CLI_FAIL. */
int cli_fail(int ret, const struct onb_err *err);

/* Connects to the registry named by cli->redis_url. Caller frees with redisFree.
 * Prints the error and returns NULL on failure. */
redisContext *cli_redis(const struct cli *cli);

/* The actor of this invocation for audit entries. */
struct onb_actor cli_actor(const struct cli *cli);

/* One option of a command: either a value (--name VALUE or --name=VALUE,
 * stored in *value) or a flag (*flag set). A table ends with { NULL }. */
struct cli_opt {
	const char *name;
	const char **value;
	bool *flag;
	/* A repeatable option (--var A=1 --var B=2): each value is handed to
	 * each(cmd, value, arg), which returns CLI_OK or an exit code. */
	int (*each)(const char *cmd, const char *value, void *arg);
	void *arg;
};
#define CLI_VALUE(name, value) { (name), (value), NULL, NULL, NULL }
#define CLI_FLAG(name, flag) { (name), NULL, (flag), NULL, NULL }
#define CLI_EACH(name, fn, arg) { (name), NULL, NULL, (fn), (arg) }
#define CLI_END { NULL, NULL, NULL, NULL, NULL }

/* Untrusted text for an error line: at most 64 bytes of s, '?' for what is
 * not printable, "..." when cut; written into buf (len >= 8), returned. */
const char *cli_shown(const char *s, char *buf, size_t len);

/* t ms (or s with is_ms false) since the epoch as ISO 8601 UTC, with
 * milliseconds for ms; "-" for 0 or less. Written into buf, returned. */
const char *cli_iso_time(int64_t t, bool is_ms, char *buf, size_t len);

/* Parses s as a whole decimal number in min..max into *out (untouched on
 * failure). Returns false when s is anything else. */
bool cli_int(const char *s, int min, int max, int *out);

/* Prints a cJSON value on one line of stdout and frees it (NULL: out of
 * memory). Returns CLI_OK or CLI_FAIL. */
struct cJSON;
int cli_print_json(struct cJSON *v);

/* Parses a command's arguments (argv[0] is its first argument): the options
 * of opts, --json, --help (prints usage), up to maxpos positionals into pos.
 * Returns -1 to go on, else the exit code to return. */
int cli_parse(struct cli *cli, const char *cmd, const char *usage, const struct cli_opt *opts,
		int argc, char **argv, const char **pos, int maxpos, int *npos);

/* One command of a domain; run gets the arguments after the command's name. */
struct cli_cmd {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* A domain's front door (argv[0] is the domain name): --json and --help
 * before the command, then the command of cmds named next, or a usage error.
 * Returns the exit code. */
int cli_dispatch(struct cli *cli, const char *domain, const char *usage, const struct cli_cmd *cmds,
		size_t ncmds, int argc, char **argv);

/* Domains. argv[0] is the domain name ("pki"), argv[1] its subcommand. */
int cmd_pki(struct cli *cli, int argc, char **argv);
int cmd_device(struct cli *cli, int argc, char **argv);
int cmd_policy(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);
int cmd_allowlist(struct cli *cli, int argc, char **argv);
int cmd_claimcode(struct cli *cli, int argc, char **argv);  /* cmd_claimcode.c */
int cmd_claim(struct cli *cli, int argc, char **argv);      /* cmd_claim.c */
int cmd_stats(struct cli *cli, int argc, char **argv);      /* cmd_stats.c */
int cmd_crl(struct cli *cli, int argc, char **argv);        /* cmd_crl.c */
int cmd_template(struct cli *cli, int argc, char **argv);   /* cmd_template.c */
/* device release / transfer (cmd_device_tenant.c); argv[0] is their first argument */
int cmd_device_release(struct cli *cli, int argc, char **argv);
int cmd_device_transfer(struct cli *cli, int argc, char **argv);

#endif
