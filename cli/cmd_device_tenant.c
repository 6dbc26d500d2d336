/* onboardctl device release, device transfer: a device's tenant changed by
 * an operator (docs/claiming.md). Everything goes through lib/claim/claimreg.c. */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "claim/claimreg.h"
#include "core/ids.h"

static const char usage_release[] =
	"usage: onboardctl device release ID [--reason TEXT] [--json]\n"
	"\n"
	"Unclaims active device ID: it goes back to 'unclaimed', loses its tenant\n"
	"and any explicit policy, and its claim code is invalidated, so nobody can\n"
	"claim it again until a new code is issued ('claimcode issue'). The live\n"
	"session drops to the device policy at once.\n"
	"\n"
	"  --reason TEXT  recorded in the audit stream (one line, at most 256 bytes)\n";

static const char usage_transfer[] =
	"usage: onboardctl device transfer ID --to T2 [--reason TEXT] [--json]\n"
	"\n"
	"Moves active device ID to tenant T2 (operators only: tenants have no way\n"
	"to do this). Its explicit policy, if any, is dropped; the live session\n"
	"switches to T2's topics at once. Audited with both tenants.\n"
	"\n"
	"  --to T2        the new tenant, [A-Za-z0-9._:-]{1,128}\n"
	"  --reason TEXT  recorded in the audit stream (one line, at most 256 bytes)\n";

/* Common tail of release and transfer: the error line or the result. */
static int tenant_result(struct cli *cli, int ret, const char *id, const struct onb_err *err,
		const char *former, const char *to)
{
	if(ret != ONB_OK) return cli_fail(ret, err);
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !cJSON_AddStringToObject(o, "id", id)
				|| !(*former ? cJSON_AddStringToObject(o, "from_tenant", former) : cJSON_AddNullToObject(o, "from_tenant"))
				|| !(to ? cJSON_AddStringToObject(o, "to_tenant", to) : cJSON_AddNullToObject(o, "to_tenant"))
				|| !cJSON_AddStringToObject(o, "state", to ? "active" : "unclaimed")){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		return cli_print_json(o);
	}
	if(to) printf("%s: transferred from %s to %s\n", id, *former ? former : "(no tenant)", to);
	else printf("%s: released from %s; now unclaimed (issue a new claim code to let it be claimed)\n",
			id, *former ? former : "(no tenant)");
	return CLI_OK;
}

static int reason_ok(const char *cmd, const char *reason)
{
	if(!reason) return CLI_OK;
	for(const char *p = reason; *p; p++){
		if((unsigned char)*p < 0x20 || *p == 0x7f) return cli_usage_error("device %s: --reason must be one line of printable text", cmd);
	}
	if(strlen(reason) > ONB_REASON_MAX) return cli_usage_error("device %s: --reason is longer than %d bytes", cmd, ONB_REASON_MAX);
	return CLI_OK;
}

/* release (transfer false) and transfer share all but the --to option. */
static int change_tenant(struct cli *cli, bool transfer, int argc, char **argv)
{
	const char *cmd = transfer ? "transfer" : "release";
	const char *reason = NULL, *to = NULL, *pos[1];
	const struct cli_opt opts[] = {
		CLI_VALUE("--reason", &reason),
		transfer ? (struct cli_opt)CLI_VALUE("--to", &to) : (struct cli_opt)CLI_END,
		CLI_END,
	};
	struct onb_actor actor = cli_actor(cli);
	char former[ONB_ID_MAX + 1] = "", what[20];
	struct onb_err err;
	redisContext *rc;
	int npos, ret;

	snprintf(what, sizeof(what), "device %s", cmd);
	ret = cli_parse(cli, what, transfer ? usage_transfer : usage_release, opts, argc, argv,
			pos, 1, &npos);
	if(ret >= 0) return ret;
	if(transfer && (npos != 1 || !to)) return cli_usage_error("device transfer: ID and --to T2 are required");
	if(npos != 1) return cli_usage_error("device release: ID is required");
	if(!onb_id_valid(pos[0])) return cli_error("device %s: invalid device id", cmd);
	if(to && !onb_id_valid(to)) return cli_error("device transfer: invalid tenant id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	ret = reason_ok(cmd, reason);
	if(ret != CLI_OK) return ret;
	if(!(rc = cli_redis(cli))) return CLI_FAIL;
	if(to) ret = onb_device_transfer(rc, pos[0], to, reason, &actor, former, &err);
	else ret = onb_device_release(rc, pos[0], reason, &actor, former, &err);
	redisFree(rc);
	return tenant_result(cli, ret, pos[0], &err, former, to);
}

int cmd_device_release(struct cli *cli, int argc, char **argv)
{
	return change_tenant(cli, false, argc, argv);
}

int cmd_device_transfer(struct cli *cli, int argc, char **argv)
{
	return change_tenant(cli, true, argc, argv);
}
