/* onboardctl stats: the counters of every broker plugin and claimsvc instance
 * (docs/operations.md, "Metrics"). They publish them as retained MQTT
 * messages under $SYS/onboard/... and store the same documents in Redis
 * (lib/registry/stats.c), where this command reads them: onboardctl needs no MQTT
 * client and no service certificate for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "registry/stats.h"

static const char usage_stats[] =
	"usage: onboardctl [--redis URL] stats [--json]\n"
	"\n"
	"Prints the counters of every running broker plugin (broker/<broker id>) and\n"
	"claimsvc instance (claimsvc/<client id>): connects allowed and denied by\n"
	"reason, ACL denials by action, registry events applied and their lag,\n"
	"Redis errors, provisioning requests, renewals, rejections by errorCode.\n"
	"They publish the same documents, retained, on $SYS/onboard/broker/<id> and\n"
	"$SYS/onboard/claimsvc/<id> (readable by service identities), every\n"
	"plugin_opt_metrics_interval_s / metrics_interval_s seconds, and store them\n"
	"in the registry, from where this command reads them. A process that stops\n"
	"publishing disappears after three intervals. Counters start at zero when the\n"
	"process starts.\n"
	"\n"
	"  --json   one object: {\"broker/<id>\": {...}, \"claimsvc/<id>\": {...}}\n";

struct collect {
	cJSON *all;
	int bad;
};

static int collect_one(const char *kind, const char *id, const char *json, int64_t ttl_ms, void *arg)
{
	struct collect *c = arg;
	char name[ONB_STATS_KIND_MAX + ONB_ID_MAX + 2];
	cJSON *doc = cJSON_Parse(json);

	(void)ttl_ms;
	snprintf(name, sizeof(name), "%s/%s", kind, id);
	if(!cJSON_IsObject(doc)){
		cJSON_Delete(doc);
		c->bad++;
		return 0;
	}
	/* SCAN may return a key twice */
	if(cJSON_GetObjectItemCaseSensitive(c->all, name) || !cJSON_AddItemToObject(c->all, name, doc)){
		cJSON_Delete(doc);
	}
	return 0;
}

/* One line per number, "path.to.counter   value", for the text output. */
static void print_flat(const cJSON *o, char *path, size_t cap, size_t len)
{
	for(const cJSON *c = o->child; c; c = c->next){
		size_t n = len;
		int w = snprintf(path + len, cap - len, "%s%s", len ? "." : "", c->string ? c->string : "?");
		if(w < 0 || (size_t)w >= cap - len) continue;
		n = len + (size_t)w;
		if(cJSON_IsObject(c)){
			print_flat(c, path, cap, n);
		}else if(cJSON_IsNumber(c)){
			if(c->valuedouble == (double)(long long)c->valuedouble){
				printf("  %-40s %lld\n", path, (long long)c->valuedouble);
			}else{
				printf("  %-40s %.1f\n", path, c->valuedouble);
			}
		}else if(cJSON_IsString(c)){
			printf("  %-40s %s\n", path, c->valuestring);
		}else if(cJSON_IsBool(c)){
			printf("  %-40s %s\n", path, cJSON_IsTrue(c) ? "true" : "false");
		}
		path[len] = '\0';
	}
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	struct collect c = { 0 };
	struct onb_err err;
	const char *pos[1];
	redisContext *rc;
	int ret, npos;

	ret = cli_parse(cli, "stats", usage_stats, NULL, argc - 1, argv + 1, pos, 0, &npos);
	if(ret >= 0) return ret;
	if(!(c.all = cJSON_CreateObject())) return cli_error("out of memory");
	rc = cli_redis(cli);
	if(!rc){
		cJSON_Delete(c.all);
		return CLI_FAIL;
	}
	ret = onb_stats_list(rc, collect_one, &c, &err);
	redisFree(rc);
	if(ret < 0){
		cJSON_Delete(c.all);
		return cli_error("registry unavailable: %s", err.msg);
	}
	if(cli->json){
		return cli_print_json(c.all);
	}
	if(!c.all->child) printf("no counters: no broker plugin or claimsvc has published any (or all stopped)\n");
	for(const cJSON *src = c.all->child; src; src = src->next){
		char path[256] = "";
		printf("%s\n", src->string);
		print_flat(src, path, sizeof(path), 0);
	}
	if(c.bad) fprintf(stderr, "onboardctl: %d stored document(s) were not JSON objects\n", c.bad);
	cJSON_Delete(c.all);
	return CLI_OK;
}
