/* onboardctl template check: validates a directory of provisioning templates
 * with the parser claimsvc uses (lib/provisioning/template.c), so that an operator can
 * check a template (its reprovision policy above all) before claimsvc is
 * reloaded with it. Needs no registry. */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "registry/state.h"
#include "provisioning/template.h"

static const char usage_template[] =
	"usage: onboardctl template check DIR [--json]\n"
	"\n"
	"Loads every DIR/NAME.json as claimsvc does (templates_dir; format in\n"
	"docs/provisioning.md, \"Templates\") and prints one line per template: its\n"
	"thing name, initial state (and tenant), allowlist mode and reprovision\n"
	"policy (never, same-identity, replace: what RegisterThing does for a device\n"
	"that is already provisioned). Any bad file, an unknown key or value among\n"
	"them, fails the whole directory with the file and the reason, as it would\n"
	"stop claimsvc. Exit status 0 when every template is valid.\n"
	"\n"
	"  --json   an array of {name, thingName, state, tenant, allowlist, reprovision}\n";

static cJSON *describe(const struct onb_template *t)
{
	cJSON *o = cJSON_CreateObject();

	if(!o) return NULL;
	if(!cJSON_AddStringToObject(o, "name", t->name)
			|| !cJSON_AddStringToObject(o, "thingName", t->thing_name)
			|| !cJSON_AddStringToObject(o, "state", onb_state_name(t->state))
			|| !(t->tenant[0] ? cJSON_AddStringToObject(o, "tenant", t->tenant) : cJSON_AddNullToObject(o, "tenant"))
			|| !cJSON_AddStringToObject(o, "allowlist", t->allowlist_required ? "required" : "optional")
			|| !cJSON_AddStringToObject(o, "reprovision", onb_reprovision_name(t->reprovision))){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int template_check(struct cli *cli, int argc, char **argv)
{
	struct onb_template_set *set = NULL;
	struct onb_err err;
	const char *pos[1];
	cJSON *all = NULL;
	int ret, npos;

	ret = cli_parse(cli, "template check", usage_template, NULL, argc, argv, pos, 1, &npos);
	if(ret >= 0) return ret;
	if(npos != 1) return cli_usage_error("template check needs a directory");
	if(onb_template_set_load(pos[0], &set, &err) != ONB_OK) return cli_error("%s", err.msg);

	if(!cli->json){
		for(size_t i = 0; i < set->n; i++){
			const struct onb_template *t = set->v[i];
			printf("%s: thingName %s, state %s%s%s, allowlist %s, reprovision %s\n", t->name, t->thing_name,
					onb_state_name(t->state), t->tenant[0] ? " tenant " : "", t->tenant,
					t->allowlist_required ? "required" : "optional", onb_reprovision_name(t->reprovision));
		}
		onb_template_set_free(set);
		return CLI_OK;
	}
	ret = CLI_OK;
	if(!(all = cJSON_CreateArray())) goto oom;
	for(size_t i = 0; i < set->n; i++){
		cJSON *o = describe(set->v[i]);
		if(!o || !cJSON_AddItemToArray(all, o)){
			cJSON_Delete(o);
			goto oom;
		}
	}
	ret = cli_print_json(all); /* frees it */
	all = NULL;
	goto cleanup;
oom:
	ret = cli_error("out of memory");
cleanup:
	cJSON_Delete(all);
	onb_template_set_free(set);
	return ret;
}

static const struct cli_cmd commands[] = { { "check", template_check } };

int cmd_template(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "template", usage_template, commands, sizeof(commands) / sizeof(commands[0]),
			argc, argv);
}
