/* QR rendering (lib/claim/qr.c): PNG decoded by an independent decoder (zbarimg
 * from zbar-tools), SVG and terminal renderings read back module by module. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "claim/claimcode.h"
#include "claim/qr.h"

static char tmpdir[512];

static int setup_dir(void **state)
{
	const char *base = getenv("ONB_TEST_TMP");
	(void)state;

	if(!base || !*base) base = "/tmp";
	mkdir(base, 0700);
	snprintf(tmpdir, sizeof(tmpdir), "%s/qr-XXXXXX", base);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	return rmdir(tmpdir) == 0 ? 0 : -1;
}

static struct onb_qr *encode(const char *text)
{
	struct onb_qr *q = NULL;
	struct onb_err err;
	if(onb_qr_encode(text, &q, &err) != ONB_OK) fail_msg("encode: %s", err.msg);
	return q;
}

/* A claim URI with a fresh code for device id. */
static void claim_uri(const char *id, char uri[ONB_CC_URI_MAX])
{
	char code[ONB_CC_SYMBOLS + 1];
	struct onb_err err;

	assert_int_equal(onb_claimcode_generate(code, &err), ONB_OK);
	assert_int_equal(onb_claimcode_link(NULL, id, code, uri, ONB_CC_URI_MAX, &err), ONB_OK);
}

/* Runs zbarimg on path; returns its output without the final newline
 * (static buffer), or NULL when zbarimg found nothing. */
static const char *zbar(const char *path)
{
	static char out[4096];
	char cmd[1024];
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "zbarimg --raw -q '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	if(!p) fail_msg("popen: %s", strerror(errno));
	n = fread(out, 1, sizeof(out) - 1, p);
	pclose(p);
	out[n] = '\0';
	if(n && out[n - 1] == '\n') out[--n] = '\0';
	return n ? out : NULL;
}

static bool have_zbar(void)
{
	if(system("command -v zbarimg >/dev/null 2>&1") == 0) return true;
	if(getenv("ONB_SKIP_ZBAR")) return false;
	fail_msg("zbarimg is not installed (Debian: zbar-tools); set ONB_SKIP_ZBAR=1 to skip");
	return false;
}

/* Reads the width and height of a PNG file from its IHDR chunk. */
static void png_size(const char *path, unsigned *w, unsigned *h)
{
	unsigned char b[24];
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	assert_int_equal(fread(b, 1, sizeof(b), f), sizeof(b));
	fclose(f);
	assert_memory_equal(b, "\x89PNG\r\n\x1a\n", 8);
	assert_memory_equal(b + 12, "IHDR", 4);
	*w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
	*h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
}

/* --------------------------------------------------------------------- PNG */

static void png_decodes_to_uri(void **state)
{
	char uri[ONB_CC_URI_MAX], longid[ONB_ID_MAX + 1], path[600];
	static const int scales[] = { 2, 4, 8 };
	struct onb_err err;
	(void)state;

	if(!have_zbar()) skip();
	memset(longid, 'Z', ONB_ID_MAX);
	longid[ONB_ID_MAX] = '\0';
	memcpy(longid, "sn-", 3);
	snprintf(path, sizeof(path), "%s/label.png", tmpdir);
	for(int t = 0; t < 6; t++){
		struct onb_qr *q;
		unsigned w, h;
		FILE *f;
		int scale = scales[t % 3];

		claim_uri(t < 3 ? "dev-1" : longid, uri);
		q = encode(uri);
		f = fopen(path, "wb");
		assert_non_null(f);
		if(onb_qr_write_png(q, scale, ONB_QR_QUIET, f, &err) != ONB_OK) fail_msg("png: %s", err.msg);
		assert_int_equal(fclose(f), 0);
		png_size(path, &w, &h);
		assert_int_equal(w, (unsigned)((onb_qr_width(q) + 2 * ONB_QR_QUIET) * scale));
		assert_int_equal(h, w);
		const char *got = zbar(path);
		if(!got) fail_msg("zbarimg read nothing at scale %d (width %d)", scale, onb_qr_width(q));
		assert_string_equal(got, uri);
		onb_qr_free(q);
	}
	unlink(path);
}

static void bad_arguments(void **state)
{
	char big[ONB_QR_TEXT_MAX + 2];
	struct onb_qr *q = encode("x"), *none = NULL;
	struct onb_err err;
	char *text = NULL;
	FILE *f = fopen("/dev/null", "wb");
	(void)state;

	assert_non_null(f);
	assert_int_equal(onb_qr_write_png(q, 0, 4, f, &err), ONB_EINVAL);
	assert_int_equal(onb_qr_write_png(q, ONB_QR_SCALE_MAX + 1, 4, f, &err), ONB_EINVAL);
	assert_int_equal(onb_qr_write_svg(q, 4, ONB_QR_QUIET_MAX + 1, f, &err), ONB_EINVAL);
	assert_int_equal(onb_qr_write_svg(q, 4, -1, f, &err), ONB_EINVAL);
	assert_int_equal(onb_qr_terminal(q, -1, false, &text, &err), ONB_EINVAL);
	assert_int_equal(onb_qr_encode("", &none, &err), ONB_EINVAL);
	assert_int_equal(onb_qr_encode(NULL, &none, &err), ONB_EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(onb_qr_encode(big, &none, &err), ONB_EINVAL);
	assert_null(none);
	/* the largest accepted text still fits a level-M symbol */
	big[ONB_QR_TEXT_MAX] = '\0';
	assert_int_equal(onb_qr_encode(big, &none, &err), ONB_OK);
	onb_qr_free(none);
	/* a write error is reported */
	FILE *full = fopen("/dev/full", "wb");
	if(full){
		assert_int_not_equal(onb_qr_write_png(q, 8, 4, full, &err), ONB_OK);
		fclose(full);
	}
	fclose(f);
	onb_qr_free(q);
}

/* --------------------------------------------------------------------- SVG */

/* Renders to a string with fn (via a temp file). */
static char *svg_string(const struct onb_qr *q, bool label, const char *l1, const char *l2)
{
	char path[600], *buf;
	struct onb_err err;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/qr.svg", tmpdir);
	f = fopen(path, "w+b");
	assert_non_null(f);
	if(label) assert_int_equal(onb_qr_write_label_svg(q, 4, l1, l2, f, &err), ONB_OK);
	else assert_int_equal(onb_qr_write_svg(q, 4, ONB_QR_QUIET, f, &err), ONB_OK);
	n = ftell(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	return buf;
}

/* Reads the path data back into modules and compares with the symbol. */
static void svg_matches(const struct onb_qr *q, const char *svg, int quiet)
{
	int w = onb_qr_width(q);
	const char *d = strstr(svg, " d=\"");
	char *mods = calloc((size_t)w * (size_t)w, 1);

	assert_non_null(d);
	assert_non_null(mods);
	assert_null(strstr(d + 1, " d=\"")); /* one path */
	d += 4;
	while(*d == 'M'){
		int x, y, n, n2, used = 0;
		if(sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &n, &n2, &used) != 4 || !used) fail_msg("path at %.20s", d);
		assert_int_equal(n, n2);
		assert_true(n > 0);
		for(int i = 0; i < n; i++){
			int mx = x - quiet + i, my = y - quiet;
			assert_true(mx >= 0 && mx < w && my >= 0 && my < w);
			mods[my * w + mx] = 1;
		}
		d += used;
	}
	assert_int_equal(*d, '"');
	for(int y = 0; y < w; y++){
		for(int x = 0; x < w; x++) assert_int_equal(mods[y * w + x], onb_qr_dark(q, x, y));
	}
	free(mods);
}

static void svg_is_the_symbol(void **state)
{
	char uri[ONB_CC_URI_MAX], want[128];
	struct onb_qr *q;
	char *svg;
	int side;
	(void)state;

	claim_uri("dev-1", uri);
	q = encode(uri);
	side = onb_qr_width(q) + 2 * ONB_QR_QUIET;
	svg = svg_string(q, false, NULL, NULL);
	assert_int_equal(strncmp(svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44), 0);
	snprintf(want, sizeof(want), "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\"", side * 4, side * 4, side, side);
	assert_non_null(strstr(svg, want));
	assert_non_null(strstr(svg, "</svg>\n"));
	svg_matches(q, svg, ONB_QR_QUIET);
	free(svg);

	/* the label: the same symbol, then the two lines, escaped */
	svg = svg_string(q, true, "dev-1", "7K2Q-M9XD-A4TR-0HZP-C8VW-N3B0");
	svg_matches(q, svg, ONB_QR_QUIET);
	assert_non_null(strstr(svg, ">dev-1</text>"));
	assert_non_null(strstr(svg, ">7K2Q-M9XD-A4TR-0HZP-C8VW-N3B0</text>"));
	free(svg);
	svg = svg_string(q, true, "<a&b>\"'", "x\x01y");
	assert_non_null(strstr(svg, ">&lt;a&amp;b&gt;&quot;&apos;</text>"));
	assert_non_null(strstr(svg, ">x?y</text>"));
	assert_null(strstr(svg, "<a&b>"));
	free(svg);
	onb_qr_free(q);
}

/* ---------------------------------------------------------------- terminal */

/* Decodes one UTF-8 half-block cell at *p: bit 0 upper ink, bit 1 lower ink. */
static int cell_at(const char **p)
{
	if(**p == ' '){
		(*p)++;
		return 0;
	}
	if(!strncmp(*p, "\xe2\x96\x80", 3)){ *p += 3; return 1; }
	if(!strncmp(*p, "\xe2\x96\x84", 3)){ *p += 3; return 2; }
	if(!strncmp(*p, "\xe2\x96\x88", 3)){ *p += 3; return 3; }
	fail_msg("unexpected byte 0x%02x in the terminal rendering", (unsigned char)**p);
	return -1;
}

static void terminal_rendering(void **state)
{
	char uri[ONB_CC_URI_MAX];
	struct onb_err err;
	struct onb_qr *q;
	(void)state;

	claim_uri("dev-1", uri);
	q = encode(uri);
	for(int quiet = 0; quiet <= 4; quiet += 1){
		for(int ansi = 0; ansi < 2; ansi++){
			int side = onb_qr_width(q) + 2 * quiet, lines = 0;
			char *text = NULL;
			const char *p;

			assert_int_equal(onb_qr_terminal(q, quiet, ansi, &text, &err), ONB_OK);
			assert_true(strlen(text) > 0);
			p = text;
			while(*p){
				if(ansi){
					assert_int_equal(strncmp(p, "\x1b[30;47m", 8), 0);
					p += 8;
				}
				for(int x = 0; x < side; x++){
					int k = cell_at(&p);
					int top = 2 * lines, bottom = top + 1;
					bool dt = onb_qr_dark(q, x - quiet, top - quiet);
					bool db = onb_qr_dark(q, x - quiet, bottom - quiet);
					/* ansi: ink = dark modules; plain: ink = light modules */
					assert_int_equal(k & 1, ansi ? dt : !dt);
					if(bottom < side) assert_int_equal((k >> 1) & 1, ansi ? db : !db);
					else assert_int_equal(k & 2, 0);
				}
				if(ansi){
					assert_int_equal(strncmp(p, "\x1b[0m", 4), 0);
					p += 4;
				}
				assert_int_equal(*p, '\n');
				p++;
				lines++;
			}
			assert_int_equal(lines, (side + 1) / 2);
			free(text);
		}
	}
	onb_qr_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(png_decodes_to_uri),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(svg_is_the_symbol),
		cmocka_unit_test(terminal_rendering),
	};
	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
