/* onboardctl claimcode: issue claim codes and their QR labels, show and
 * revoke them, lift claim lockouts (docs/claiming.md). Codes come from
 * lib/claim/claimreg.c, renderings from lib/claim/qr.c. A code is printed once, at issue;
 * labels and the batch manifest are written with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "claim/claimcode.h"
#include "claim/claimreg.h"
#include "core/ids.h"
#include "claim/qr.h"

#define LINE_MAX_LEN 1024
#define SCALE_DEFAULT 8

static const char usage_claimcode[] =
	"usage: onboardctl [--redis URL] claimcode COMMAND [ARGS]\n"
	"\n"
	"Claim codes: the secret on a device's label that lets a tenant claim it\n"
	"(docs/claiming.md). Only a hash of each code is stored.\n"
	"\n"
	"commands:\n"
	"  issue --device ID [--ttl 90d] [--format txt|uri|png|svg] [--out FILE] [--link T]\n"
	"                          a new code for ID (its previous code stops working)\n"
	"  issue --batch FILE.csv --out DIR [--format png|svg] [--ttl 90d] [--prefix P] [--link T]\n"
	"                          one label per device of a manufacturing batch\n"
	"  show --device ID        status and expiry of ID's code (never the code)\n"
	"  revoke --device ID      make ID's code unusable\n"
	"  unlock [--tenant T] [--source S]\n"
	"                          lift a claim lockout after failed attempts\n"
	"\n"
	"'onboardctl claimcode COMMAND --help' describes a command.\n";

static const char usage_issue[] =
	"usage: onboardctl claimcode issue --device ID [--ttl DURATION] [--format txt|uri|png|svg]\n"
	"                                  [--out FILE] [--scale N] [--link TEMPLATE] [--json]\n"
	"       onboardctl claimcode issue --batch FILE.csv --out DIR [--format png|svg]\n"
	"                                  [--ttl DURATION] [--prefix P] [--scale N] [--link TEMPLATE] [--json]\n"
	"\n"
	"Draws a claim code (115 random bits and a check symbol, printed as\n"
	"XXXX-XXXX-XXXX-XXXX-XXXX-XXXX) and stores only its SHA-256. The device\n"
	"must exist (an allowlist import is enough: labels can be printed at\n"
	"manufacture) and have no tenant. A new code replaces the device's previous\n"
	"one. The code can be redeemed once the device is 'unclaimed'.\n"
	"\n"
	"  --ttl DURATION  lifetime: N followed by s, m, h or d (default 90d,\n"
	"                  at most 3650d); a bare number is seconds\n"
	"  --format F      txt (default): code, link (uri), expiry and the QR code\n"
	"                  drawn in the terminal; uri: the link alone; png, svg: the\n"
	"                  QR code of the link written to --out (the code and link\n"
	"                  are printed too)\n"
	"  --scale N       pixels per QR module in PNG and SVG output (default 8)\n"
	"  --link T        what the QR code holds: a link template with {device} and\n"
	"                  {code}, e.g. https://claim.example.com/c?d={device}&c={code}\n"
	"                  so that a phone camera opens the tenant's claim page\n"
	"                  (default: $ONBOARD_CLAIM_LINK, else\n"
	"                  " ONB_CC_LINK_DEFAULT ");\n"
	"                  https:// or mqtt-onboard:// only. A link whose query or\n"
	"                  fragment carries d= and c= is read back by 'onboardctl\n"
	"                  claim' and the MQTT claim API\n"
	"  --json          print {device, code, uri, expires} instead\n"
	"\n"
	"Batch: FILE.csv has the device serial in its first column (the allowlist\n"
	"import format: a 'serial' or 'device' header, blank and '#' lines are\n"
	"skipped; --prefix P as in 'allowlist import'). For each device DIR gets\n"
	"ID.png (the QR code alone) or ID.svg (a label: the QR code, the device id\n"
	"and the human code), and DIR/manifest.csv lists device, code, uri (quoted),\n"
	"expires and file, for label printers. Both hold secrets (mode 0600):\n"
	"destroy them once the labels are printed. A progress bar is drawn on\n"
	"stderr when it is a terminal.\n"
	"\n"
	"Exit status: 0 all issued, 1 some line or device failed (the rest are\n"
	"issued), 2 usage error.\n";

static const char usage_show[] =
	"usage: onboardctl claimcode show --device ID [--json]\n"
	"\n"
	"Prints the status of ID's current claim code: none, issued, expired, used\n"
	"(by which tenant, when), or revoked (by an operator, superseded by a newer\n"
	"code, or released), with its creation and expiry times and its id (the\n"
	"first 16 hex digits of its hash, as in audit entries). Never the code.\n";

static const char usage_revoke[] =
	"usage: onboardctl claimcode revoke --device ID\n"
	"\n"
	"Revokes ID's current claim code: redeeming it fails from now on.\n";

static const char usage_unlock[] =
	"usage: onboardctl claimcode unlock [--tenant T] [--source S]\n"
	"\n"
	"Lifts lockouts after repeated failed claims and resets their failure\n"
	"counts. Failures are counted per tenant and per tenant at a source (an\n"
	"address 'mqtt:ADDRESS', or an operator 'cli:user@host'); a source is\n"
	"never locked for every tenant. Audited.\n"
	"\n"
	"  --tenant T   T's own lockout, and T's at every source\n"
	"  --source S   every tenant's lockout at S (tenants' own lockouts stay)\n"
	"Both together lift both sets. At least one is required.\n";

/* ---------------------------------------------------------------- helpers */

/* Opens path for writing with mode 0600 (it will hold a secret). */
static FILE *open_secret(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f;

	if(fd < 0) return NULL;
	f = fdopen(fd, "wb");
	if(!f) close(fd);
	return f;
}

enum format { FMT_TXT, FMT_URI, FMT_PNG, FMT_SVG };

static int parse_format(const char *s, enum format *out)
{
	static const char *const names[] = { "txt", "uri", "png", "svg" };

	for(int i = 0; i < 4; i++){
		if(!strcmp(s, names[i])){
			*out = (enum format)i;
			return CLI_OK;
		}
	}
	return cli_usage_error("claimcode issue: --format is txt, uri, png or svg");
}

/* Renders the QR code of uri to path (png: the symbol; svg: a label with
 * line1 and line2 below it). */
static int write_qr(const char *uri, enum format fmt, int scale, const char *path,
		const char *line1, const char *line2, struct onb_err *err)
{
	struct onb_qr *q = NULL;
	FILE *f = NULL;
	int ret = onb_qr_encode(uri, &q, err);

	if(ret != ONB_OK) return ret;
	f = open_secret(path);
	if(!f){
		ret = onb_fail(err, ONB_EUNAVAIL, "cannot write %s: %s", path, strerror(errno));
		goto cleanup;
	}
	if(fmt == FMT_PNG) ret = onb_qr_write_png(q, scale, ONB_QR_QUIET, f, err);
	else if(line1 || line2) ret = onb_qr_write_label_svg(q, scale, line1, line2, f, err);
	else ret = onb_qr_write_svg(q, scale, ONB_QR_QUIET, f, err);
cleanup:
	if(f && fclose(f) != 0 && ret == ONB_OK) ret = onb_fail(err, ONB_EUNAVAIL, "cannot write %s: %s", path, strerror(errno));
	onb_qr_free(q);
	return ret;
}

/* ------------------------------------------------------------ issue one */

static int issue_one(struct cli *cli, const char *id, int64_t ttl, enum format fmt, const char *out, int scale,
		const char *link)
{
	struct onb_actor actor = cli_actor(cli);
	struct onb_claimcode_issued cc;
	char human[ONB_CC_HUMAN_LEN + 1], uri[ONB_CC_URI_MAX], t[40];
	struct onb_err err;
	redisContext *rc;
	int ret;

	rc = cli_redis(cli);
	if(!rc) return CLI_FAIL;
	ret = onb_claimcode_issue(rc, id, ttl, &actor, &cc, &err);
	if(ret != ONB_OK){
		redisFree(rc);
		return cli_fail(ret, &err);
	}
	onb_claimcode_human(cc.code, human);
	if(onb_claimcode_link(link, id, cc.code, uri, sizeof(uri), &err) != ONB_OK
			|| ((fmt == FMT_PNG || fmt == FMT_SVG) && write_qr(uri, fmt, scale, out, NULL, NULL, &err) != ONB_OK)){
		/* a code nobody can see must not stay valid */
		struct onb_err ignored;
		onb_claimcode_revoke(rc, id, &actor, &ignored);
		ret = cli_error("%s (the new code was revoked)", err.msg);
		goto cleanup;
	}
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !cJSON_AddStringToObject(o, "device", id) || !cJSON_AddStringToObject(o, "code", human)
				|| !cJSON_AddStringToObject(o, "uri", uri) || !cJSON_AddNumberToObject(o, "expires", (double)cc.expires_ms)
				|| (out && !cJSON_AddStringToObject(o, "file", out))){
			cJSON_Delete(o);
			ret = cli_error("out of memory");
			goto cleanup;
		}
		ret = cli_print_json(o);
		if(ret != CLI_OK) goto cleanup;
	}else if(fmt == FMT_URI){
		puts(uri);
	}else{
		printf("device:  %s\ncode:    %s\nuri:     %s\nexpires: %s\n", id, human, uri,
				cli_iso_time(cc.expires_ms, true, t, sizeof(t)));
		if(fmt == FMT_TXT){
			struct onb_qr *q = NULL;
			char *text = NULL;
			/* escape codes force black on white on a terminal; a plain
			 * rendering draws the light modules, right for dark backgrounds */
			bool ansi = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
			if(onb_qr_encode(uri, &q, &err) != ONB_OK || onb_qr_terminal(q, ONB_QR_QUIET, ansi, &text, &err) != ONB_OK){
				ret = cli_error("%s", err.msg);
				onb_qr_free(q);
				goto cleanup;
			}
			fputc('\n', stdout);
			fputs(text, stdout);
			OPENSSL_cleanse(text, strlen(text));
			free(text);
			onb_qr_free(q);
		}else{
			printf("wrote:   %s\n", out);
		}
	}
	ret = fflush(stdout) == 0 ? CLI_OK : cli_error("cannot write the code: %s", strerror(errno));
cleanup:
	OPENSSL_cleanse(&cc, sizeof(cc));
	OPENSSL_cleanse(human, sizeof(human));
	OPENSSL_cleanse(uri, sizeof(uri));
	redisFree(rc);
	return ret;
}

/* ---------------------------------------------------------- issue batch */

struct batch {
	const char *dir, *prefix, *link;
	enum format fmt;
	int scale;
	int64_t ttl;
	char **ids;      /* devices to issue, in file order */
	long *lines;     /* their line numbers */
	size_t n, cap;
	long bad;        /* invalid lines and failed devices */
};

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static char *trim(char *s)
{
	char *e;

	while(is_blank(*s)) s++;
	e = s + strlen(s);
	while(e > s && (is_blank(e[-1]) || e[-1] == '\r')) *--e = '\0';
	if(e - s >= 2 && s[0] == '"' && e[-1] == '"'){
		e[-1] = '\0';
		s++;
	}
	return s;
}

static int batch_add(struct batch *b, const char *id, long line)
{
	if(b->n == b->cap){
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char **ids = realloc(b->ids, cap * sizeof(*ids));
		if(!ids) return -1;
		b->ids = ids;
		long *lines = realloc(b->lines, cap * sizeof(*lines));
		if(!lines) return -1;
		b->lines = lines;
		b->cap = cap;
	}
	b->ids[b->n] = strdup(id);
	if(!b->ids[b->n]) return -1;
	b->lines[b->n++] = line;
	return 0;
}

struct idx {
	const char *id;
	size_t i;
};

static int cmp_idx(const void *a, const void *b)
{
	const struct idx *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

/* Reads FILE: every valid id once; invalid and repeated lines reported. */
static int batch_read(struct batch *b, const char *path)
{
	char buf[LINE_MAX_LEN + 2];
	bool seen = false;
	long lineno = 0;
	FILE *f = fopen(path, "r");

	if(!f) return cli_error("cannot open %s: %s", path, strerror(errno));
	while(fgets(buf, sizeof(buf), f)){
		char id[ONB_ID_MAX + 1], *p, *comma;
		size_t plen = strlen(b->prefix), n = strlen(buf);

		lineno++;
		if(n && buf[n - 1] != '\n' && !feof(f)){
			int c;
			while((c = getc(f)) != EOF && c != '\n'){}
			fprintf(stderr, "line %ld: longer than %d bytes\n", lineno, LINE_MAX_LEN);
			b->bad++;
			continue;
		}
		if(n && buf[n - 1] == '\n') buf[n - 1] = '\0';
		p = trim(buf);
		if(!*p || *p == '#') continue;
		comma = strchr(p, ',');
		if(comma) *comma = '\0';
		p = trim(p);
		if(!seen){
			seen = true;
			if(!strcasecmp(p, "serial") || !strcasecmp(p, "device")) continue;
		}
		if(!onb_id_valid(p) || plen + strlen(p) > ONB_ID_MAX){
			fprintf(stderr, "line %ld: not a valid device id ([A-Za-z0-9._:-]{1,%d} with the prefix)\n",
					lineno, ONB_ID_MAX);
			b->bad++;
			continue;
		}
		memcpy(id, b->prefix, plen);
		memcpy(id + plen, p, strlen(p) + 1);
		if(batch_add(b, id, lineno) != 0){
			fclose(f);
			return cli_error("out of memory");
		}
	}
	fclose(f);
	/* a device listed twice would get two codes, the first dead: refuse */
	struct idx *idx = malloc((b->n ? b->n : 1) * sizeof(*idx));
	if(!idx) return cli_error("out of memory");
	for(size_t i = 0; i < b->n; i++){
		idx[i].id = b->ids[i];
		idx[i].i = i;
	}
	qsort(idx, b->n, sizeof(*idx), cmp_idx);
	for(size_t i = 1, first = 0; i < b->n; i++){
		if(strcmp(idx[i].id, idx[first].id) != 0){
			first = i;
			continue;
		}
		fprintf(stderr, "line %ld: device %s listed again (first on line %ld)\n", b->lines[idx[i].i],
				idx[i].id, b->lines[idx[first].i]);
		b->bad++;
	}
	for(size_t i = 1, first = 0; i < b->n; i++){
		if(strcmp(idx[i].id, idx[first].id) != 0) first = i;
		else b->ids[idx[i].i][0] = '\0'; /* skipped */
	}
	free(idx);
	return CLI_OK;
}

static void progress(bool on, size_t done, size_t total, int *last)
{
	int pct = total ? (int)(done * 100 / total) : 100, w = 30;

	if(!on || pct == *last) return;
	*last = pct;
	fputs("\rissuing [", stderr);
	for(int i = 0; i < w; i++) fputc(i < pct * w / 100 ? '#' : ' ', stderr);
	fprintf(stderr, "] %3d%% %zu/%zu", pct, done, total);
	fflush(stderr);
}

static int issue_batch(struct cli *cli, const char *file, struct batch *b)
{
	struct onb_actor actor = cli_actor(cli);
	char path[4096], t[40];
	bool tty = isatty(STDERR_FILENO);
	size_t issued = 0;
	int last = -1, ret = CLI_FAIL;
	redisContext *rc = NULL;
	FILE *manifest = NULL;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if(batch_read(b, file) != CLI_OK) return CLI_FAIL;
	if(mkdir(b->dir, 0700) != 0 && errno != EEXIST) return cli_error("cannot create %s: %s", b->dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/manifest.csv", b->dir);
	manifest = open_secret(path);
	if(!manifest) return cli_error("cannot write %s: %s", path, strerror(errno));
	fputs("device,code,uri,expires,file\n", manifest);
	if(!(rc = cli_redis(cli))) goto cleanup;
	for(size_t i = 0; i < b->n; i++){
		struct onb_claimcode_issued cc;
		char human[ONB_CC_HUMAN_LEN + 1], uri[ONB_CC_URI_MAX], name[ONB_ID_MAX + 8];
		struct onb_err err;
		const char *id = b->ids[i];
		int r;

		progress(tty, i, b->n, &last);
		if(!id[0]) continue;
		r = onb_claimcode_issue(rc, id, b->ttl, &actor, &cc, &err);
		if(r == ONB_EUNAVAIL){
			if(tty) fputc('\n', stderr);
			cli_error("registry unavailable: %s (%zu labels written; re-run for the rest)", err.msg, issued);
			goto cleanup;
		}
		if(r != ONB_OK){
			if(tty) fputs("\r\033[K", stderr);
			fprintf(stderr, "line %ld: %s\n", b->lines[i], err.msg);
			b->bad++;
			continue;
		}
		onb_claimcode_human(cc.code, human);
		snprintf(name, sizeof(name), "%s.%s", id, b->fmt == FMT_PNG ? "png" : "svg");
		snprintf(path, sizeof(path), "%s/%s", b->dir, name);
		r = onb_claimcode_link(b->link, id, cc.code, uri, sizeof(uri), &err);
		if(r == ONB_OK) r = write_qr(uri, b->fmt, b->scale, path, id, human, &err);
		if(r == ONB_OK){
			fprintf(manifest, "%s,%s,\"%s\",%s,%s\n", id, human, uri, cli_iso_time(cc.expires_ms, true, t, sizeof(t)), name);
			issued++;
		}else{
			struct onb_err ignored;
			onb_claimcode_revoke(rc, id, &actor, &ignored);
			if(tty) fputs("\r\033[K", stderr);
			fprintf(stderr, "line %ld: %s (code revoked)\n", b->lines[i], err.msg);
			b->bad++;
		}
		OPENSSL_cleanse(&cc, sizeof(cc));
		OPENSSL_cleanse(human, sizeof(human));
		OPENSSL_cleanse(uri, sizeof(uri));
	}
	progress(tty, b->n, b->n, &last);
	if(tty) fputs("\r\033[K", stderr);
	ret = CLI_OK;
cleanup:
	if(fclose(manifest) != 0 && ret == CLI_OK) ret = cli_error("cannot write the manifest: %s", strerror(errno));
	if(rc) redisFree(rc);
	if(ret != CLI_OK) return ret;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o || !cJSON_AddNumberToObject(o, "issued", (double)issued) || !cJSON_AddNumberToObject(o, "failed", (double)b->bad)
				|| !cJSON_AddStringToObject(o, "dir", b->dir)
				|| !cJSON_AddNumberToObject(o, "seconds", (double)(long long)(secs * 100 + 0.5) / 100)){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		if(cli_print_json(o) != CLI_OK) return CLI_FAIL;
	}else{
		printf("issued %zu labels in %s (manifest.csv) in %.1f s, %ld failed\n", issued, b->dir, secs, b->bad);
	}
	if(b->bad) return cli_error("claimcode issue: %ld lines or devices failed", b->bad);
	return CLI_OK;
}

/* ----------------------------------------------------------------- issue */

static int do_issue(struct cli *cli, int argc, char **argv)
{
	const char *device = NULL, *batch = NULL, *ttl_s = NULL, *format = NULL, *out = NULL, *prefix = NULL;
	const char *scale_s = NULL, *link = getenv("ONBOARD_CLAIM_LINK"), *pos[1];
	const struct cli_opt opts[] = {
		CLI_VALUE("--device", &device), CLI_VALUE("--batch", &batch), CLI_VALUE("--ttl", &ttl_s),
		CLI_VALUE("--format", &format), CLI_VALUE("--out", &out), CLI_VALUE("--prefix", &prefix),
		CLI_VALUE("--scale", &scale_s), CLI_VALUE("--link", &link), CLI_END,
	};
	enum format fmt = FMT_TXT;
	int64_t ttl = ONB_CC_TTL_DEFAULT_MS;
	int npos, ret, scale = SCALE_DEFAULT;

	ret = cli_parse(cli, "claimcode issue", usage_issue, opts, argc, argv, pos, 0, &npos);
	if(ret >= 0) return ret;
	if(!device == !batch) return cli_usage_error("claimcode issue: one of --device ID or --batch FILE is required");
	if(ttl_s && !onb_duration_parse(ttl_s, ONB_CC_TTL_MAX_MS, &ttl)){
		return cli_usage_error("claimcode issue: --ttl wants N followed by s, m, h or d, at most 3650d");
	}
	if(format && parse_format(format, &fmt) != CLI_OK) return CLI_USAGE;
	if(scale_s && !cli_int(scale_s, 1, ONB_QR_SCALE_MAX, &scale)){
		return cli_usage_error("claimcode issue: --scale must be 1..%d", ONB_QR_SCALE_MAX);
	}
	if(prefix && !batch) return cli_usage_error("claimcode issue: --prefix goes with --batch");
	if(link && !*link) link = NULL;
	if(link){
		struct onb_err err;
		if(onb_claimcode_link_check(link, &err) != ONB_OK) return cli_usage_error("claimcode issue: %s", err.msg);
	}
	if(batch){
		struct batch b = { .dir = out, .prefix = prefix ? prefix : "", .link = link, .scale = scale, .ttl = ttl };
		if(!out) return cli_usage_error("claimcode issue --batch needs --out DIR");
		if(format && fmt != FMT_PNG && fmt != FMT_SVG) return cli_usage_error("claimcode issue --batch: --format is png or svg");
		b.fmt = format ? fmt : FMT_PNG;
		ret = issue_batch(cli, batch, &b);
		for(size_t i = 0; i < b.n; i++) free(b.ids[i]);
		free(b.ids);
		free(b.lines);
		return ret;
	}
	if(!onb_id_valid(device)) return cli_error("claimcode issue: invalid device id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	if((fmt == FMT_PNG || fmt == FMT_SVG) != (out != NULL)){
		return cli_usage_error("claimcode issue: --out FILE goes with --format png or svg (and only with them)");
	}
	return issue_one(cli, device, ttl, fmt, out, scale, link);
}

/* ------------------------------------------------------ show, revoke, unlock */

/* What show and revoke do to the device's code in the registry. */
typedef int (*device_op)(redisContext *rc, const char *device, void *arg, struct onb_err *err);

static int show_op(redisContext *rc, const char *device, void *info, struct onb_err *err)
{
	return onb_claimcode_show(rc, device, info, err);
}

static int revoke_op(redisContext *rc, const char *device, void *actor, struct onb_err *err)
{
	return onb_claimcode_revoke(rc, device, actor, err);
}

/* show and revoke name one device, by --device ID or as their one argument
 * (*device must be NULL on entry), and run op on it over a fresh registry
 * connection. Returns -1 when op succeeded (the caller reports), else the
 * exit code. */
static int on_device(struct cli *cli, const char *cmd, const char *usage, int argc, char **argv,
		const char **device, device_op op, void *arg)
{
	const char *pos[1];
	const struct cli_opt opts[] = { CLI_VALUE("--device", device), CLI_END };
	struct onb_err err;
	redisContext *rc;
	int npos, ret;

	ret = cli_parse(cli, cmd, usage, opts, argc, argv, pos, 1, &npos);
	if(ret >= 0) return ret;
	if(!*device && npos == 1) *device = pos[0];
	if(!*device) return cli_usage_error("%s: --device ID is required", cmd);
	if(!onb_id_valid(*device)) return cli_error("%s: invalid device id", cmd);
	if(!(rc = cli_redis(cli))) return CLI_FAIL;
	ret = op(rc, *device, arg, &err);
	redisFree(rc);
	return ret == ONB_OK ? -1 : cli_fail(ret, &err);
}

static int do_show(struct cli *cli, int argc, char **argv)
{
	const char *device = NULL;
	struct onb_claimcode_info i;
	char t[40];
	int ret;

	ret = on_device(cli, "claimcode show", usage_show, argc, argv, &device, show_op, &i);
	if(ret >= 0) return ret;
	if(cli->json){
		cJSON *o = cJSON_CreateObject();
		if(!o) return cli_error("out of memory");
		cJSON_AddStringToObject(o, "device", device);
		cJSON_AddStringToObject(o, "status", i.status);
		if(i.id[0]) cJSON_AddStringToObject(o, "id", i.id);
		if(i.reason[0]) cJSON_AddStringToObject(o, "reason", i.reason);
		if(i.tenant[0]) cJSON_AddStringToObject(o, "tenant", i.tenant);
		if(i.created_ms) cJSON_AddNumberToObject(o, "created", (double)i.created_ms);
		if(i.expires_ms) cJSON_AddNumberToObject(o, "expires", (double)i.expires_ms);
		if(i.used_ms) cJSON_AddNumberToObject(o, "used", (double)i.used_ms);
		if(i.revoked_ms) cJSON_AddNumberToObject(o, "revoked", (double)i.revoked_ms);
		return cli_print_json(o);
	}
	printf("device:  %s\nstatus:  %s%s%s%s\n", device, i.status, i.reason[0] ? " (" : "", i.reason,
			i.reason[0] ? ")" : "");
	if(i.id[0]) printf("code id: %s\n", i.id);
	if(i.created_ms) printf("created: %s\n", cli_iso_time(i.created_ms, true, t, sizeof(t)));
	if(i.expires_ms) printf("expires: %s\n", cli_iso_time(i.expires_ms, true, t, sizeof(t)));
	if(i.used_ms) printf("used:    %s by tenant %s\n", cli_iso_time(i.used_ms, true, t, sizeof(t)), i.tenant);
	if(i.revoked_ms) printf("revoked: %s\n", cli_iso_time(i.revoked_ms, true, t, sizeof(t)));
	return CLI_OK;
}

static int do_revoke(struct cli *cli, int argc, char **argv)
{
	const char *device = NULL;
	struct onb_actor actor = cli_actor(cli);
	int ret;

	ret = on_device(cli, "claimcode revoke", usage_revoke, argc, argv, &device, revoke_op, &actor);
	if(ret >= 0) return ret;
	printf("%s: claim code revoked\n", device);
	return CLI_OK;
}

static int do_unlock(struct cli *cli, int argc, char **argv)
{
	const char *tenant = NULL, *source = NULL, *pos[1];
	const struct cli_opt opts[] = {
		CLI_VALUE("--tenant", &tenant), CLI_VALUE("--source", &source), CLI_END,
	};
	struct onb_actor actor = cli_actor(cli);
	struct onb_err err;
	redisContext *rc;
	int npos, ret, cleared = 0;

	ret = cli_parse(cli, "claimcode unlock", usage_unlock, opts, argc, argv, pos, 0, &npos);
	if(ret >= 0) return ret;
	if(!tenant && !source) return cli_usage_error("claimcode unlock: --tenant T or --source S is required");
	if(!(rc = cli_redis(cli))) return CLI_FAIL;
	ret = onb_claim_unlock(rc, tenant, source, &actor, &cleared, &err);
	redisFree(rc);
	if(ret != ONB_OK) return cli_fail(ret, &err);
	printf("%s\n", cleared ? "lockout and failure count cleared" : "nothing was locked");
	return CLI_OK;
}

static const struct cli_cmd commands[] = {
	{ "issue", do_issue }, { "show", do_show }, { "revoke", do_revoke }, { "unlock", do_unlock },
};

int cmd_claimcode(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "claimcode", usage_claimcode, commands, sizeof(commands) / sizeof(commands[0]), argc, argv);
}
