/* onboardctl crl export: the registry's revoked serials as a CRL file for
 * Mosquitto's crlfile (docs/crl.md). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <openssl/x509.h>

#include "cli.h"
#include "pki/crl.h"
#include "core/vocab.h"
#include "pki/x509.h"

#define MAX_EXTRA 8

static const char usage_crl[] =
	"usage: onboardctl [--redis URL] crl export --ca CA --out FILE [--days N]\n"
	"                  [--also-ca CA]... [--include FILE]... [--json]\n"
	"\n"
	"Writes FILE (PEM, mode 0644, replaced atomically) for Mosquitto's crlfile:\n"
	"  - a CRL signed by CA.pem/CA.key (the device CA, e.g. --ca pki/device-ca)\n"
	"    listing every revoked or decommissioned device's certificate serial, and\n"
	"    every serial listed by an earlier export (registry key onb:crl:revoked),\n"
	"    so a re-enrolled device's old certificate stays revoked;\n"
	"  - an empty CRL signed by each --also-ca CA;\n"
	"  - the CRLs of each --include FILE, unchanged (refused when expired).\n"
	"Mosquitto checks the CRL of the CA that issued each client certificate and\n"
	"refuses every certificate whose issuer has none: FILE must hold one CRL for\n"
	"every CA that issues client certificates on that listener (docs/crl.md).\n"
	"\n"
	"  --ca CA        the device CA, path without .pem/.key\n"
	"  --out FILE     output file\n"
	"  --days N       nextUpdate N days from now, 1..366 (default 7). Re-export and\n"
	"                 reload the broker well before: an expired CRL refuses every\n"
	"                 certificate of its CA\n"
	"  --also-ca CA   another issuing CA whose key you hold (claim, service, ...)\n"
	"  --include FILE CRLs published by a CA whose key you do not hold\n"
	"                 (e.g. the manufacturer's)\n"
	"  --json         print the summary as JSON\n"
	"\n"
	"CRL numbers grow: the larger of the time in milliseconds and one more than\n"
	"the number in the FILE being replaced. Reload the broker afterwards\n"
	"(SIGHUP re-reads crlfile).\n";

struct crl_opts {
	const char *ca, *out, *days;
	const char *also[MAX_EXTRA];
	int nalso;
	const char *include[MAX_EXTRA];
	int ninclude;
};

/* A list of up to MAX_EXTRA paths given by a repeatable option. */
struct path_list {
	const char *name;
	const char **v;
	int *n;
};

static int add_path(const char *cmd, const char *value, void *arg)
{
	const struct path_list *l = arg;

	if(*l->n == MAX_EXTRA) return cli_usage_error("%s: at most %d %s", cmd, MAX_EXTRA, l->name);
	l->v[(*l->n)++] = value;
	return CLI_OK;
}

static int parse_args(struct crl_opts *o, struct cli *cli, int argc, char **argv)
{
	struct path_list also = { "--also-ca", o->also, &o->nalso };
	struct path_list include = { "--include", o->include, &o->ninclude };
	const struct cli_opt opts[] = {
		CLI_VALUE("--ca", &o->ca), CLI_VALUE("--out", &o->out),
		CLI_VALUE("--days", &o->days), CLI_EACH("--also-ca", add_path, &also),
		CLI_EACH("--include", add_path, &include), CLI_END,
	};
	int npos, ret;

	ret = cli_parse(cli, "crl export", usage_crl, opts, argc, argv, NULL, 0, &npos);
	if(ret >= 0) return ret;
	if(!o->ca || !o->out) return cli_usage_error("crl export: --ca and --out are required");
	return -1;
}

/* Loads PREFIX.pem and PREFIX.key. */
static int load_ca(const char *prefix, X509 **cert, EVP_PKEY **key)
{
	char pem[PATH_MAX], keyp[PATH_MAX];
	struct onb_err err;
	int n1 = snprintf(pem, sizeof(pem), "%s.pem", prefix);
	int n2 = snprintf(keyp, sizeof(keyp), "%s.key", prefix);

	if(n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(pem) || (size_t)n2 >= sizeof(keyp)){
		return cli_error("crl export: CA path too long");
	}
	if(!(*cert = onb_cert_load(pem, &err))) return cli_error("crl export: %s", err.msg);
	if(!(*key = onb_key_load(keyp, &err))){
		X509_free(*cert);
		*cert = NULL;
		return cli_error("crl export: %s", err.msg);
	}
	return CLI_OK;
}

static void name_of(X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long l;

	buf[0] = '\0';
	if(!b) return;
	if(X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0){
		l = BIO_get_mem_data(b, &p);
		snprintf(buf, len, "%.*s", (int)(l < 0 ? 0 : l), p);
	}
	BIO_free(b);
}

static void time_of(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if(t && ASN1_TIME_to_tm(t, &tm) == 1) strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else snprintf(buf, len, "?");
}

/* One line (or JSON object) per CRL written. */
static int report(struct cli *cli, const char *out, STACK_OF(X509_CRL) *crls)
{
	cJSON *root = NULL, *arr = NULL;
	int ret = CLI_OK;

	if(cli->json){
		root = cJSON_CreateObject();
		if(!root || !cJSON_AddStringToObject(root, "file", out) || !(arr = cJSON_AddArrayToObject(root, "crls"))){
			cJSON_Delete(root);
			return cli_error("out of memory");
		}
	}else{
		printf("wrote %s: %d CRL(s)\n", out, sk_X509_CRL_num(crls));
	}
	for(int i = 0; i < sk_X509_CRL_num(crls); i++){
		X509_CRL *crl = sk_X509_CRL_value(crls, i);
		ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
		STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
		uint64_t n = 0;
		char issuer[256], next[32], number[24] = "-";

		if(num && ASN1_INTEGER_get_uint64(&n, num) == 1) snprintf(number, sizeof(number), "%llu", (unsigned long long)n);
		ASN1_INTEGER_free(num);
		name_of(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
		time_of(X509_CRL_get0_nextUpdate(crl), next, sizeof(next));
		if(arr){
			cJSON *o = cJSON_CreateObject();
			cJSON_AddItemToArray(arr, o);
			if(!cJSON_AddStringToObject(o, "issuer", issuer) || !cJSON_AddStringToObject(o, "number", number)
					|| !cJSON_AddNumberToObject(o, "revoked", rev ? sk_X509_REVOKED_num(rev) : 0)
					|| !cJSON_AddStringToObject(o, "next_update", next)){
				ret = cli_error("out of memory");
			}
		}else{
			printf("  %s: number %s, %d revoked, next update %s\n", issuer, number,
					rev ? sk_X509_REVOKED_num(rev) : 0, next);
		}
	}
	if(root && cli_print_json(root) != CLI_OK) ret = CLI_FAIL;
	return ret;
}

/* Signs one CRL for prefix's CA; number above any in previous. */
static int sign_one(const char *prefix, const struct onb_crl_list *list, STACK_OF(X509_CRL) *previous,
		int days, STACK_OF(X509_CRL) *out)
{
	X509 *ca = NULL;
	EVP_PKEY *key = NULL;
	X509_CRL *crl = NULL;
	struct onb_err err;
	uint64_t number, last;
	int ret;

	if((ret = load_ca(prefix, &ca, &key)) != CLI_OK) return ret;
	number = (uint64_t)onb_now_ms();
	last = onb_crl_last_number(previous, ca);
	if(last >= number) number = last + 1;
	crl = onb_crl_build(ca, key, list ? list->e : NULL, list ? list->n : 0, onb_now_ms() / 1000, days,
			number, &err);
	if(!crl){
		ret = cli_error("crl export: %s: %s", prefix, err.msg);
	}else if(!sk_X509_CRL_push(out, crl)){
		X509_CRL_free(crl);
		ret = cli_error("out of memory");
	}else{
		ret = CLI_OK;
	}
	EVP_PKEY_free(key);
	X509_free(ca);
	return ret;
}

/* Appends the CRLs of path, refusing expired ones. */
static int include_file(const char *path, STACK_OF(X509_CRL) *out)
{
	STACK_OF(X509_CRL) *crls = NULL;
	struct onb_err err;
	int ret = CLI_OK;

	if(onb_crl_read_file(path, &crls, &err) != ONB_OK) return cli_error("crl export: --include %s", err.msg);
	while(sk_X509_CRL_num(crls) > 0){
		X509_CRL *crl = sk_X509_CRL_shift(crls);
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

		if(ret == CLI_OK && next && X509_cmp_current_time(next) <= 0){
			ret = cli_error("crl export: %s holds an expired CRL: Mosquitto would refuse every "
					"certificate of its CA", path);
		}
		if(ret != CLI_OK || !sk_X509_CRL_push(out, crl)){
			X509_CRL_free(crl);
			if(ret == CLI_OK) ret = cli_error("out of memory");
		}
	}
	sk_X509_CRL_free(crls);
	return ret;
}

/* Two CRLs of one issuer in one file: OpenSSL would use only the newest. */
static int check_issuers(STACK_OF(X509_CRL) *crls)
{
	for(int i = 0; i < sk_X509_CRL_num(crls); i++){
		for(int j = 0; j < i; j++){
			if(!X509_NAME_cmp(X509_CRL_get_issuer(sk_X509_CRL_value(crls, i)),
					X509_CRL_get_issuer(sk_X509_CRL_value(crls, j)))){
				char name[256];
				name_of(X509_CRL_get_issuer(sk_X509_CRL_value(crls, i)), name, sizeof(name));
				return cli_error("crl export: two CRLs from %s (name each CA once)", name);
			}
		}
	}
	return CLI_OK;
}

static int crl_export(struct cli *cli, int argc, char **argv)
{
	struct crl_opts o;
	struct onb_crl_list list = { 0 };
	STACK_OF(X509_CRL) *previous = NULL, *out = NULL;
	struct onb_err err;
	redisContext *rc = NULL;
	int days = ONB_CRL_DEFAULT_DAYS, ret, r;

	memset(&o, 0, sizeof(o));
	ret = parse_args(&o, cli, argc, argv);
	if(ret >= 0) return ret;
	if(o.days && !cli_int(o.days, 1, ONB_CRL_DAYS_MAX, &days)){
		return cli_usage_error("crl export: --days must be 1..%d", ONB_CRL_DAYS_MAX);
	}
	r = onb_crl_read_file(o.out, &previous, &err);
	if(r != ONB_OK && r != ONB_ENOTFOUND){
		return cli_error("crl export: %s exists and is not a CRL file: %s; refusing to replace it",
				o.out, err.msg);
	}
	if(!(out = sk_X509_CRL_new_null())){
		ret = cli_error("out of memory");
		goto cleanup;
	}
	if(!(rc = cli_redis(cli))){
		ret = CLI_FAIL;
		goto cleanup;
	}
	if(onb_crl_collect(rc, &list, &err) != ONB_OK){
		ret = cli_error("crl export: %s", err.msg);
		goto cleanup;
	}
	if((ret = sign_one(o.ca, &list, previous, days, out)) != CLI_OK) goto cleanup;
	for(int i = 0; i < o.nalso; i++){
		if((ret = sign_one(o.also[i], NULL, previous, days, out)) != CLI_OK) goto cleanup;
	}
	for(int i = 0; i < o.ninclude; i++){
		if((ret = include_file(o.include[i], out)) != CLI_OK) goto cleanup;
	}
	if((ret = check_issuers(out)) != CLI_OK) goto cleanup;
	if(onb_crl_write(o.out, out, &err) != ONB_OK){
		ret = cli_error("crl export: %s", err.msg);
		goto cleanup;
	}
	{
		struct onb_actor actor = cli_actor(cli);
		struct onb_audit_entry e = { .actor = actor.who, .source = actor.source, .action = ONB_AA(CRL_EXPORT),
			.result = "ok", .reason = NULL };
		char why[128];
		struct onb_err ignored;

		snprintf(why, sizeof(why), "%zu revoked serial(s), %d CRL(s)", list.n, sk_X509_CRL_num(out));
		e.reason = why;
		onb_audit_append(rc, &e, &ignored); /* the file is written: a lost entry is not fatal */
	}
	ret = report(cli, o.out, out);
cleanup:
	if(rc) redisFree(rc);
	onb_crl_list_free(&list);
	sk_X509_CRL_pop_free(out, X509_CRL_free);
	sk_X509_CRL_pop_free(previous, X509_CRL_free);
	return ret;
}

static const struct cli_cmd commands[] = { { "export", crl_export } };

int cmd_crl(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "crl", usage_crl, commands, sizeof(commands) / sizeof(commands[0]), argc, argv);
}
