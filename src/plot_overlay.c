/* Overlays on camera images and image grids.
 *
 * A box's corner c = 4 ix + 2 iy + iz is joined to c ^ 1, c ^ 2 and c ^ 4 (the corners that differ
 * from it along one axis): 12 edges. Points (u, v) use pixel centres at integers (OpenCV), so they
 * are drawn at cairo's (u + 0.5, v + 0.5). Grid cells hold each image scaled by
 * min(cell_w / w, cell_h / h), centred. */
#include <math.h>
#include <stddef.h>

#include "plot_cairo.h"
#include "uakd/mesh.h"
#include "uakd/plot.h"

enum { GAP = 4 };

/* Wraps im in a canvas; the caller draws and then calls finish(). */
static uakd_status begin(uakd_image *im, cairo_surface_t **s, cairo_t **cr) {
    *s = NULL, *cr = NULL;
    if (!im || (im->channels != 3 && im->channels != 4))
        return uakd_fail(UAKD_EINVAL, "overlay: the image must be RGB or RGBA (got %d channels)",
                         im ? im->channels : 0);
    UAKD_TRY(plot_surface_from_image(im, s));
    *cr = cairo_create(*s);
    if (cairo_status(*cr) != CAIRO_STATUS_SUCCESS) {
        plot_canvas_free(*s, *cr);
        return uakd_fail(UAKD_ENOMEM, "overlay: cairo could not create a context");
    }
    cairo_translate(*cr, 0.5, 0.5);
    return UAKD_OK;
}

static void finish(uakd_image *im, cairo_surface_t *s, cairo_t *cr) {
    plot_surface_into_image(s, im);
    plot_canvas_free(s, cr);
}

static void rgb_source(cairo_t *cr, const uint8_t rgb[3]) {
    cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
}

/* Draws the edges whose two corners are both valid (ok[c] != 0). */
static uakd_status box_edges(uakd_image *im, const double uv[16], const int ok[8], const uint8_t rgb[3],
                             double line_width) {
    if (!(line_width > 0 && line_width <= 64))
        return uakd_fail(UAKD_EINVAL, "box overlay: line width %g must be in (0, 64]", line_width);
    for (int c = 0; c < 16; c++)
        if (ok[c / 2] && !isfinite(uv[c]))
            return uakd_fail(UAKD_EINVAL, "box overlay: corner %d has a non-finite coordinate", c / 2);
    cairo_surface_t *s;
    cairo_t *cr;
    UAKD_TRY(begin(im, &s, &cr));
    rgb_source(cr, rgb);
    cairo_set_line_width(cr, line_width);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (int c = 0; c < 8; c++)
        for (int bit = 1; bit < 8; bit <<= 1)
            if (!(c & bit) && ok[c] && ok[c | bit]) {
                cairo_move_to(cr, uv[2 * c], uv[2 * c + 1]);
                cairo_line_to(cr, uv[2 * (c | bit)], uv[2 * (c | bit) + 1]);
            }
    cairo_stroke(cr);
    finish(im, s, cr);
    return UAKD_OK;
}

uakd_status uakd_draw_box(uakd_image *im, const double uv[16], const uint8_t rgb[3], double line_width) {
    static const int all[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    return box_edges(im, uv, all, rgb, line_width);
}

uakd_status uakd_draw_pose_box(uakd_image *im, const uakd_camera *cam, const uakd_pose *pose, const double min[3],
                               const double max[3], const uint8_t rgb[3], double line_width) {
    double corners[24], uv[16] = {0};
    int ok[8];
    uakd_bbox_corners(min, max, corners);
    for (int c = 0; c < 8; c++) ok[c] = uakd_camera_project(cam, pose, corners + 3 * c, uv + 2 * c);
    return box_edges(im, uv, ok, rgb, line_width);
}

uakd_status uakd_draw_points(uakd_image *im, const double *uv, int n, const uint8_t rgb[3], double radius) {
    if (n < 0 || (n > 0 && !uv) || !(radius > 0 && radius <= 64))
        return uakd_fail(UAKD_EINVAL, "point overlay: %d points, radius %g (must be in (0, 64])", n, radius);
    cairo_surface_t *s;
    cairo_t *cr;
    UAKD_TRY(begin(im, &s, &cr));
    cairo_set_line_width(cr, 1);
    for (int i = 0; i < n; i++) {
        if (!isfinite(uv[2 * i]) || !isfinite(uv[2 * i + 1])) continue;
        cairo_new_path(cr);
        cairo_arc(cr, uv[2 * i], uv[2 * i + 1], radius, 0, 2 * M_PI);
        rgb_source(cr, rgb);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
        cairo_stroke(cr);
    }
    finish(im, s, cr);
    return UAKD_OK;
}

uakd_status uakd_draw_label(uakd_image *im, double x, double y, const char *text, const uint8_t rgb[3],
                            double size) {
    if (!text || !(size >= 4 && size <= 200) || !isfinite(x) || !isfinite(y))
        return uakd_fail(UAKD_EINVAL, "label overlay: needs text, a finite position and a size in [4, 200] (got %g)",
                         size);
    cairo_surface_t *s;
    cairo_t *cr;
    UAKD_TRY(begin(im, &s, &cr));
    cairo_translate(cr, -0.5, -0.5);
    plot_font(cr, size, 1);
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double pad = size * 0.25;
    cairo_set_source_rgba(cr, 0, 0, 0, 0.6);
    cairo_rectangle(cr, x, y, plot_text_width(cr, text) + 2 * pad, fe.ascent + fe.descent + 2 * pad);
    cairo_fill(cr);
    rgb_source(cr, rgb);
    plot_text(cr, text, x + pad, y + pad, 0, 0, 0);
    finish(im, s, cr);
    return UAKD_OK;
}

uakd_status uakd_image_grid(const uakd_image *ims, int n, int cols, int cell_w, int cell_h, uakd_image *out) {
    if (n < 1 || !ims || cols < 1 || cols > n || cell_w < 1 || cell_h < 1 || cell_w > 4096 || cell_h > 4096)
        return uakd_fail(UAKD_EINVAL, "image grid: %d images in %d columns of %d x %d cells (need 1 <= cols <= n, "
                         "cells 1..4096 pixels)", n, cols, cell_w, cell_h);
    int rows = (n + cols - 1) / cols;
    long w = (long)cols * (cell_w + GAP) + GAP, h = (long)rows * (cell_h + GAP) + GAP;
    if (w > 16384 || h > 16384)
        return uakd_fail(UAKD_EINVAL, "image grid: %ld x %ld pixels is too large (at most 16384 a side); use "
                         "smaller cells or fewer images", w, h);
    cairo_surface_t *s;
    cairo_t *cr;
    UAKD_TRY(plot_canvas_new((int)w, (int)h, &s, &cr));
    uakd_status st = UAKD_OK;
    for (int i = 0; i < n && st == UAKD_OK; i++) {
        cairo_surface_t *src;
        st = plot_surface_from_image(&ims[i], &src);
        if (st != UAKD_OK) {
            st = uakd_fail_context(st, "image grid, image %d: ", i);
            break;
        }
        double k = fmin((double)cell_w / ims[i].width, (double)cell_h / ims[i].height);
        double x0 = GAP + (i % cols) * (cell_w + GAP) + (cell_w - k * ims[i].width) / 2;
        double y0 = GAP + (i / cols) * (cell_h + GAP) + (cell_h - k * ims[i].height) / 2;
        cairo_save(cr);
        cairo_translate(cr, x0, y0);
        cairo_scale(cr, k, k);
        cairo_set_source_surface(cr, src, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
        cairo_rectangle(cr, 0, 0, ims[i].width, ims[i].height);
        cairo_fill(cr);
        cairo_restore(cr);
        cairo_surface_destroy(src);
    }
    if (st == UAKD_OK) st = plot_surface_to_image(s, out);
    plot_canvas_free(s, cr);
    return st;
}
