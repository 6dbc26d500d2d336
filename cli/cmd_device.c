/* onboardctl device: the registry (register, show, list, state changes).
 * Everything goes through lib/registry/registry.c; nothing here knows a Redis key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "cli.h"
#include "core/ids.h"
#include "core/vocab.h"
#include "registry/lifecycle.h"
#include "registry/registry.h"
#include "pki/x509.h"

static const char usage_device[] =
	"usage: onboardctl [--redis URL] device COMMAND [ARGS] [--json]\n"
	"\n"
	"The device registry (docs/registry.md).\n"
	"\n"
	"commands:\n"
	"  register --id ID --cert FILE [--state unclaimed|active] [--tenant T]\n"
	"                          bind a certificate to a new device\n"
	"  show ID                 print one device\n"
	"  list [--state S] [--expiring DURATION]\n"
	"                          print every device, those in state S, or those whose\n"
	"                          certificate expires within DURATION (e.g. 30d)\n"
	"  revoke ID [--reason TEXT]      refuse the device everywhere (terminal)\n"
	"  quarantine ID [--reason TEXT]  narrow the device to remediation\n"
	"  activate ID [--reason TEXT]    make the device active (e.g. after quarantine)\n"
	"  release ID [--reason TEXT]     unclaim: back to unclaimed, tenant removed\n"
	"  transfer ID --to T2 [--reason TEXT]  move an active device to tenant T2\n"
	"  rotate ID [--within DURATION] [--reason TEXT]\n"
	"                          force a certificate rotation: the device is told to renew,\n"
	"                          its current certificate stops working after DURATION (7d)\n"
	"  decommission ID [--reason TEXT]\n"
	"                          retire the operational identity, back to manufactured\n"
	"                          (the birth certificate can enrol the device again)\n"
	"\n"
	"--json (anywhere after 'device') prints results as JSON.\n"
	"'onboardctl device COMMAND --help' describes a command.\n";

static const char usage_register[] =
	"usage: onboardctl device register --id ID --cert FILE [--state unclaimed|active] [--tenant T]\n"
	"\n"
	"Creates device ID (or completes a 'manufactured' one from an allowlist import)\n"
	"and binds the certificate in FILE (PEM, first certificate) to it by its\n"
	"SHA-256 fingerprint. Records its serial and expiry. Refuses an expired\n"
	"certificate, a certificate already bound to a device, and a device that\n"
	"already has an operational certificate.\n"
	"\n"
	"  --id ID        device id, [A-Za-z0-9._:-]{1,128}; the MQTT client id\n"
	"  --cert FILE    the device's operational certificate (PEM)\n"
	"  --state S      unclaimed (default) or active\n"
	"  --tenant T     tenant id for an active device (implies --state active)\n";

static const char usage_show[] =
	"usage: onboardctl device show ID [--json]\n"
	"\n"
	"Prints every field of device ID (times in UTC).\n";

static const char usage_list[] =
	"usage: onboardctl device list [--state S] [--expiring DURATION] [--json]\n"
	"\n"
	"Prints id, state, tenant and last update of every device (in no particular\n"
	"order), or only of those in state S: manufactured, unclaimed, active,\n"
	"quarantined, revoked, decommissioned. --json prints an array of the objects\n"
	"'device show --json' prints.\n"
	"\n"
	"  --expiring DURATION  only devices whose operational certificate expires\n"
	"                       within DURATION from now (90d, 12h, 30m, 45s; already\n"
	"                       expired ones too), with the expiry instead of the\n"
	"                       last update\n";

static const char usage_rotate[] =
	"usage: onboardctl device rotate ID [--within DURATION] [--reason TEXT]\n"
	"\n"
	"Forces a certificate rotation of device ID (docs/provisioning.md, \"Certificate\n"
	"rotation\"). Its current certificate stops connecting DURATION from now\n"
	"(default 7d; 90d, 12h, 30m, 45s), and every broker tells the device to renew:\n"
	"at once on devices/ID/certificates/renew/required if it is connected, else\n"
	"just after its next CONNECT. A device that renews in time (over MQTT, on\n"
	"devices/ID/certificates/renew) keeps working with its new certificate; one\n"
	"that does not is refused after the deadline (run rotate again to move the\n"
	"deadline). Audited.\n"
	"\n"
	"  --within DURATION  how long the current certificate keeps working (max 365d)\n"
	"  --reason TEXT      recorded in the audit stream (one line, at most 256 bytes)\n";

static const char usage_decommission[] =
	"usage: onboardctl device decommission ID [--reason TEXT]\n"
	"\n"
	"Retires device ID's operational identity in one step: its certificate\n"
	"bindings are removed (the certificates never connect again; their serials\n"
	"go on the CRL that 'onboardctl crl export' writes), its claim code is\n"
	"revoked, tenant and policy are removed, and it returns to 'manufactured'\n"
	"(through 'decommissioned'), keeping its serial, birth certificate and batch:\n"
	"after a factory reset, its birth certificate (or a claim certificate) can\n"
	"enrol it again through RegisterThing. A live session is disconnected at once.\n"
	"Audited.\n"
	"\n"
	"  --reason TEXT  recorded on the device and in the audit stream (one line,\n"
	"                 at most 256 bytes)\n";

static const char usage_revoke[] =
	"usage: onboardctl device revoke ID [--reason TEXT]\n"
	"\n"
	"Moves device ID to 'revoked': every broker disconnects it and refuses its\n"
	"certificate. Only decommission leaves this state.\n"
	"\n"
	"  --reason TEXT  recorded on the device and in the audit stream (one line,\n"
	"                 at most 256 bytes)\n";

static const char usage_quarantine[] =
	"usage: onboardctl device quarantine ID [--reason TEXT]\n"
	"\n"
	"Moves device ID to 'quarantined': it may still connect, under the\n"
	"quarantine policy; its live session is re-scoped at once.\n"
	"\n"
	"  --reason TEXT  recorded on the device and in the audit stream (one line,\n"
	"                 at most 256 bytes)\n";

static const char usage_activate[] =
	"usage: onboardctl device activate ID [--reason TEXT]\n"
	"\n"
	"Moves device ID to 'active' from unclaimed, quarantined or manufactured.\n"
	"A revoked device cannot be activated.\n"
	"\n"
	"  --reason TEXT  recorded on the device and in the audit stream (one line,\n"
	"                 at most 256 bytes)\n";

/* ------------------------------------------------------ argument parsing */

enum { OPT_ID = 1, OPT_CERT = 2, OPT_STATE = 4, OPT_TENANT = 8, OPT_REASON = 16, OPT_EXPIRING = 32,
	OPT_WITHIN = 64 };

struct args {
	const char *id, *cert, *state, *tenant, *reason, *expiring, *within;
	const char *pos[2];
	int npos;
};

static const struct {
	int bit;
	const char *name;
} option_names[] = {
	{ OPT_ID, "--id" }, { OPT_CERT, "--cert" }, { OPT_STATE, "--state" },
	{ OPT_TENANT, "--tenant" }, { OPT_REASON, "--reason" }, { OPT_EXPIRING, "--expiring" },
	{ OPT_WITHIN, "--within" },
};
#define N_OPTIONS (sizeof(option_names) / sizeof(option_names[0]))

static const char **slot_of(struct args *a, int bit)
{
	switch(bit){
	case OPT_ID: return &a->id;
	case OPT_CERT: return &a->cert;
	case OPT_STATE: return &a->state;
	case OPT_TENANT: return &a->tenant;
	case OPT_EXPIRING: return &a->expiring;
	case OPT_WITHIN: return &a->within;
	default: return &a->reason;
	}
}

/* Parses a command's arguments with cli_parse: the options in `allowed`,
 * --json, --help, up to maxpos positionals. Returns -1 to go on, else an
 * exit code. */
static int parse(struct cli *cli, const char *cmd, const char *usage, int allowed, int maxpos,
		int argc, char **argv, struct args *a)
{
	struct cli_opt opts[N_OPTIONS + 1];
	char what[64];
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	memset(opts, 0, sizeof(opts));
	for(size_t k = 0; k < N_OPTIONS; k++){
		if(!(option_names[k].bit & allowed)) continue;
		opts[n].name = option_names[k].name;
		opts[n++].value = slot_of(a, option_names[k].bit);
	}
	snprintf(what, sizeof(what), "device %s", cmd);
	return cli_parse(cli, what, usage, opts, argc, argv, a->pos, maxpos, &a->npos);
}

static int check_id(const char *cmd, const char *what, const char *id)
{
	char b[80];

	if(onb_id_valid(id)) return CLI_OK;
	return cli_error("device %s: invalid %s id '%s' (expected [A-Za-z0-9._:-]{1,%d})",
			cmd, what, cli_shown(id, b, sizeof(b)), ONB_ID_MAX);
}

/* ----------------------------------------------------------------- output */

static bool add_str(cJSON *o, const char *name, const char *v)
{
	return (*v ? cJSON_AddStringToObject(o, name, v) : cJSON_AddNullToObject(o, name)) != NULL;
}

static bool add_num(cJSON *o, const char *name, int64_t v)
{
	return (v ? cJSON_AddNumberToObject(o, name, (double)v) : cJSON_AddNullToObject(o, name)) != NULL;
}

/* The JSON form of a device: the hash's field names; absent values are null;
 * not_after in seconds, the other times in milliseconds since the epoch. */
static cJSON *device_json(const struct onb_device *d)
{
	cJSON *o = cJSON_CreateObject();

	if(!o) return NULL;
	if(!add_str(o, "id", d->id) || !add_str(o, "state", onb_state_name(d->state))
			|| !add_str(o, "tenant", d->tenant) || !add_str(o, "policy", d->policy)
			|| !add_str(o, "cert_fp", d->cert_fp) || !add_str(o, "cert_fp_next", d->cert_fp_next)
			|| !add_str(o, "cert_serial", d->cert_serial) || !add_num(o, "not_after", d->not_after)
			|| !add_str(o, "serial", d->serial)
			|| !add_str(o, "birth_fp", d->birth_fp) || !add_str(o, "batch", d->batch)
			|| !add_str(o, "reason", d->reason) || !add_num(o, "created", d->created_ms)
			|| !add_num(o, "updated", d->updated_ms) || !add_num(o, "provisioned", d->provisioned_ms)
			|| !add_num(o, "claimed", d->claimed_ms)
			|| !add_str(o, "cert_serial_next", d->cert_serial_next) || !add_num(o, "not_after_next", d->not_after_next)
			|| !add_num(o, "rotate_deadline", d->rotate_deadline_ms)
			|| !cJSON_AddBoolToObject(o, "rotate_required", d->rotate_required)){
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static const char *or_dash(const char *s) { return *s ? s : "-"; }

static void print_device_text(const struct onb_device *d)
{
	char t[40], t2[40];

	printf("id:           %s\n", d->id);
	printf("state:        %s\n", onb_state_name(d->state));
	printf("tenant:       %s\n", or_dash(d->tenant));
	printf("policy:       %s\n", *d->policy ? d->policy : "(default for its state)");
	printf("cert_fp:      %s\n", or_dash(d->cert_fp));
	printf("cert_fp_next: %s\n", or_dash(d->cert_fp_next));
	printf("cert_serial:  %s\n", or_dash(d->cert_serial));
	printf("not_after:    %s\n", cli_iso_time(d->not_after, false, t, sizeof(t)));
	printf("serial:       %s\n", or_dash(d->serial));
	printf("birth_fp:     %s\n", or_dash(d->birth_fp));
	printf("batch:        %s\n", or_dash(d->batch));
	printf("reason:       %s\n", or_dash(d->reason));
	printf("created:      %s\n", cli_iso_time(d->created_ms, true, t, sizeof(t)));
	printf("updated:      %s\n", cli_iso_time(d->updated_ms, true, t, sizeof(t)));
	printf("provisioned:  %s\n", cli_iso_time(d->provisioned_ms, true, t, sizeof(t)));
	printf("claimed:      %s\n", cli_iso_time(d->claimed_ms, true, t, sizeof(t)));
	if(d->cert_fp_next[0] || d->rotate_deadline_ms){
		printf("rotation:     next serial %s, expires %s; current certificate valid until %s%s\n",
				or_dash(d->cert_serial_next), cli_iso_time(d->not_after_next, false, t, sizeof(t)),
				cli_iso_time(d->rotate_deadline_ms, true, t2, sizeof(t2)),
				d->rotate_required ? " (renewal required by an operator)" : "");
	}
}

/* One line for a failed registry call. */
static int registry_error(const char *cmd, const char *id, int rc, const struct onb_err *err)
{
	switch(rc){
	case ONB_EUNAVAIL:
		return cli_error("registry unavailable: %s", err->msg);
	case ONB_EREFUSED:
	case ONB_EEXIST:
		return cli_error("cannot %s %s: %s", cmd, id, err->msg);
	default:
		return cli_error("%s", err->msg);
	}
}

/* --------------------------------------------------------------- commands */

static int do_register(struct cli *cli, int argc, char **argv)
{
	struct args a;
	struct onb_register_req req = { 0 };
	struct onb_actor actor = cli_actor(cli);
	char fp[ONB_FP_HEXLEN + 1], serial[ONB_FP_HEXLEN + 1], b[80], t[40];
	struct onb_err err;
	redisContext *rc;
	X509 *cert;
	int ret;

	ret = parse(cli, "register", usage_register, OPT_ID | OPT_CERT | OPT_STATE | OPT_TENANT, 0,
			argc, argv, &a);
	if(ret >= 0) return ret;
	if(!a.id || !a.cert) return cli_usage_error("device register: --id and --cert are required");
	if(check_id("register", "device", a.id) != CLI_OK) return CLI_FAIL;
	req.state = a.state ? onb_state_parse(a.state) : a.tenant ? ONB_STATE_ACTIVE : ONB_STATE_UNCLAIMED;
	if(req.state != ONB_STATE_UNCLAIMED && req.state != ONB_STATE_ACTIVE){
		return cli_usage_error("device register: --state must be unclaimed or active, not '%s'",
				cli_shown(a.state, b, sizeof(b)));
	}
	if(a.tenant){
		if(check_id("register", "tenant", a.tenant) != CLI_OK) return CLI_FAIL;
		if(req.state != ONB_STATE_ACTIVE){
			return cli_usage_error("device register: --tenant needs --state active");
		}
	}

	cert = onb_cert_load(a.cert, &err);
	if(!cert) return cli_error("device register: %s", err.msg);
	if(onb_cert_fingerprint(cert, fp, &err) != ONB_OK
			|| onb_cert_serial_hex(cert, serial, sizeof(serial), &err) != ONB_OK
			|| onb_cert_not_after(cert, &req.not_after, &err) != ONB_OK){
		X509_free(cert);
		return cli_error("device register: %s: %s", a.cert, err.msg);
	}
	X509_free(cert);
	if(req.not_after * 1000 <= onb_now_ms()){
		return cli_error("device register: certificate %s expired on %s", a.cert,
				cli_iso_time(req.not_after, false, t, sizeof(t)));
	}

	req.id = a.id;
	req.cert_fp = fp;
	req.cert_serial = serial;
	req.tenant = a.tenant;
	rc = cli_redis(cli);
	if(!rc) return CLI_FAIL;
	ret = onb_registry_register(rc, &req, &actor, &err);
	if(ret == ONB_EEXIST || ret == ONB_EREFUSED){
		/* the registry writes nothing on refusal; the operator's attempt is
		 * still worth an audit entry */
		struct onb_audit_entry e = {
			.actor = actor.who, .source = actor.source, .action = ONB_AA(REGISTER),
			.device = a.id, .result = "refused", .reason = err.msg,
		};
		struct onb_err ignored;
		onb_audit_append(rc, &e, &ignored);
	}
	redisFree(rc);
	if(ret != ONB_OK) return registry_error("register", a.id, ret, &err);

	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !add_str(o, "id", a.id) || !add_str(o, "state", onb_state_name(req.state))
				|| !add_str(o, "tenant", a.tenant ? a.tenant : "") || !add_str(o, "cert_fp", fp)
				|| !add_str(o, "cert_serial", serial) || !add_num(o, "not_after", req.not_after)){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		return cli_print_json(o);
	}
	if(a.tenant){
		printf("%s: registered as %s for tenant %s, certificate %s\n", a.id,
				onb_state_name(req.state), a.tenant, fp);
	}else{
		printf("%s: registered as %s, certificate %s\n", a.id, onb_state_name(req.state), fp);
	}
	return CLI_OK;
}

static int do_show(struct cli *cli, int argc, char **argv)
{
	struct onb_device d;
	struct onb_err err;
	struct args a;
	redisContext *rc;
	int ret;

	ret = parse(cli, "show", usage_show, 0, 1, argc, argv, &a);
	if(ret >= 0) return ret;
	if(a.npos != 1) return cli_usage_error("device show: ID is required");
	if(check_id("show", "device", a.pos[0]) != CLI_OK) return CLI_FAIL;
	rc = cli_redis(cli);
	if(!rc) return CLI_FAIL;
	ret = onb_registry_device_get(rc, a.pos[0], &d, &err);
	redisFree(rc);
	if(ret != ONB_OK) return registry_error("show", a.pos[0], ret, &err);
	if(cli->json) return cli_print_json(device_json(&d));
	print_device_text(&d);
	return CLI_OK;
}

struct list_ctx {
	bool json;
	cJSON *array;
	long n;
	int64_t expiring_before; /* s: only certificates expiring before this; 0 all */
};

static int list_one(const struct onb_device *d, void *arg)
{
	struct list_ctx *ctx = arg;
	char t[40];

	if(ctx->expiring_before){
		if(!d->cert_fp[0] || d->not_after <= 0 || d->not_after > ctx->expiring_before) return 0;
	}
	if(ctx->json){
		cJSON *o = device_json(d);
		if(!o || !cJSON_AddItemToArray(ctx->array, o)){
			cJSON_Delete(o);
			return 1; /* out of memory: stop */
		}
	}else if(ctx->expiring_before){
		if(ctx->n == 0) printf("%-24s %-14s %-20s %-21s %s\n", "ID", "STATE", "TENANT", "NOT_AFTER", "RENEWED");
		printf("%-24s %-14s %-20s %-21s %s\n", d->id, onb_state_name(d->state), or_dash(d->tenant),
				cli_iso_time(d->not_after, false, t, sizeof(t)), d->cert_fp_next[0] ? "pending" : "-");
	}else{
		if(ctx->n == 0) printf("%-24s %-14s %-20s %s\n", "ID", "STATE", "TENANT", "UPDATED");
		printf("%-24s %-14s %-20s %s\n", d->id, onb_state_name(d->state), or_dash(d->tenant),
				cli_iso_time(d->updated_ms, true, t, sizeof(t)));
	}
	ctx->n++;
	return 0;
}

static int do_list(struct cli *cli, int argc, char **argv)
{
	enum onb_state only = ONB_STATE_INVALID;
	struct list_ctx ctx = { 0 };
	struct onb_err err;
	struct args a;
	redisContext *rc;
	char b[80];
	int ret;

	ret = parse(cli, "list", usage_list, OPT_STATE | OPT_EXPIRING, 0, argc, argv, &a);
	if(ret >= 0) return ret;
	if(a.expiring){
		int64_t ms;
		if(!onb_duration_parse(a.expiring, 100LL * 365 * 86400 * 1000, &ms)){
			return cli_usage_error("device list: --expiring wants a duration such as 30d, 12h or 3600 (not '%s')",
					cli_shown(a.expiring, b, sizeof(b)));
		}
		ctx.expiring_before = onb_now_ms() / 1000 + ms / 1000;
	}
	if(a.state){
		only = onb_state_parse(a.state);
		if(only == ONB_STATE_INVALID){
			return cli_usage_error("device list: unknown state '%s' (manufactured, unclaimed, active, "
					"quarantined, revoked, decommissioned)", cli_shown(a.state, b, sizeof(b)));
		}
	}
	ctx.json = cli->json;
	if(ctx.json && !(ctx.array = cJSON_CreateArray())) return cli_error("out of memory");
	rc = cli_redis(cli);
	if(!rc){
		cJSON_Delete(ctx.array);
		return CLI_FAIL;
	}
	ret = onb_registry_list(rc, only, list_one, &ctx, &err);
	redisFree(rc);
	if(ret < 0){
		cJSON_Delete(ctx.array);
		return registry_error("list", "", ret, &err);
	}
	if(ret > 0){
		cJSON_Delete(ctx.array);
		return cli_error("out of memory");
	}
	if(ctx.json) return cli_print_json(ctx.array);
	return CLI_OK;
}

static int set_state(struct cli *cli, const char *cmd, const char *usage, enum onb_state to,
		int argc, char **argv)
{
	enum onb_state from = ONB_STATE_INVALID;
	struct onb_actor actor = cli_actor(cli);
	struct onb_err err;
	struct args a;
	redisContext *rc;
	int ret;

	ret = parse(cli, cmd, usage, OPT_REASON, 1, argc, argv, &a);
	if(ret >= 0) return ret;
	if(a.npos != 1) return cli_usage_error("device %s: ID is required", cmd);
	if(check_id(cmd, "device", a.pos[0]) != CLI_OK) return CLI_FAIL;
	if(a.reason){
		for(const char *p = a.reason; *p; p++){
			if((unsigned char)*p < 0x20 || *p == 0x7f){
				return cli_usage_error("device %s: --reason must be one line of printable text", cmd);
			}
		}
		if(strlen(a.reason) > ONB_REASON_MAX){
			return cli_usage_error("device %s: --reason is longer than %d bytes", cmd, ONB_REASON_MAX);
		}
	}
	rc = cli_redis(cli);
	if(!rc) return CLI_FAIL;
	ret = onb_registry_set_state(rc, a.pos[0], to, a.reason, &actor, &from, &err);
	redisFree(rc);
	if(ret != ONB_OK) return registry_error(cmd, a.pos[0], ret, &err);
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !add_str(o, "id", a.pos[0]) || !add_str(o, "from", onb_state_name(from))
				|| !add_str(o, "to", onb_state_name(to))){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		return cli_print_json(o);
	}
	printf("%s: %s -> %s\n", a.pos[0], onb_state_name(from), onb_state_name(to));
	return CLI_OK;
}

static int do_revoke(struct cli *cli, int argc, char **argv)
{
	return set_state(cli, "revoke", usage_revoke, ONB_STATE_REVOKED, argc, argv);
}

static int do_quarantine(struct cli *cli, int argc, char **argv)
{
	return set_state(cli, "quarantine", usage_quarantine, ONB_STATE_QUARANTINED, argc, argv);
}

static int do_activate(struct cli *cli, int argc, char **argv)
{
	return set_state(cli, "activate", usage_activate, ONB_STATE_ACTIVE, argc, argv);
}

/* Checks --reason: one line of printable text, at most ONB_REASON_MAX bytes. */
static int check_reason(const char *cmd, const char *reason)
{
	if(!reason) return CLI_OK;
	for(const char *p = reason; *p; p++){
		if((unsigned char)*p < 0x20 || *p == 0x7f){
			return cli_usage_error("device %s: --reason must be one line of printable text", cmd);
		}
	}
	if(strlen(reason) > ONB_REASON_MAX){
		return cli_usage_error("device %s: --reason is longer than %d bytes", cmd, ONB_REASON_MAX);
	}
	return CLI_OK;
}

static int do_rotate(struct cli *cli, int argc, char **argv)
{
	struct onb_actor actor = cli_actor(cli);
	int64_t within = (int64_t)ONB_ROTATION_GRACE_DEFAULT_S * 1000, deadline = 0;
	struct onb_err err;
	struct args a;
	redisContext *rc;
	char b[80], t[40];
	int ret;

	ret = parse(cli, "rotate", usage_rotate, OPT_REASON | OPT_WITHIN, 1, argc, argv, &a);
	if(ret >= 0) return ret;
	if(a.npos != 1) return cli_usage_error("device rotate: ID is required");
	if(check_id("rotate", "device", a.pos[0]) != CLI_OK) return CLI_FAIL;
	if(check_reason("rotate", a.reason) != CLI_OK) return CLI_USAGE;
	if(a.within && !onb_duration_parse(a.within, ONB_ROTATE_WITHIN_MAX_MS, &within)){
		return cli_usage_error("device rotate: --within wants a duration up to 365d such as 7d or 12h (not '%s')",
				cli_shown(a.within, b, sizeof(b)));
	}
	rc = cli_redis(cli);
	if(!rc) return CLI_FAIL;
	ret = onb_rotation_require(rc, a.pos[0], within, a.reason, &actor, &deadline, &err);
	redisFree(rc);
	if(ret != ONB_OK) return registry_error("rotate", a.pos[0], ret, &err);
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !add_str(o, "id", a.pos[0]) || !add_num(o, "rotate_deadline", deadline)){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		return cli_print_json(o);
	}
	printf("%s: rotation required; its current certificate stops working at %s\n", a.pos[0],
			cli_iso_time(deadline, true, t, sizeof(t)));
	return CLI_OK;
}

static int do_decommission(struct cli *cli, int argc, char **argv)
{
	struct onb_actor actor = cli_actor(cli);
	struct onb_decommission_result res;
	struct onb_err err;
	struct args a;
	redisContext *rc;
	int ret;

	ret = parse(cli, "decommission", usage_decommission, OPT_REASON, 1, argc, argv, &a);
	if(ret >= 0) return ret;
	if(a.npos != 1) return cli_usage_error("device decommission: ID is required");
	if(check_id("decommission", "device", a.pos[0]) != CLI_OK) return CLI_FAIL;
	if(check_reason("decommission", a.reason) != CLI_OK) return CLI_USAGE;
	rc = cli_redis(cli);
	if(!rc) return CLI_FAIL;
	ret = onb_device_decommission(rc, a.pos[0], a.reason, &actor, &res, &err);
	redisFree(rc);
	if(ret != ONB_OK) return registry_error("decommission", a.pos[0], ret, &err);
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !add_str(o, "id", a.pos[0]) || !add_str(o, "from", onb_state_name(res.from))
				|| !add_str(o, "to", "manufactured") || !add_str(o, "revoked_serials", res.serials)){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		return cli_print_json(o);
	}
	printf("%s: %s -> decommissioned -> manufactured%s%s\n", a.pos[0], onb_state_name(res.from),
			res.serials[0] ? "; serials on the CRL: " : "", res.serials);
	return CLI_OK;
}

static const struct cli_cmd commands[] = {
	{ "register", do_register },
	{ "show", do_show },
	{ "list", do_list },
	{ "revoke", do_revoke },
	{ "quarantine", do_quarantine },
	{ "activate", do_activate },
	{ "release", cmd_device_release },   /* cmd_device_tenant.c */
	{ "transfer", cmd_device_transfer }, /* cmd_device_tenant.c */
	{ "rotate", do_rotate },
	{ "decommission", do_decommission },
};

int cmd_device(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "device", usage_device, commands, sizeof(commands) / sizeof(commands[0]), argc, argv);
}
