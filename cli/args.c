/* A small option parser for onboardctl commands (cli.h: cli_parse). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <openssl/crypto.h>

#include "cli.h"

const char *cli_shown(const char *s, char *buf, size_t len)
{
	size_t i = 0, n = 0;

	for(; s[i] && n + 4 < len && i < 64; i++){
		unsigned char c = (unsigned char)s[i];
		buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if(s[i]){
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* ms (or s with is_ms false) since the epoch as ISO 8601 UTC; "-" for 0. */
const char *cli_iso_time(int64_t t, bool is_ms, char *buf, size_t len)
{
	struct tm tm;
	time_t s = (time_t)(is_ms ? t / 1000 : t);
	char base[32];

	if(t <= 0 || !gmtime_r(&s, &tm) || !strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm)){
		snprintf(buf, len, "-");
	}else if(is_ms){
		snprintf(buf, len, "%s.%03dZ", base, (int)(t % 1000));
	}else{
		snprintf(buf, len, "%sZ", base);
	}
	return buf;
}

bool cli_int(const char *s, int min, int max, int *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if(end == s || *end != '\0' || errno == ERANGE || v < min || v > max) return false;
	*out = (int)v;
	return true;
}

int cli_print_json(cJSON *v)
{
	char *s = v ? cJSON_PrintUnformatted(v) : NULL;

	cJSON_Delete(v);
	if(!s) return cli_error("out of memory");
	puts(s);
	/* some carry secrets (a claim code): not left in freed memory */
	OPENSSL_cleanse(s, strlen(s));
	cJSON_free(s);
	return CLI_OK;
}

int cli_parse(struct cli *cli, const char *cmd, const char *usage, const struct cli_opt *opts,
		int argc, char **argv, const char **pos, int maxpos, int *npos)
{
	bool only_pos = false;
	char b[80];

	*npos = 0;
	for(int i = 0; i < argc; i++){
		const char *arg = argv[i], *eq, *val;
		const struct cli_opt *o = NULL;
		size_t nlen;

		if(only_pos || arg[0] != '-' || !arg[1]){
			if(*npos >= maxpos) return cli_usage_error("%s: unexpected argument '%s'", cmd, cli_shown(arg, b, sizeof(b)));
			pos[(*npos)++] = arg;
			continue;
		}
		if(!strcmp(arg, "--")){
			only_pos = true;
			continue;
		}
		if(!strcmp(arg, "--help") || !strcmp(arg, "-h")){
			fputs(usage, stdout);
			return CLI_OK;
		}
		if(!strcmp(arg, "--json")){
			cli->json = true;
			continue;
		}
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		for(const struct cli_opt *k = opts; k && k->name; k++){
			if(strlen(k->name) == nlen && !strncmp(arg, k->name, nlen)) o = k;
		}
		if(!o) return cli_usage_error("%s: unknown option '%s'", cmd, cli_shown(arg, b, sizeof(b)));
		if(o->flag){
			if(eq) return cli_usage_error("%s: %s takes no value", cmd, o->name);
			*o->flag = true;
			continue;
		}
		if(eq){
			val = eq + 1;
		}else{
			if(i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-')){
				return cli_usage_error("%s: %s needs a value", cmd, o->name);
			}
			val = argv[++i];
		}
		if(o->each){
			int ret = o->each(cmd, val, o->arg);
			if(ret != CLI_OK) return ret;
			continue;
		}
		if(*o->value) return cli_usage_error("%s: %s given twice", cmd, o->name);
		*o->value = val;
	}
	return -1;
}

int cli_dispatch(struct cli *cli, const char *domain, const char *usage, const struct cli_cmd *cmds,
		size_t ncmds, int argc, char **argv)
{
	char b[80];
	int i = 1;

	for(; i < argc && argv[i][0] == '-'; i++){
		if(!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")){
			fputs(usage, stdout);
			return CLI_OK;
		}else if(!strcmp(argv[i], "--json")){
			cli->json = true;
		}else{
			return cli_usage_error("%s: unknown option '%s'", domain, cli_shown(argv[i], b, sizeof(b)));
		}
	}
	if(i >= argc){
		fputs(usage, stderr);
		return CLI_USAGE;
	}
	for(size_t c = 0; c < ncmds; c++){
		if(!strcmp(argv[i], cmds[c].name)) return cmds[c].run(cli, argc - i - 1, argv + i + 1);
	}
	return cli_usage_error("%s: unknown command '%s'", domain, cli_shown(argv[i], b, sizeof(b)));
}
