/* QR codes: libqrencode for the symbol, libpng for PNG, a few fixed SVG
 * tags, UTF-8 half blocks for terminals (contract: claim/qr.h). */
#include "claim/qr.h"

#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <qrencode.h>

struct onb_qr {
	int width;
	unsigned char dark[]; /* width * width, 1 for a dark module */
};

int onb_qr_encode(const char *text, struct onb_qr **out, struct onb_err *err)
{
	struct onb_qr *q;
	QRcode *code;
	size_t n;

	if(!text || !*text) return onb_fail(err, ONB_EINVAL, "QR: nothing to encode");
	if(strnlen(text, ONB_QR_TEXT_MAX + 1) > ONB_QR_TEXT_MAX){
		return onb_fail(err, ONB_EINVAL, "QR: text longer than %d bytes", ONB_QR_TEXT_MAX);
	}
	/* mixed modes, case kept: upper-case runs such as a code go alphanumeric */
	code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if(!code) return onb_fail(err, ONB_EINTERNAL, "QR: encoding failed (%s)", strerror(errno));
	n = (size_t)code->width * (size_t)code->width;
	q = malloc(sizeof(*q) + n);
	if(!q){
		QRcode_free(code);
		return onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	q->width = code->width;
	for(size_t i = 0; i < n; i++) q->dark[i] = code->data[i] & 1;
	QRcode_free(code);
	*out = q;
	return ONB_OK;
}

void onb_qr_free(struct onb_qr *q)
{
	free(q);
}

int onb_qr_width(const struct onb_qr *q)
{
	return q->width;
}

bool onb_qr_dark(const struct onb_qr *q, int x, int y)
{
	if(x < 0 || y < 0 || x >= q->width || y >= q->width) return false;
	return q->dark[(size_t)y * (size_t)q->width + (size_t)x] != 0;
}

static int check_args(const struct onb_qr *q, int scale, int quiet, FILE *f, struct onb_err *err)
{
	if(!q || !f) return onb_fail(err, ONB_EINVAL, "QR: nothing to write");
	if(scale < 1 || scale > ONB_QR_SCALE_MAX) return onb_fail(err, ONB_EINVAL, "QR: scale must be 1..%d", ONB_QR_SCALE_MAX);
	if(quiet < 0 || quiet > ONB_QR_QUIET_MAX) return onb_fail(err, ONB_EINVAL, "QR: quiet zone must be 0..%d", ONB_QR_QUIET_MAX);
	return ONB_OK;
}

static int finish_file(FILE *f, const char *what, struct onb_err *err)
{
	if(fflush(f) != 0 || ferror(f)) return onb_fail(err, ONB_EUNAVAIL, "%s: write failed: %s", what, strerror(errno));
	return ONB_OK;
}

/* ------------------------------------------------------------------- PNG */

struct png_errctx {
	char msg[128];
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
	struct png_errctx *e = png_get_error_ptr(png);

	snprintf(e->msg, sizeof(e->msg), "%s", msg ? msg : "libpng error");
	png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* Fills one pixel row (1 bit per pixel, 0 black) for module row y. */
static void png_row(const struct onb_qr *q, int scale, int quiet, int y, unsigned char *row, size_t rowbytes)
{
	int side = (q->width + 2 * quiet) * scale;

	memset(row, 0xff, rowbytes);
	for(int px = 0; px < side; px++){
		if(onb_qr_dark(q, px / scale - quiet, y)) row[px >> 3] &= (unsigned char)~(0x80u >> (px & 7));
	}
}

/* The libpng calls; a libpng error jumps back here. Nothing local is
 * changed after setjmp, so nothing is clobbered. */
static int png_emit(png_structp png, png_infop info, const struct onb_qr *q, int scale, int quiet,
		FILE *f, unsigned char *row, size_t rowbytes)
{
	png_uint_32 side = (png_uint_32)((q->width + 2 * quiet) * scale);

	if(setjmp(png_jmpbuf(png))) return ONB_EINTERNAL;
	png_init_io(png, f);
	png_set_IHDR(png, info, side, side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
			PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_set_compression_level(png, 6);
	png_write_info(png, info);
	for(int y = -quiet; y < q->width + quiet; y++){
		png_row(q, scale, quiet, y, row, rowbytes);
		for(int s = 0; s < scale; s++) png_write_row(png, row);
	}
	png_write_end(png, info);
	return ONB_OK;
}

int onb_qr_write_png(const struct onb_qr *q, int scale, int quiet, FILE *f, struct onb_err *err)
{
	struct png_errctx ectx = { "" };
	png_structp png = NULL;
	png_infop info = NULL;
	unsigned char *row = NULL;
	size_t rowbytes;
	int ret;

	ret = check_args(q, scale, quiet, f, err);
	if(ret != ONB_OK) return ret;
	rowbytes = ((size_t)(q->width + 2 * quiet) * (size_t)scale + 7) / 8;
	row = malloc(rowbytes);
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ectx, png_error_cb, png_warning_cb);
	if(png) info = png_create_info_struct(png);
	if(!row || !png || !info){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	if(png_emit(png, info, q, scale, quiet, f, row, rowbytes) != ONB_OK){
		ret = onb_fail(err, ONB_EINTERNAL, "PNG: %s", ectx.msg);
		goto cleanup;
	}
	ret = finish_file(f, "PNG", err);
cleanup:
	if(png) png_destroy_write_struct(&png, info ? &info : NULL);
	free(row);
	return ret;
}

/* ------------------------------------------------------------------- SVG */

/* The dark modules as path data, offset by quiet; one "M x y h n v1 h-n z"
 * per horizontal run. */
static void svg_path(const struct onb_qr *q, int quiet, FILE *f)
{
	fputs("<path fill=\"#000\" d=\"", f);
	for(int y = 0; y < q->width; y++){
		for(int x = 0; x < q->width;){
			int n = 0;
			while(x + n < q->width && onb_qr_dark(q, x + n, y)) n++;
			if(n){
				fprintf(f, "M%d %dh%dv1h-%dz", x + quiet, y + quiet, n, n);
				x += n;
			}else{
				x++;
			}
		}
	}
	fputs("\"/>\n", f);
}

/* The XML prolog, the svg element (side x height modules, each scale
 * pixels; height written with prec decimals, root_attr added to the
 * element) and its white background. */
static void svg_begin(FILE *f, int side, double height, int prec, int scale, const char *root_attr)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%.0f\" "
		"viewBox=\"0 0 %d %.*f\"%s>\n"
		"<rect width=\"%d\" height=\"%.*f\" fill=\"#fff\"/>\n",
		side * scale, height * scale, side, prec, height, root_attr, side, prec, height);
}

int onb_qr_write_svg(const struct onb_qr *q, int scale, int quiet, FILE *f, struct onb_err *err)
{
	int ret = check_args(q, scale, quiet, f, err), side;

	if(ret != ONB_OK) return ret;
	side = q->width + 2 * quiet;
	svg_begin(f, side, side, 0, scale, " shape-rendering=\"crispEdges\"");
	svg_path(q, quiet, f);
	fputs("</svg>\n", f);
	return finish_file(f, "SVG", err);
}

/* Writes s as XML character data; control characters become '?'. */
static void xml_text(const char *s, FILE *f)
{
	for(; *s; s++){
		unsigned char c = (unsigned char)*s;
		switch(c){
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default: fputc(c < 0x20 || c == 0x7f ? '?' : c, f); break;
		}
	}
}

/* Font size (in modules) at which len monospace characters fill at most
 * width modules (a glyph is about 0.6 em wide), capped at 3. */
static double fit_font(size_t len, int width)
{
	double fs = len ? (double)width / (0.62 * (double)len) : 3.0;
	return fs > 3.0 ? 3.0 : fs;
}

int onb_qr_write_label_svg(const struct onb_qr *q, int scale, const char *line1, const char *line2,
		FILE *f, struct onb_err *err)
{
	const char *lines[2] = { line1, line2 };
	double fs[2] = { 0, 0 }, y, height;
	int ret = check_args(q, scale, ONB_QR_QUIET, f, err), side;

	if(ret != ONB_OK) return ret;
	side = q->width + 2 * ONB_QR_QUIET;
	height = side;
	for(int i = 0; i < 2; i++){
		if(!lines[i] || !*lines[i]) continue;
		if(strlen(lines[i]) > ONB_QR_TEXT_MAX) return onb_fail(err, ONB_EINVAL, "label: text too long");
		fs[i] = fit_font(strlen(lines[i]), side - 2);
		height += fs[i] * 1.4;
	}
	height += 1.0;
	svg_begin(f, side, height, 2, scale, "");
	fputs("<g shape-rendering=\"crispEdges\">\n", f);
	svg_path(q, ONB_QR_QUIET, f);
	fputs("</g>\n", f);
	y = side;
	for(int i = 0; i < 2; i++){
		if(!fs[i]) continue;
		y += fs[i] * 1.2;
		fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-family=\"monospace\" font-size=\"%.2f\" "
			"text-anchor=\"middle\" fill=\"#000\">", side / 2.0, y, fs[i]);
		xml_text(lines[i], f);
		fputs("</text>\n", f);
		y += fs[i] * 0.2;
	}
	fputs("</svg>\n", f);
	return finish_file(f, "SVG label", err);
}

/* -------------------------------------------------------------- terminal */

#define ANSI_ON "\x1b[30;47m"
#define ANSI_OFF "\x1b[0m"

int onb_qr_terminal(const struct onb_qr *q, int quiet, bool ansi, char **text_out, struct onb_err *err)
{
	/* upper half, lower half, both, neither */
	static const char *const cell[4] = { " ", "\xe2\x96\x80", "\xe2\x96\x84", "\xe2\x96\x88" };
	int side, lines;
	size_t cap, o = 0;
	char *buf;

	if(!q || !text_out) return onb_fail(err, ONB_EINVAL, "QR: nothing to render");
	if(quiet < 0 || quiet > ONB_QR_QUIET_MAX) return onb_fail(err, ONB_EINVAL, "QR: quiet zone must be 0..%d", ONB_QR_QUIET_MAX);
	side = q->width + 2 * quiet;
	lines = (side + 1) / 2;
	cap = (size_t)lines * ((size_t)side * 3 + sizeof(ANSI_ON) + sizeof(ANSI_OFF) + 1) + 1;
	buf = malloc(cap);
	if(!buf) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	for(int l = 0; l < lines; l++){
		if(ansi){
			memcpy(buf + o, ANSI_ON, sizeof(ANSI_ON) - 1);
			o += sizeof(ANSI_ON) - 1;
		}
		for(int x = 0; x < side; x++){
			int top = 2 * l, bottom = 2 * l + 1, k = 0;
			bool dt = onb_qr_dark(q, x - quiet, top - quiet);
			bool db = onb_qr_dark(q, x - quiet, bottom - quiet);
			/* ink: the dark modules on white, else the light ones */
			if(ansi ? dt : !dt) k |= 1;
			if(bottom < side && (ansi ? db : !db)) k |= 2;
			size_t n = strlen(cell[k]);
			memcpy(buf + o, cell[k], n);
			o += n;
		}
		if(ansi){
			memcpy(buf + o, ANSI_OFF, sizeof(ANSI_OFF) - 1);
			o += sizeof(ANSI_OFF) - 1;
		}
		buf[o++] = '\n';
	}
	buf[o] = '\0';
	*text_out = buf;
	return ONB_OK;
}
