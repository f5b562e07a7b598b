/* Conversions between uakd_image (interleaved 8-bit rows) and cairo RGB24 image surfaces
 * (0x00RRGGBB words), canvas creation, and text placement for the charts and overlays.
 * Grey pixels are replicated into R, G and B; an RGBA image's alpha is neither read nor changed. */
#include <stdint.h>
#include <string.h>

#include "plot_cairo.h"

enum { MAX_SIDE = 16384 };

static uakd_status check_surface(cairo_surface_t *s, cairo_t *cr) {
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS || (cr && cairo_status(cr) != CAIRO_STATUS_SUCCESS))
        return uakd_fail(UAKD_ENOMEM, "cairo: could not create a drawing surface (%s)",
                         cairo_status_to_string(cairo_surface_status(s)));
    return UAKD_OK;
}

uakd_status plot_canvas_new(int w, int h, cairo_surface_t **s, cairo_t **cr) {
    *s = NULL, *cr = NULL;
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
        return uakd_fail(UAKD_EINVAL, "image size %d x %d: each side must be 1..%d pixels", w, h, MAX_SIDE);
    *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    *cr = cairo_create(*s);
    uakd_status st = check_surface(*s, *cr);
    if (st != UAKD_OK) {
        plot_canvas_free(*s, *cr);
        *s = NULL, *cr = NULL;
        return st;
    }
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return UAKD_OK;
}

void plot_canvas_free(cairo_surface_t *s, cairo_t *cr) {
    if (cr) cairo_destroy(cr);
    if (s) cairo_surface_destroy(s);
}

uakd_status plot_surface_from_image(const uakd_image *im, cairo_surface_t **out) {
    *out = NULL;
    if (!im || !im->data || (im->channels != 1 && im->channels != 3 && im->channels != 4))
        return uakd_fail(UAKD_EINVAL, "image to draw on: expected 1, 3 or 4 channels with pixels");
    if (im->width < 1 || im->height < 1 || im->width > MAX_SIDE || im->height > MAX_SIDE)
        return uakd_fail(UAKD_EINVAL, "image size %d x %d: each side must be 1..%d pixels", im->width,
                         im->height, MAX_SIDE);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, im->width, im->height);
    uakd_status st = check_surface(s, NULL);
    if (st != UAKD_OK) {
        cairo_surface_destroy(s);
        return st;
    }
    cairo_surface_flush(s);
    unsigned char *d = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s), c = im->channels;
    for (int y = 0; y < im->height; y++) {
        uint32_t *row = (uint32_t *)(void *)(d + (size_t)y * stride);
        const uint8_t *p = im->data + (size_t)y * im->width * c;
        for (int x = 0; x < im->width; x++, p += c) {
            uint32_t r = p[0], g = p[c > 1], b = p[c > 1 ? 2 : 0];
            row[x] = r << 16 | g << 8 | b;
        }
    }
    cairo_surface_mark_dirty(s);
    *out = s;
    return UAKD_OK;
}

static void copy_pixels(cairo_surface_t *s, uint8_t *dst, int w, int h, int c) {
    cairo_surface_flush(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(d + (size_t)y * stride);
        uint8_t *p = dst + (size_t)y * w * c;
        for (int x = 0; x < w; x++, p += c) {
            p[0] = (uint8_t)(row[x] >> 16), p[1] = (uint8_t)(row[x] >> 8), p[2] = (uint8_t)row[x];
        }
    }
}

uakd_status plot_surface_to_image(cairo_surface_t *s, uakd_image *out) {
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    UAKD_TRY(uakd_image_alloc(out, w, h, 3));
    copy_pixels(s, out->data, w, h, 3);
    return UAKD_OK;
}

void plot_surface_into_image(cairo_surface_t *s, uakd_image *im) {
    copy_pixels(s, im->data, im->width, im->height, im->channels);
}

void plot_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double plot_text_width(cairo_t *cr, const char *text) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, text, &e);
    return e.x_advance;
}

void plot_text(cairo_t *cr, const char *text, double x, double y, double ax, double ay, double angle) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = plot_text_width(cr, text), h = fe.ascent + fe.descent;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * w, -ay * h + fe.ascent);
    cairo_show_text(cr, text);
    cairo_restore(cr);
}

/* Fontconfig (loaded by cairo for text) keeps its parsed configuration and font patterns for the
 * life of the process and frees them only in FcFini, which cairo never calls. Under LeakSanitizer,
 * any program that links the plotting code therefore ignores allocations made inside fontconfig;
 * every allocation of our own is still checked. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UAKD_PLOT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(UAKD_PLOT_ASAN)
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }
#endif
