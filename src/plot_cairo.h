/* Private to src/plot*.c: uakd_image <-> cairo RGB24 surfaces and text helpers.
 *
 * A cairo RGB24 pixel is the native-endian word 0x00RRGGBB at data + y * stride + 4 x. */
#ifndef UAKD_PLOT_CAIRO_H
#define UAKD_PLOT_CAIRO_H

#include <cairo/cairo.h> /* the Makefile has no -I/usr/include/cairo */

#include "uakd/image.h"
#include "uakd/status.h"

/* A white w x h RGB24 surface (w, h in 1..16384) with a context on it. */
uakd_status plot_canvas_new(int w, int h, cairo_surface_t **s, cairo_t **cr);
/* An RGB24 surface holding im's pixels (grey is replicated, alpha ignored). */
uakd_status plot_surface_from_image(const uakd_image *im, cairo_surface_t **out);
/* Allocates out (RGB) from the surface's pixels. */
uakd_status plot_surface_to_image(cairo_surface_t *s, uakd_image *out);
/* Copies the surface's colours back into im (same size, 3 or 4 channels; alpha kept). */
void plot_surface_into_image(cairo_surface_t *s, uakd_image *im);
/* Destroys both (either may be NULL). */
void plot_canvas_free(cairo_surface_t *s, cairo_t *cr);

/* Selects DejaVu Sans (bold or not) at the given pixel size. */
void plot_font(cairo_t *cr, double size, int bold);
/* Width of text in the current font. */
double plot_text_width(cairo_t *cr, const char *text);
/* Draws text with its anchor at (x, y): ax, ay in {0, 0.5, 1} pick left/centre/right and
 * top/middle/baseline-ish bottom of the text's ink box; angle in radians (counter-clockwise
 * rotation is negative in cairo's y-down space). */
void plot_text(cairo_t *cr, const char *text, double x, double y, double ax, double ay, double angle);

#endif
