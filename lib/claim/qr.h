/* QR codes for claim labels (docs/claiming.md): a string encoded with
 * libqrencode at error-correction level M, rendered as PNG (libpng), SVG
 * (one path), an SVG label with two lines of text, or UTF-8 half blocks for
 * a terminal. Every rendering has a quiet zone of `quiet` modules (the
 * standard asks for 4) around the symbol. */
#ifndef ONB_QR_H
#define ONB_QR_H

#include <stdbool.h>
#include <stdio.h>

#include "core/common.h"

#define ONB_QR_QUIET 4        /* standard quiet zone, in modules */
#define ONB_QR_SCALE_MAX 64   /* pixels per module */
#define ONB_QR_QUIET_MAX 16
#define ONB_QR_TEXT_MAX 1024  /* longer input is refused */

struct onb_qr; /* an encoded symbol: immutable */

/* Encodes text (NUL-terminated, at most ONB_QR_TEXT_MAX bytes) at level M,
 * in the smallest version that holds it. *out is freed with onb_qr_free. */
int onb_qr_encode(const char *text, struct onb_qr **out, struct onb_err *err);

/* Frees a symbol (NULL is fine). */
void onb_qr_free(struct onb_qr *q);

/* Modules per side, without the quiet zone. */
int onb_qr_width(const struct onb_qr *q);

/* True for a dark module; false outside the symbol. */
bool onb_qr_dark(const struct onb_qr *q, int x, int y);

/* Writes a 1-bit greyscale PNG, scale pixels per module, dark on white. */
int onb_qr_write_png(const struct onb_qr *q, int scale, int quiet, FILE *f, struct onb_err *err);

/* Writes an SVG document: a white background and the dark modules as one
 * path (runs of a row merged); scale sets the width/height in pixels. */
int onb_qr_write_svg(const struct onb_qr *q, int scale, int quiet, FILE *f, struct onb_err *err);

/* Writes an SVG label: the symbol with its quiet zone, then line1 and line2
 * (e.g. the device id and the human code; XML-escaped, may be NULL) centred
 * below it in a monospace font sized to fit the width. */
int onb_qr_write_label_svg(const struct onb_qr *q, int scale, const char *line1, const char *line2,
		FILE *f, struct onb_err *err);

/* Renders the symbol for a terminal with UTF-8 half blocks (two module rows
 * per line, one column per module), quiet zone included: ceil(n/2) lines of
 * n columns, n = width + 2 * quiet, each line ending in '\n'. With ansi the
 * lines set black on white with escape codes and draw the dark modules;
 * without, they draw the light modules in the terminal's foreground colour,
 * which reads right on a dark background. *text_out (NUL-terminated) is
 * freed with free(). */
int onb_qr_terminal(const struct onb_qr *q, int quiet, bool ansi, char **text_out, struct onb_err *err);

#endif
