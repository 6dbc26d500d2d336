/* onboardctl allowlist: import the manufacturing allowlist (CSV) as
 * `manufactured` devices. Everything goes through lib/provisioning/provreg.c; nothing here
 * knows a Redis key. Reading and checking the CSV is separate from sending:
 * each chunk of valid lines is one onb_allowlist_add call (pipelined). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"
#include "core/ids.h"
#include "provisioning/provreg.h"
#include "registry/registry.h"

#define CHUNK 1000            /* entries per onb_allowlist_add call */
#define LINE_MAX_LEN 1024     /* longer lines are invalid */
#define INVALID_SHOWN 20      /* invalid lines listed one by one */
#define REASON_LEN 160

static const char usage_allowlist[] =
	"usage: onboardctl [--redis URL] allowlist COMMAND [ARGS]\n"
	"\n"
	"The manufacturing allowlist: devices that may provision themselves\n"
	"(docs/registry.md). Listed devices are 'manufactured' records; see them with\n"
	"'onboardctl device show ID' or 'device list --state manufactured'.\n"
	"\n"
	"commands:\n"
	"  import FILE.csv [--batch NAME] [--prefix P] [--dry-run] [--json]\n"
	"                          add every serial of FILE as a manufactured device\n"
	"\n"
	"'onboardctl allowlist COMMAND --help' describes a command.\n";

static const char usage_import[] =
	"usage: onboardctl allowlist import FILE.csv [--batch NAME] [--prefix P] [--dry-run] [--json]\n"
	"\n"
	"Adds each line of FILE as a 'manufactured' device, unless a device with that\n"
	"id exists already (in any state): it is then counted as already present and\n"
	"left untouched, so an import can be re-run safely.\n"
	"\n"
	"FILE is CSV with up to three columns:\n"
	"  serial      the device's serial; PREFIX+serial becomes the device id and\n"
	"              must match [A-Za-z0-9._:-]{1,128}\n"
	"  birth_fp    optional: SHA-256 fingerprint of the device's birth (IDevID)\n"
	"              certificate, 64 hex digits (colons and upper case accepted);\n"
	"              in birth mode RegisterThing accepts only that certificate\n"
	"  batch       optional: manufacturing batch (at most 64 printable bytes)\n"
	"A first line starting with 'serial' is a header and skipped; so are blank\n"
	"lines and lines starting with '#'. Fields may be wrapped in double quotes.\n"
	"\n"
	"Invalid lines are reported with their line numbers (the first 20 on stderr,\n"
	"all in --json) and skipped; the valid ones are imported. Prints\n"
	"'added N, already present N, invalid N'. A progress bar is drawn on stderr\n"
	"when it is a terminal.\n"
	"\n"
	"  --batch NAME  batch for the lines whose batch column is empty\n"
	"  --prefix P    prepended to each serial to form the device id (the thing\n"
	"                name your provisioning template computes)\n"
	"  --dry-run     check the file only; nothing is written\n"
	"  --json        print the summary as JSON\n"
	"\n"
	"Exit status: 0 when every line was imported or already present, 1 when some\n"
	"line was invalid or the registry failed (devices written until then stay;\n"
	"re-run the import), 2 on a usage error.\n";

/* ------------------------------------------------------------ the CSV */

struct row {
	char id[ONB_ID_MAX + 1];
	char serial[ONB_ID_MAX + 1];
	char fp[ONB_FP_HEXLEN + 1];
	char batch[ONB_BATCH_MAX + 1];
};

struct bad_line {
	long line;
	char reason[REASON_LEN];
};

struct import {
	const char *batch;   /* --batch */
	const char *prefix;  /* --prefix, "" none */
	bool dry_run;
	bool seen_data;      /* a first content line was read (header check) */
	long lines;          /* lines read */
	long added, present, valid;
	long invalid;
	struct bad_line shown_bad[INVALID_SHOWN];
	struct bad_line *all_bad;  /* every invalid line, for --json (capped) */
	size_t nall_bad, cap_bad;
	bool json;
};

#define JSON_BAD_MAX 100000 /* invalid lines kept for --json */

static int note_bad(struct import *im, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records an invalid line; returns 0, or -1 when out of memory. */
static int note_bad(struct import *im, long line, const char *fmt, ...)
{
	struct bad_line b;
	va_list ap;

	b.line = line;
	va_start(ap, fmt);
	vsnprintf(b.reason, sizeof(b.reason), fmt, ap);
	va_end(ap);
	if(im->invalid < INVALID_SHOWN) im->shown_bad[im->invalid] = b;
	im->invalid++;
	if(im->json && im->nall_bad < JSON_BAD_MAX){
		if(im->nall_bad == im->cap_bad){
			size_t cap = im->cap_bad ? im->cap_bad * 2 : 64;
			struct bad_line *p = realloc(im->all_bad, cap * sizeof(*p));
			if(!p) return -1;
			im->all_bad = p;
			im->cap_bad = cap;
		}
		im->all_bad[im->nall_bad++] = b;
	}
	return 0;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Trims blanks and one pair of surrounding double quotes, in place. */
static char *trim(char *s)
{
	char *e;

	while(is_blank(*s)) s++;
	e = s + strlen(s);
	while(e > s && is_blank(e[-1])) *--e = '\0';
	if(e - s >= 2 && s[0] == '"' && e[-1] == '"'){
		e[-1] = '\0';
		s++;
	}
	return s;
}

/* A fingerprint as 64 lower-case hex digits: accepts upper case and the
 * colon-separated form (AB:CD:...). False when it is neither. */
static bool normalise_fp(const char *in, char out[ONB_FP_HEXLEN + 1])
{
	size_t n = 0, len = strlen(in);
	bool colons = len == ONB_FP_HEXLEN + ONB_FP_HEXLEN / 2 - 1;

	if(len != ONB_FP_HEXLEN && !colons) return false;
	for(size_t i = 0; i < len; i++){
		char c = in[i];
		if(colons && i % 3 == 2){
			if(c != ':') return false;
			continue;
		}
		if(c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
		if(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == ONB_FP_HEXLEN;
}

static bool batch_valid(const char *s)
{
	size_t n = 0;

	for(; s[n]; n++){
		unsigned char c = (unsigned char)s[n];
		if(n >= ONB_BATCH_MAX || c < 0x20 || c >= 0x7f) return false;
	}
	return true;
}

/* Parses one line (NUL-terminated, no newline). Returns 1 and fills row for
 * an entry, 0 for a line to skip (blank, comment, header, invalid: recorded
 * in im), -1 when out of memory. */
static int parse_line(struct import *im, long lineno, char *line, struct row *row)
{
	char *field[3], *p, b[80];
	int nf = 0;
	size_t plen;

	p = trim(line);
	if(!*p || *p == '#') return 0;
	/* split at commas: at most three columns */
	field[nf++] = p;
	for(char *c = p; *c; c++){
		if(*c != ',') continue;
		if(nf == 3) return note_bad(im, lineno, "more than 3 columns (serial, birth_fp, batch)");
		*c = '\0';
		field[nf++] = c + 1;
	}
	for(int i = 0; i < nf; i++) field[i] = trim(field[i]);
	if(!im->seen_data){
		im->seen_data = true;
		if(!strcasecmp(field[0], "serial")) return 0; /* the header */
	}

	if(!*field[0]) return note_bad(im, lineno, "empty serial");
	if(!onb_id_valid(field[0])){
		return note_bad(im, lineno, "serial '%s' is not a valid device id ([A-Za-z0-9._:-]{1,%d})",
				cli_shown(field[0], b, sizeof(b)), ONB_ID_MAX);
	}
	plen = strlen(im->prefix);
	if(plen + strlen(field[0]) > ONB_ID_MAX){
		return note_bad(im, lineno, "prefix + serial is longer than %d bytes", ONB_ID_MAX);
	}
	memcpy(row->id, im->prefix, plen);
	memcpy(row->id + plen, field[0], strlen(field[0]) + 1);
	memcpy(row->serial, field[0], strlen(field[0]) + 1);

	row->fp[0] = '\0';
	if(nf > 1 && *field[1] && !normalise_fp(field[1], row->fp)){
		return note_bad(im, lineno, "birth fingerprint '%s' is not 64 hex digits",
				cli_shown(field[1], b, sizeof(b)));
	}
	const char *batch = nf > 2 && *field[2] ? field[2] : im->batch ? im->batch : "";
	if(!batch_valid(batch)){
		return note_bad(im, lineno, "batch '%s' is not at most %d printable bytes",
				cli_shown(batch, b, sizeof(b)), ONB_BATCH_MAX);
	}
	memcpy(row->batch, batch, strlen(batch) + 1);
	return 1;
}

/* Reads one line of at most LINE_MAX_LEN bytes into buf (NUL-terminated,
 * without the newline or a trailing CR). Returns 1 for a line, 0 at the end
 * of the file, -1 for a line that is too long or holds a NUL (consumed). */
static int read_line(FILE *f, char buf[LINE_MAX_LEN + 1])
{
	size_t n = 0;
	bool bad = false;
	int c;

	while((c = getc_unlocked(f)) != EOF && c != '\n'){
		if(c == '\0' || n >= LINE_MAX_LEN){
			bad = true;
			continue;
		}
		buf[n++] = (char)c;
	}
	if(c == EOF && n == 0 && !bad) return 0;
	if(n > 0 && buf[n - 1] == '\r') n--;
	buf[n] = '\0';
	return bad ? -1 : 1;
}

/* ------------------------------------------------------------ progress */

struct progress {
	bool on;
	off_t total;
	int last_pct;
};

static void progress_draw(struct progress *pg, FILE *f, long lines, bool force)
{
	off_t at;
	int pct, w = 30, fill;

	if(!pg->on) return;
	at = ftello(f);
	pct = pg->total > 0 && at >= 0 ? (int)((double)at * 100.0 / (double)pg->total) : 0;
	if(pct > 100) pct = 100;
	if(!force && pct == pg->last_pct) return;
	pg->last_pct = pct;
	fill = pct * w / 100;
	fputs("\rimporting [", stderr);
	for(int i = 0; i < w; i++) fputc(i < fill ? '#' : ' ', stderr);
	fprintf(stderr, "] %3d%% %ld lines", pct, lines);
	fflush(stderr);
}

static void progress_clear(struct progress *pg)
{
	if(!pg->on) return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
}

/* ------------------------------------------------------------- sending */

static int send_chunk(redisContext *rc, struct import *im, const struct row *rows, size_t n,
		const struct onb_actor *actor, struct onb_err *err)
{
	struct onb_allow_entry entries[CHUNK];
	enum onb_allow_result results[CHUNK];
	int ret;

	if(n == 0) return ONB_OK;
	for(size_t i = 0; i < n; i++){
		entries[i].device_id = rows[i].id;
		entries[i].serial = rows[i].serial;
		entries[i].birth_fp = rows[i].fp[0] ? rows[i].fp : NULL;
		entries[i].batch = rows[i].batch[0] ? rows[i].batch : NULL;
	}
	ret = onb_allowlist_add(rc, entries, n, results, actor, err);
	if(ret != ONB_OK) return ret;
	for(size_t i = 0; i < n; i++){
		if(results[i] == ONB_ALLOW_ADDED) im->added++;
		else im->present++;
	}
	return ONB_OK;
}

/* ------------------------------------------------------------- summary */

static int print_summary(const struct import *im)
{
	if(im->json){
		cJSON *o = cJSON_CreateObject(), *arr = NULL;
		bool ok = o != NULL;

		if(ok && im->dry_run) ok = cJSON_AddTrueToObject(o, "dry_run") != NULL;
		ok = ok && cJSON_AddNumberToObject(o, "lines", (double)im->lines)
			&& cJSON_AddNumberToObject(o, im->dry_run ? "valid" : "added",
					(double)(im->dry_run ? im->valid : im->added))
			&& (im->dry_run || cJSON_AddNumberToObject(o, "present", (double)im->present))
			&& cJSON_AddNumberToObject(o, "invalid", (double)im->invalid)
			&& (arr = cJSON_AddArrayToObject(o, "invalid_lines")) != NULL;
		for(size_t i = 0; ok && i < im->nall_bad; i++){
			cJSON *b = cJSON_CreateObject();
			if(!b || !cJSON_AddItemToArray(arr, b)){
				cJSON_Delete(b);
				ok = false;
				break;
			}
			/* b belongs to arr now */
			ok = cJSON_AddNumberToObject(b, "line", (double)im->all_bad[i].line)
				&& cJSON_AddStringToObject(b, "reason", im->all_bad[i].reason);
		}
		if(!ok){
			cJSON_Delete(o);
			return cli_error("out of memory");
		}
		if(cli_print_json(o) != CLI_OK) return CLI_FAIL;
	}else if(im->dry_run){
		printf("dry run: valid %ld, invalid %ld (nothing written)\n", im->valid, im->invalid);
	}else{
		printf("added %ld, already present %ld, invalid %ld\n", im->added, im->present, im->invalid);
	}
	fflush(stdout);
	for(long i = 0; i < im->invalid && i < INVALID_SHOWN; i++){
		fprintf(stderr, "line %ld: %s\n", im->shown_bad[i].line, im->shown_bad[i].reason);
	}
	if(im->invalid > INVALID_SHOWN){
		fprintf(stderr, "... and %ld more invalid lines\n", im->invalid - INVALID_SHOWN);
	}
	return CLI_OK;
}

/* --------------------------------------------------------------- import */

static int do_import(struct cli *cli, int argc, char **argv)
{
	struct import im = { .prefix = "" };
	struct onb_actor actor = cli_actor(cli);
	struct progress pg = { .last_pct = -1 };
	struct row *rows = NULL;
	struct onb_err err;
	redisContext *rc = NULL;
	const char *path = NULL;
	char line[LINE_MAX_LEN + 1];
	size_t n = 0;
	FILE *f = NULL;
	int ret = CLI_FAIL, r;

	const char *prefix = NULL;
	const struct cli_opt opts[] = {
		CLI_VALUE("--batch", &im.batch), CLI_VALUE("--prefix", &prefix), CLI_FLAG("--dry-run", &im.dry_run),
		CLI_END,
	};
	int npos;
	r = cli_parse(cli, "allowlist import", usage_import, opts, argc, argv, &path, 1, &npos);
	if(r >= 0) return r;
	if(prefix) im.prefix = prefix;
	if(!path) return cli_usage_error("allowlist import: FILE is required");
	if(im.batch && !batch_valid(im.batch)){
		return cli_usage_error("allowlist import: --batch must be at most %d printable bytes", ONB_BATCH_MAX);
	}
	if(*im.prefix && !onb_id_valid(im.prefix)){
		return cli_usage_error("allowlist import: --prefix must match [A-Za-z0-9._:-]");
	}
	im.json = cli->json;

	f = fopen(path, "r");
	if(!f) return cli_error("allowlist import: %s: %s", path, strerror(errno));
	rows = calloc(CHUNK, sizeof(*rows));
	if(!rows){
		cli_error("out of memory");
		goto cleanup;
	}
	if(!im.dry_run){
		rc = cli_redis(cli);
		if(!rc) goto cleanup;
	}
	if(isatty(STDERR_FILENO)){
		struct stat st;
		pg.on = true;
		pg.total = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
	}

	for(;;){
		r = read_line(f, line);
		if(r == 0) break;
		im.lines++;
		if(r < 0){
			r = note_bad(&im, im.lines, "line longer than %d bytes or holds a NUL byte", LINE_MAX_LEN);
		}else{
			r = parse_line(&im, im.lines, line, &rows[n]);
		}
		if(r < 0){
			progress_clear(&pg);
			cli_error("out of memory");
			goto cleanup;
		}
		if(im.lines % CHUNK == 0) progress_draw(&pg, f, im.lines, false);
		if(r == 0) continue;
		im.valid++;
		if(im.dry_run) continue;
		if(++n == CHUNK){
			if(send_chunk(rc, &im, rows, n, &actor, &err) != ONB_OK) goto send_failed;
			n = 0;
		}
	}
	if(ferror(f)){
		progress_clear(&pg);
		cli_error("allowlist import: reading %s failed", path);
		goto cleanup;
	}
	if(!im.dry_run && send_chunk(rc, &im, rows, n, &actor, &err) != ONB_OK) goto send_failed;
	progress_draw(&pg, f, im.lines, true);
	progress_clear(&pg);

	if(print_summary(&im) != CLI_OK) goto cleanup;
	if(im.invalid > 0){
		cli_error("allowlist import: %ld invalid line%s skipped%s", im.invalid, im.invalid == 1 ? "" : "s",
				im.dry_run ? "" : "; the other lines were imported");
		goto cleanup;
	}
	ret = CLI_OK;
	goto cleanup;

send_failed:
	progress_clear(&pg);
	cli_error("allowlist import stopped at line %ld (added %ld, already present %ld so far): %s; "
			"re-run the import, present devices are left alone", im.lines, im.added, im.present, err.msg);
cleanup:
	if(rc) redisFree(rc);
	if(f) fclose(f);
	free(rows);
	free(im.all_bad);
	return ret;
}

static const struct cli_cmd commands[] = {
	{ "import", do_import },
};

int cmd_allowlist(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "allowlist", usage_allowlist, commands, sizeof(commands) / sizeof(commands[0]), argc, argv);
}
