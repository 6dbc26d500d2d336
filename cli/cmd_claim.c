/* onboardctl claim: a tenant redeems a claim code (docs/claiming.md).
 * Everything goes through lib/claim/claimreg.c. */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "claim/claimcode.h"
#include "claim/claimreg.h"
#include "core/ids.h"

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

#define CODE_LINE_MAX (ONB_CC_INPUT_MAX + 2)

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
		CLI_VALUE("--tenant", &tenant), CLI_VALUE("--device", &device), CLI_END,
	};
	char line[CODE_LINE_MAX], canon[ONB_CC_SYMBOLS + 1], uri_dev[ONB_ID_MAX + 1];
	struct onb_actor actor = cli_actor(cli);
	struct onb_claim_result res;
	struct onb_claim_req req;
	struct onb_err err;
	redisContext *rc = NULL;
	int npos, ret;

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
		ret = cli_fail(ret, &err);
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
		ret = cli_print_json(o);
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
