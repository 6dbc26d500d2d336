/* onboardctl pki: the development PKI (init, issue) and certificate
 * fingerprints. Needs no registry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "cli.h"
#include "core/ids.h"
#include "pki/pki.h"
#include "pki/x509.h"

#define DEFAULT_DAYS 365

static const char usage_pki[] =
	"usage: onboardctl pki COMMAND [ARGS]\n"
	"\n"
	"Development PKI (EC P-256, OpenSSL 3). Production fleets bring their own CAs.\n"
	"\n"
	"commands:\n"
	"  init DIR [--force]      create the CA hierarchy, a broker certificate and\n"
	"                          ca-bundle.pem in DIR\n"
	"  issue --ca CA --cn CN --out PREFIX [--days N] [--tenant T]\n"
	"                          issue a client certificate signed by CA.pem/CA.key\n"
	"  fingerprint FILE        print the SHA-256 fingerprint of a PEM certificate\n"
	"\n"
	"'onboardctl pki COMMAND --help' describes a command.\n";

static const char usage_init[] =
	"usage: onboardctl pki init DIR [--force]\n"
	"\n"
	"Creates DIR (or uses it when empty) and writes:\n"
	"  root-ca.pem/.key          self-signed root, 20 years\n"
	"  device-ca.pem/.key        issues operational device certificates, 10 years\n"
	"  claim-ca.pem/.key         issues the shared provisioning-by-claim certificate\n"
	"  manufacturer-ca.pem/.key  issues per-device birth certificates\n"
	"  service-ca.pem/.key       issues claimsvc / back-end / admin certificates\n"
	"  server.pem/.key           broker certificate for localhost and 127.0.0.1,\n"
	"                            365 days, signed by service-ca (chain included)\n"
	"  ca-bundle.pem             root + the four issuing CAs, for mosquitto's cafile\n"
	"Private keys are unencrypted PKCS#8, mode 0600. Nothing is written unless\n"
	"every file can be written.\n"
	"\n"
	"  --force   overwrite the files above in a non-empty DIR (other files stay)\n";

static const char usage_issue[] =
	"usage: onboardctl pki issue --ca CA --cn CN --out PREFIX [--days N] [--tenant T]\n"
	"\n"
	"Generates an EC P-256 key and a client certificate (EKU clientAuth, 128-bit\n"
	"random serial, subject CN=CN) signed by CA.pem with CA.key, e.g.\n"
	"--ca pki/device-ca. Writes PREFIX.pem (certificate only) and PREFIX.key (0600);\n"
	"refuses when either exists. Prints the paths, serial, expiry and\n"
	"'fingerprint <sha256 hex>' (the registry's certificate binding).\n"
	"\n"
	"  --ca CA       path of the issuing CA without .pem/.key\n"
	"  --cn CN       subject common name, 1-64 printable ASCII characters\n"
	"  --out PREFIX  output path without .pem/.key\n"
	"  --days N      validity in days, 1-36500 (default 365; never beyond the CA's)\n"
	"  --tenant T    subject O=tenant:T: with --ca .../service-ca, a tenant's back-end\n"
	"                (its MQTT client id must be its CN, e.g. app-T; docs/claiming.md)\n";

static const char usage_fingerprint[] =
	"usage: onboardctl pki fingerprint FILE\n"
	"\n"
	"Prints the SHA-256 fingerprint (64 lower-case hex digits) of the first\n"
	"certificate in the PEM file FILE ('-' reads standard input).\n";

static int pki_init(struct cli *cli, int argc, char **argv)
{
	const char *dir = NULL;
	bool force = false;
	const struct cli_opt opts[] = { CLI_FLAG("--force", &force), CLI_END };
	int ret, npos;
	struct onb_err err;
	cJSON *obj = NULL, *files = NULL;
	size_t dl;
	const char *slash;
	int rc;

	ret = cli_parse(cli, "pki init", usage_init, opts, argc, argv, &dir, 1, &npos);
	if(ret >= 0) return ret;
	if(!dir) return cli_usage_error("pki init: DIR is required");
	rc = onb_pki_init(dir, force, &err);
	if(rc == ONB_EEXIST && !force){
		return cli_error("pki init: %s (--force overwrites the PKI files in it)", err.msg);
	}
	if(rc != ONB_OK) return cli_error("pki init: %s", err.msg);

	dl = strlen(dir);
	slash = (dl > 0 && dir[dl - 1] == '/') ? "" : "/";
	if(cli->json){
		obj = cJSON_CreateObject();
		if(!cJSON_AddStringToObject(obj, "dir", dir) || !(files = cJSON_AddArrayToObject(obj, "files"))){
			cJSON_Delete(obj);
			return cli_error("out of memory");
		}
	}
	for(size_t i = 0; onb_pki_init_files[i]; i++){
		const char *f = onb_pki_init_files[i];
		if(files){
			cJSON_AddItemToArray(files, cJSON_CreateString(f));
		}else{
			bool key = strstr(f, ".key") != NULL;
			printf("created %s%s%s%s\n", dir, slash, f, key ? " (mode 0600)" : "");
		}
	}
	if(obj) return cli_print_json(obj);
	printf("mosquitto.conf: cafile %s%sca-bundle.pem, certfile %s%sserver.pem, keyfile %s%sserver.key\n"
			"note: server.key is readable by its owner only; give it to the broker's user\n",
			dir, slash, dir, slash, dir, slash);
	return CLI_OK;
}

/* Reads back PREFIX.pem and prints what an operator or script needs. */
static int report_issued(struct cli *cli, const char *out_prefix)
{
	int ret = CLI_FAIL;
	struct onb_err err;
	char pem[4096], key[4096], fp[ONB_FP_HEXLEN + 1], serial[80], when[32] = "?";
	X509 *cert = NULL;
	int64_t na = 0;
	time_t t;
	struct tm tm;

	snprintf(pem, sizeof(pem), "%s.pem", out_prefix);
	snprintf(key, sizeof(key), "%s.key", out_prefix);
	cert = onb_cert_load(pem, &err);
	if(!cert) return cli_error("pki issue: wrote %s but cannot read it back: %s", pem, err.msg);
	if(onb_cert_fingerprint(cert, fp, &err) != ONB_OK
			|| onb_cert_serial_hex(cert, serial, sizeof(serial), &err) != ONB_OK
			|| onb_cert_not_after(cert, &na, &err) != ONB_OK){
		ret = cli_error("pki issue: %s", err.msg);
		goto cleanup;
	}
	t = (time_t)na;
	if(gmtime_r(&t, &tm)) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if(cli->json){
		cJSON *obj = cJSON_CreateObject();
		if(!cJSON_AddStringToObject(obj, "certificate", pem) || !cJSON_AddStringToObject(obj, "key", key)
				|| !cJSON_AddStringToObject(obj, "serial", serial)
				|| !cJSON_AddStringToObject(obj, "not_after", when)
				|| !cJSON_AddStringToObject(obj, "fingerprint", fp)){
			cJSON_Delete(obj);
			ret = cli_error("out of memory");
			goto cleanup;
		}
		ret = cli_print_json(obj);
		goto cleanup;
	}
	printf("certificate %s\nkey %s\nserial %s\nnot_after %s\nfingerprint %s\n",
			pem, key, serial, when, fp);
	ret = CLI_OK;
cleanup:
	X509_free(cert);
	return ret;
}

static int pki_issue(struct cli *cli, int argc, char **argv)
{
	const char *ca = NULL, *cn = NULL, *out = NULL, *tenant = NULL, *days_text = NULL;
	const struct cli_opt opts[] = {
		CLI_VALUE("--ca", &ca), CLI_VALUE("--cn", &cn), CLI_VALUE("--out", &out),
		CLI_VALUE("--days", &days_text), CLI_VALUE("--tenant", &tenant),
		CLI_END,
	};
	char org[ONB_CERT_CN_MAX + 1], shown[80];
	int days = DEFAULT_DAYS, ret, npos;
	struct onb_err err;

	ret = cli_parse(cli, "pki issue", usage_issue, opts, argc, argv, NULL, 0, &npos);
	if(ret >= 0) return ret;
	if(days_text && !cli_int(days_text, 1, ONB_CERT_DAYS_MAX, &days)){
		return cli_usage_error("pki issue: --days must be a whole number 1..%d, not '%s'",
				ONB_CERT_DAYS_MAX, cli_shown(days_text, shown, sizeof(shown)));
	}
	if(!ca || !cn || !out) return cli_usage_error("pki issue: --ca, --cn and --out are required");
	if(!onb_cert_cn_valid(cn)){
		return cli_usage_error("pki issue: --cn must be 1..%d printable ASCII characters",
				ONB_CERT_CN_MAX);
	}
	if(tenant){
		if(!onb_id_valid(tenant)) return cli_usage_error("pki issue: --tenant must be a valid id");
		snprintf(org, sizeof(org), "tenant:%s", tenant);
		if(strlen(tenant) + 7 > ONB_CERT_CN_MAX) return cli_usage_error("pki issue: --tenant too long");
	}
	if(onb_pki_issue_org(ca, cn, tenant ? org : NULL, out, days, &err) != ONB_OK){
		return cli_error("pki issue: %s", err.msg);
	}
	return report_issued(cli, out);
}

static int pki_fingerprint(struct cli *cli, int argc, char **argv)
{
	const char *file = NULL;
	struct onb_err err;
	char fp[ONB_FP_HEXLEN + 1];
	X509 *cert;
	int rc, npos;

	rc = cli_parse(cli, "pki fingerprint", usage_fingerprint, NULL, argc, argv, &file, 1, &npos);
	if(rc >= 0) return rc;
	if(!file) return cli_usage_error("pki fingerprint: FILE is required");
	cert = onb_cert_load(strcmp(file, "-") ? file : "/dev/stdin", &err);
	if(!cert) return cli_error("pki fingerprint: %s", err.msg);
	rc = onb_cert_fingerprint(cert, fp, &err);
	X509_free(cert);
	if(rc != ONB_OK) return cli_error("pki fingerprint: %s", err.msg);
	if(cli->json){
		cJSON *obj = cJSON_CreateObject();
		if(!cJSON_AddStringToObject(obj, "fingerprint", fp)){
			cJSON_Delete(obj);
			return cli_error("out of memory");
		}
		return cli_print_json(obj);
	}
	puts(fp);
	return CLI_OK;
}

/* "pki help" is older than --help and still works. */
static int pki_help(struct cli *cli, int argc, char **argv)
{
	fputs(usage_pki, stdout);
	return CLI_OK;
}

static const struct cli_cmd commands[] = {
	{ "init", pki_init },
	{ "issue", pki_issue },
	{ "fingerprint", pki_fingerprint },
	{ "help", pki_help },
};

int cmd_pki(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "pki", usage_pki, commands, sizeof(commands) / sizeof(commands[0]), argc, argv);
}
