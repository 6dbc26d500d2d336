/* onboardctl claim, device release, device transfer: binding devices to
 * tenants (docs/claiming.md). Everything goes through lib/claimreg.c. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <cJSON.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "onb/claimcode.h"
#include "onb/claimreg.h"
#include "onb/ids.h"

static const char usage_claim[] =
	"usage: onboardctl [--redis URL] claim --tenant T [--device ID] [--json] CODE_OR_URI|-\n"
	"\n"
	"Redeems a claim code for tenant T, as an operator on the tenant's behalf:\n"
	"the device becomes 'active' for T and its live session switches to the\n"
	"tenant policy at once. CODE_OR_URI is the code as printed (case, dashes and\n"
	"blanks do not matter; I and L read as 1, O as 0) or the link of the QR code\n"
	"(mqtt-onboard://claim?d=ID&c=CODE, or an https:// link whose query or\n"
	"fragment carries d= and c=). '-' reads it from the first line of\n"
	"stdin, which keeps it out of the process list and the shell history.\n"
	"\n"
	"A typo is caught by the code's check symbol before anything is looked up.\n"
	"Every refusal is one line: 'invalid or expired claim code' (unknown, used,\n"
	"revoked and expired codes look alike; the audit stream has the reason),\n"
	"'device ID cannot be claimed now (it is STATE)', or 'too many failed claim\n"
	"attempts: try again in N s' (5 failures in 10 minutes lock the tenant out\n"
	"for 15 minutes, for this operator and everyone else; claims for other\n"
	"tenants are not affected; 'claimcode unlock --tenant T' lifts it).\n"
	"\n"
	"  --tenant T   the tenant that claims, [A-Za-z0-9._:-]{1,128}\n"
	"  --device ID  the device the code must be for (as the URI's d= does)\n"
	"  --json       print {deviceId, tenantId, state}\n"
	"\n"
	"Exit status: 0 claimed, 1 refused or failed, 2 usage error.\n";

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

#define CODE_LINE_MAX (ONB_CC_INPUT_MAX + 2)

/* Prints a cJSON object on one line and frees it. */
static int print_json(cJSON *o)
{
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	if(!s) return cli_error("out of memory");
	puts(s);
	cJSON_free(s);
	return CLI_OK;
}

/* Reads the code from stdin's first line into buf. */
static int read_stdin_code(char buf[CODE_LINE_MAX])
{
	size_t n;

	if(!fgets(buf, CODE_LINE_MAX, stdin)) return cli_error("claim: no code on stdin");
	n = strlen(buf);
	while(n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
	return CLI_OK;
}

int cmd_claim(struct cli *cli, int argc, char **argv)
{
	const char *tenant = NULL, *device = NULL, *pos[1];
	const struct cli_opt opts[] = {
		{ "--tenant", &tenant, NULL }, { "--device", &device, NULL }, { NULL, NULL, NULL },
	};
	char line[CODE_LINE_MAX], canon[ONB_CC_SYMBOLS + 1], uri_dev[ONB_ID_MAX + 1];
	struct onb_actor actor = cli_actor(cli);
	struct onb_claim_result res;
	struct onb_claim_req req;
	struct onb_err err;
	redisContext *rc = NULL;
	int npos, ret;

	signal(SIGPIPE, SIG_IGN);
	ret = cli_parse(cli, "claim", usage_claim, opts, argc - 1, argv + 1, pos, 1, &npos);
	if(ret >= 0) return ret;
	if(!tenant || npos != 1) return cli_usage_error("claim: --tenant T and one CODE_OR_URI are required");
	if(!onb_id_valid(tenant)) return cli_error("claim: invalid tenant id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	if(device && !onb_id_valid(device)) return cli_error("claim: invalid device id");
	ret = CLI_FAIL;
	if(!strcmp(pos[0], "-")){
		if(read_stdin_code(line) != CLI_OK) goto cleanup;
	}else{
		snprintf(line, sizeof(line), "%s", pos[0]);
	}
	/* typos are caught here, before anything is looked up */
	if(onb_claimcode_input(line, uri_dev, canon, &err) != ONB_OK){
		cli_error("%s", err.msg);
		goto cleanup;
	}
	if(device && uri_dev[0] && strcmp(device, uri_dev) != 0){
		cli_error("claim: --device %s differs from the URI's device %s", device, uri_dev);
		goto cleanup;
	}
	rc = cli_redis(cli);
	if(!rc) goto cleanup;
	memset(&req, 0, sizeof(req));
	req.code = canon;
	req.device = device ? device : uri_dev;
	req.tenant = tenant;
	req.source = actor.who; /* the operator is the rate-limited source */
	ret = onb_claim_redeem(rc, &req, &actor, &res, &err);
	if(ret == ONB_EREFUSED){
		ret = cli_error("claim refused: %s", err.msg);
		goto cleanup;
	}
	if(ret != ONB_OK){
		ret = cli_error("%s%s", ret == ONB_EUNAVAIL ? "registry unavailable: " : "", err.msg);
		goto cleanup;
	}
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !cJSON_AddStringToObject(o, "deviceId", res.device) || !cJSON_AddStringToObject(o, "tenantId", res.tenant)
				|| !cJSON_AddStringToObject(o, "state", onb_state_name(res.state))){
			cJSON_Delete(o);
			ret = cli_error("out of memory");
			goto cleanup;
		}
		ret = print_json(o);
	}else{
		printf("deviceId: %s\ntenantId: %s\nstate:    %s\n", res.device, res.tenant, onb_state_name(res.state));
		ret = CLI_OK;
	}
cleanup:
	OPENSSL_cleanse(line, sizeof(line));
	OPENSSL_cleanse(canon, sizeof(canon));
	if(rc) redisFree(rc);
	return ret;
}

/* Common tail of release and transfer: the error line or the result. */
static int tenant_result(struct cli *cli, int ret, const char *id, const struct onb_err *err,
		const char *former, const char *to)
{
	if(ret == ONB_EUNAVAIL) return cli_error("registry unavailable: %s", err->msg);
	if(ret != ONB_OK) return cli_error("%s", err->msg);
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !cJSON_AddStringToObject(o, "id", id)
				|| !(*former ? cJSON_AddStringToObject(o, "from_tenant", former) : cJSON_AddNullToObject(o, "from_tenant"))
				|| !(to ? cJSON_AddStringToObject(o, "to_tenant", to) : cJSON_AddNullToObject(o, "to_tenant"))
				|| !cJSON_AddStringToObject(o, "state", to ? "active" : "unclaimed")){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		return print_json(o);
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

int cmd_device_release(struct cli *cli, int argc, char **argv)
{
	const char *reason = NULL, *pos[1];
	const struct cli_opt opts[] = { { "--reason", &reason, NULL }, { NULL, NULL, NULL } };
	struct onb_actor actor = cli_actor(cli);
	char former[ONB_ID_MAX + 1] = "";
	struct onb_err err;
	redisContext *rc;
	int npos, ret;

	ret = cli_parse(cli, "device release", usage_release, opts, argc, argv, pos, 1, &npos);
	if(ret >= 0) return ret;
	if(npos != 1) return cli_usage_error("device release: ID is required");
	if(!onb_id_valid(pos[0])) return cli_error("device release: invalid device id");
	ret = reason_ok("release", reason);
	if(ret != CLI_OK) return ret;
	if(!(rc = cli_redis(cli))) return CLI_FAIL;
	ret = onb_device_release(rc, pos[0], reason, &actor, former, &err);
	redisFree(rc);
	return tenant_result(cli, ret, pos[0], &err, former, NULL);
}

int cmd_device_transfer(struct cli *cli, int argc, char **argv)
{
	const char *reason = NULL, *to = NULL, *pos[1];
	const struct cli_opt opts[] = {
		{ "--to", &to, NULL }, { "--reason", &reason, NULL }, { NULL, NULL, NULL },
	};
	struct onb_actor actor = cli_actor(cli);
	char former[ONB_ID_MAX + 1] = "";
	struct onb_err err;
	redisContext *rc;
	int npos, ret;

	ret = cli_parse(cli, "device transfer", usage_transfer, opts, argc, argv, pos, 1, &npos);
	if(ret >= 0) return ret;
	if(npos != 1 || !to) return cli_usage_error("device transfer: ID and --to T2 are required");
	if(!onb_id_valid(pos[0])) return cli_error("device transfer: invalid device id");
	if(!onb_id_valid(to)) return cli_error("device transfer: invalid tenant id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	ret = reason_ok("transfer", reason);
	if(ret != CLI_OK) return ret;
	if(!(rc = cli_redis(cli))) return CLI_FAIL;
	ret = onb_device_transfer(rc, pos[0], to, reason, &actor, former, &err);
	redisFree(rc);
	return tenant_result(cli, ret, pos[0], &err, former, to);
}
