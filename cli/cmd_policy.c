/* onboardctl policy: policy documents in the registry, and asking a policy
 * what it would decide. Validation and evaluation are lib/policy/policy.c's. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "identity/binding.h"
#include "policy/policy.h"
#include "policy/policystore.h"

#ifndef ONB_POLICY_DIR
#define ONB_POLICY_DIR "policies"
#endif

static const char usage_policy[] =
	"usage: onboardctl [--redis URL] policy COMMAND [ARGS]\n"
	"\n"
	"Policy documents (docs/policies.md), stored as onb:policy:<name>.\n"
	"\n"
	"commands:\n"
	"  put NAME FILE           validate FILE and store it as NAME (live sessions\n"
	"                          holding NAME are recompiled within milliseconds)\n"
	"  get NAME                print the stored document\n"
	"  list                    print the stored policy names\n"
	"  delete NAME             delete a document (sessions holding it lose all access)\n"
	"  init [DIR]              put every DIR/*.json as its base name\n"
	"                          (default " ONB_POLICY_DIR ")\n"
	"  assign ID NAME          give device ID its own policy\n"
	"  assign ID --default     back to the default policy of its state\n"
	"  test --device ID --action A --topic T\n"
	"  test --policy FILE [--var NAME=VALUE]... --action A --topic T\n"
	"                          print allow or deny and the statement that decided;\n"
	"                          A is connect, publish, subscribe or receive\n";


static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if(!f) return cli_error("cannot open %s: %s", path, strerror(errno));
	buf = malloc(ONB_POLICY_MAX_BYTES + 2);
	if(!buf){
		fclose(f);
		return cli_error("out of memory");
	}
	n = fread(buf, 1, ONB_POLICY_MAX_BYTES + 1, f);
	fclose(f);
	if(n > ONB_POLICY_MAX_BYTES){
		free(buf);
		return cli_error("%s: larger than %d bytes", path, ONB_POLICY_MAX_BYTES);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return CLI_OK;
}

static int put_file(redisContext *rc, struct cli *cli, const char *name, const char *path)
{
	struct onb_actor actor = cli_actor(cli);
	struct onb_err err;
	char *json = NULL;
	size_t len = 0;
	int r = read_file(path, &json, &len);

	if(r != CLI_OK) return r;
	r = onb_policystore_put(rc, name, json, len, &actor, &err);
	free(json);
	if(r != ONB_OK) return cli_error("policy %s: %s", name, err.msg);
	printf("policy %s stored\n", name);
	return CLI_OK;
}

static int do_init(redisContext *rc, struct cli *cli, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = CLI_OK, count = 0;

	if(!d) return cli_error("cannot open %s: %s", dir, strerror(errno));
	while((e = readdir(d)) != NULL && ret == CLI_OK){
		size_t n = strlen(e->d_name);
		char name[ONB_NAME_MAX + 1], path[4096];
		if(n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0 || n - 5 > ONB_NAME_MAX) continue;
		memcpy(name, e->d_name, n - 5);
		name[n - 5] = '\0';
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ret = put_file(rc, cli, name, path);
		count++;
	}
	closedir(d);
	if(ret == CLI_OK && count == 0) return cli_error("no *.json policy in %s", dir);
	return ret;
}

static int print_name(const char *name, void *arg)
{
	cJSON *list = arg;
	if(list) cJSON_AddItemToArray(list, cJSON_CreateString(name));
	else printf("%s\n", name);
	return 0;
}

/* Fills vars for device id as the broker would and returns the policy name. */
static int device_context(redisContext *rc, const char *id, struct onb_device *dev,
		struct onb_policy_vars *vars, const char **name)
{
	struct onb_err err;

	if(onb_registry_device_get(rc, id, dev, &err) != ONB_OK) return cli_error("%s", err.msg);
	*name = onb_policy_for(&onb_policy_names_default, ONB_ID_DEVICE, dev->state, dev->tenant, dev->policy);
	if(!*name) return cli_error("device %s is %s: it holds no policy", id, onb_state_name(dev->state));
	vars->device_id = dev->id;
	vars->client_id = dev->id;
	vars->tenant_id = dev->tenant;
	vars->cert_fp = dev->cert_fp;
	vars->state = onb_state_name(dev->state);
	return CLI_OK;
}

/* --var NAME=VALUE, repeatable: one variable of the policy under test. */
static int add_var(const char *cmd, const char *value, void *arg)
{
	struct onb_policy_vars *vars = arg;
	char name[64];
	const char *eq = strchr(value, '=');

	if(!eq || (size_t)(eq - value) >= sizeof(name)) return cli_usage_error("%s: --var wants NAME=VALUE", cmd);
	memcpy(name, value, (size_t)(eq - value));
	name[eq - value] = '\0';
	if(onb_policy_var_set(vars, name, eq + 1) != ONB_OK) return cli_usage_error("%s: unknown variable %s", cmd, name);
	return CLI_OK;
}

static int do_test(struct cli *cli, int argc, char **argv)
{
	const char *device = NULL, *file = NULL, *action = NULL, *topic = NULL, *name = NULL;
	struct onb_policy_vars vars = { 0 };
	struct onb_policy *doc = NULL;
	struct onb_compiled *c = NULL;
	struct onb_decision d;
	struct onb_device dev;
	struct onb_err err;
	redisContext *rc = NULL;
	char *json = NULL, line[1024];
	size_t len = 0;
	int ret = CLI_FAIL, act;

	const struct cli_opt opts[] = {
		CLI_VALUE("--device", &device), CLI_VALUE("--policy", &file),
		CLI_VALUE("--action", &action), CLI_VALUE("--topic", &topic),
		CLI_EACH("--var", add_var, &vars), CLI_END,
	};
	int npos;

	ret = cli_parse(cli, "policy test", usage_policy, opts, argc - 2, argv + 2, NULL, 0, &npos);
	if(ret >= 0) return ret;
	ret = CLI_FAIL;
	if(!action || !topic || (!device == !file)){
		return cli_usage_error("policy test needs --action, --topic and one of --device or --policy");
	}
	act = onb_action_parse(action);
	if(act < 0) return cli_usage_error("policy test: unknown action %s", action);
	if(device){
		if(!(rc = cli_redis(cli))) return CLI_FAIL;
		if(device_context(rc, device, &dev, &vars, &name) != CLI_OK) goto cleanup;
		if(onb_policystore_get(rc, name, &json, &len, &err) != ONB_OK){
			cli_error("%s", err.msg);
			goto cleanup;
		}
	}else{
		name = file;
		if(read_file(file, &json, &len) != CLI_OK) goto cleanup;
	}
	if(onb_policy_parse(json, len, &doc, &err) != ONB_OK || onb_policy_compile(doc, &vars, &c, &err) != ONB_OK){
		cli_error("%s: %s", name, err.msg);
		goto cleanup;
	}
	onb_policy_allows(c, (enum onb_action)act, topic, &d);
	onb_policy_explain(doc, c, (enum onb_action)act, &d, line, sizeof(line));
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !cJSON_AddStringToObject(o, "policy", name) || !cJSON_AddStringToObject(o, "action", action)
				|| !cJSON_AddStringToObject(o, "topic", topic) || !cJSON_AddBoolToObject(o, "allowed", d.allowed)
				|| !cJSON_AddNumberToObject(o, "statement", d.stmt)
				|| !cJSON_AddStringToObject(o, "explanation", line)){
			cJSON_Delete(o);
			o = NULL;
		}
		ret = cli_print_json(o);
	}else{
		printf("%s (policy %s)\n", line, name);
		ret = CLI_OK;
	}
cleanup:
	onb_compiled_free(c);
	onb_policy_free(doc);
	free(json);
	if(rc) redisFree(rc);
	return ret;
}

/* How many positionals each command takes (min, max). */
static const struct {
	const char *name;
	int min, max;
	const char *args;
} commands[] = {
	{ "put", 2, 2, "NAME FILE" }, { "get", 1, 1, "NAME" }, { "delete", 1, 1, "NAME" },
	{ "list", 0, 0, "" }, { "init", 0, 1, "[DIR]" }, { "assign", 1, 2, "ID NAME|--default" },
};

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL, *pos[2];
	bool to_default = false;
	const struct cli_opt assign_opts[] = { CLI_FLAG("--default", &to_default), CLI_END };
	struct onb_actor actor = cli_actor(cli);
	struct onb_err err;
	char what[32];
	redisContext *rc;
	int ret = CLI_FAIL, npos;
	size_t c;

	if(!cmd){
		fputs(usage_policy, stderr);
		return CLI_USAGE;
	}
	if(!strcmp(cmd, "--help") || !strcmp(cmd, "-h")){
		fputs(usage_policy, stdout);
		return CLI_OK;
	}
	if(!strcmp(cmd, "test")) return do_test(cli, argc, argv);
	for(c = 0; c < sizeof(commands) / sizeof(commands[0]) && strcmp(cmd, commands[c].name); c++){}
	if(c == sizeof(commands) / sizeof(commands[0])){
		return cli_usage_error("policy: unknown command '%s'", cli_shown(cmd, what, sizeof(what)));
	}
	snprintf(what, sizeof(what), "policy %s", cmd);
	ret = cli_parse(cli, what, usage_policy, !strcmp(cmd, "assign") ? assign_opts : NULL,
			argc - 2, argv + 2, pos, commands[c].max, &npos);
	if(ret >= 0) return ret;
	if(npos < commands[c].min || (!strcmp(cmd, "assign") && (npos == 2) == to_default)){
		return cli_usage_error("usage: policy %s %s", cmd, commands[c].args);
	}
	if(!(rc = cli_redis(cli))) return CLI_FAIL;
	if(!strcmp(cmd, "put")){
		ret = put_file(rc, cli, pos[0], pos[1]);
	}else if(!strcmp(cmd, "init")){
		ret = do_init(rc, cli, npos == 1 ? pos[0] : ONB_POLICY_DIR);
	}else if(!strcmp(cmd, "get")){
		char *json = NULL;
		size_t len = 0;
		if(onb_policystore_get(rc, pos[0], &json, &len, &err) != ONB_OK){
			ret = cli_error("%s", err.msg);
		}else{
			fwrite(json, 1, len, stdout);
			if(len && json[len - 1] != '\n') fputc('\n', stdout);
			free(json);
			ret = CLI_OK;
		}
	}else if(!strcmp(cmd, "delete")){
		if(onb_policystore_delete(rc, pos[0], &actor, &err) != ONB_OK) ret = cli_error("%s", err.msg);
		else { printf("policy %s deleted\n", pos[0]); ret = CLI_OK; }
	}else if(!strcmp(cmd, "assign")){
		const char *name = to_default ? "" : pos[1];
		if(onb_registry_set_policy(rc, pos[0], name, &actor, &err) != ONB_OK) ret = cli_error("%s", err.msg);
		else { printf("%s: policy %s\n", pos[0], *name ? name : "(default for its state)"); ret = CLI_OK; }
	}else{
		cJSON *list = cli->json ? cJSON_CreateArray() : NULL;
		if(onb_policystore_list(rc, print_name, list, &err) != ONB_OK){
			ret = cli_error("%s", err.msg);
			cJSON_Delete(list);
		}else{
			ret = list ? cli_print_json(list) : CLI_OK;
		}
	}
	redisFree(rc);
	return ret;
}
