/* Plots and overlays rendered with cairo into RGB uakd_images (write them with uakd_image_write).
 *
 * Charts: line charts (several named series, optional logarithmic y axis; training curves and
 * accuracy-vs-threshold curves), histograms (bin edges + counts) and bar charts with error bars
 * (mean +- spread per method). Each has a title, axis labels, ticks at "nice" values (1, 2, 5 x 10^k;
 * decades on a log axis), a light grid and, for several series, a legend right of the plot area.
 * Rendering is deterministic: the same input gives the same pixels (text depends on the installed
 * DejaVu Sans font).
 *
 * Overlays draw on camera images: the projected 3D bounding box (corners indexed 4 ix + 2 iy + iz,
 * edges joining corners whose indices differ in one bit), keypoint dots and text labels. Image
 * coordinates follow OpenCV: pixel centres at integer (u, v). Suggested colours: ground truth green
 * (0, 200, 0), prediction blue (30, 100, 255) or red (230, 30, 30). */
#ifndef UAKD_PLOT_H
#define UAKD_PLOT_H

#include <stdint.h>

#include "uakd/geom.h"
#include "uakd/image.h"
#include "uakd/status.h"

/* One named curve: points (x[i], y[i]), i < n. Non-finite points (and y <= 0 on a log axis) break
 * the line instead of being drawn. */
typedef struct uakd_plot_series {
    const char *name;
    const double *x, *y;
    int n;
} uakd_plot_series;

/* Zero-initialise, then set what you need. */
typedef struct uakd_plot_opts {
    int width, height;                    /* pixels; 0 means 800 x 500; each 200..8192 */
    const char *title, *xlabel, *ylabel;  /* NULL: none */
    int log_y;                            /* line charts: logarithmic y axis */
    int fix_x, fix_y;                     /* nonzero: use [x_min, x_max] / [y_min, y_max] as the axis */
    double x_min, x_max, y_min, y_max;    /* range instead of the one fitted to the data */
} uakd_plot_opts;

/* Where data land in a rendered chart: the plot area in cairo pixel coordinates (pixel (i, j)
 * covers [i, i+1] x [j, j+1]) and the axis ranges. */
typedef struct uakd_plot_frame {
    double left, top, right, bottom;
    double x_min, x_max, y_min, y_max; /* data units (on a log axis: the values, not their logs) */
    int log_y;
} uakd_plot_frame;

/* Data point (x, y) -> pixel coordinates (px[0] to the right, px[1] down). */
void uakd_plot_frame_to_pixel(const uakd_plot_frame *f, double x, double y, double px[2]);

/* Series colour i (a ten-colour palette, repeating). */
void uakd_plot_color(int i, uint8_t rgb[3]);

/* Line chart of ns series (ns 1..64). out is allocated (RGB) and owned by the caller; frame may
 * be NULL. Fails when no series has a drawable point and no fixed range is given. */
uakd_status uakd_plot_lines(const uakd_plot_opts *o, const uakd_plot_series *s, int ns, uakd_image *out,
                            uakd_plot_frame *frame);

/* Histogram: nbins bars, bar b spanning [edges[b], edges[b+1]] with height counts[b] (edges
 * increasing, counts finite and >= 0). The y axis starts at 0. */
uakd_status uakd_plot_histogram(const uakd_plot_opts *o, const double *edges, const double *counts, int nbins,
                                uakd_image *out, uakd_plot_frame *frame);

/* Bar chart with error bars: category i (labels[i]) has a bar of height mean[i] and an error bar
 * mean[i] +- spread[i] (spread may be NULL: no error bars); the value is written above each bar.
 * Bar i is centred on x = i + 0.5 of the frame (x range [0, n]). */
uakd_status uakd_plot_bars(const uakd_plot_opts *o, const char *const *labels, const double *mean,
                           const double *spread, int n, uakd_image *out, uakd_plot_frame *frame);

/* Counts finite values into nbins equal bins over [lo, hi] (the last bin includes hi); writes
 * nbins + 1 edges and nbins counts. *outside (may be NULL) receives the number of values left out
 * (non-finite or outside [lo, hi]). */
uakd_status uakd_histogram_count(const double *v, long n, double lo, double hi, int nbins, double *edges,
                                 double *counts, long *outside);

/* Overlays on an RGB or RGBA image (drawn in place). */

/* The 12 edges of a projected box: uv holds the 8 corners (u, v) in corner-index order. */
uakd_status uakd_draw_box(uakd_image *im, const double uv[16], const uint8_t rgb[3], double line_width);
/* Projects the box [min, max] (model frame) with pose and camera, then draws it; edges with a
 * corner at or behind the camera are left out. */
uakd_status uakd_draw_pose_box(uakd_image *im, const uakd_camera *cam, const uakd_pose *pose, const double min[3],
                               const double max[3], const uint8_t rgb[3], double line_width);
/* Filled dots of the given radius with a thin dark outline at n points uv[2 i], uv[2 i + 1]. */
uakd_status uakd_draw_points(uakd_image *im, const double *uv, int n, const uint8_t rgb[3], double radius);
/* Text of the given pixel size in colour rgb on a dark translucent box whose top-left corner is
 * at (x, y). */
uakd_status uakd_draw_label(uakd_image *im, double x, double y, const char *text, const uint8_t rgb[3],
                            double size);

/* Tiles n images (grey, RGB or RGBA) row by row into a grid of cols columns (1..n); each is scaled
 * to fit a cell_w x cell_h cell keeping its aspect ratio, centred, with a 4-pixel white gap. out
 * is allocated (RGB). */
uakd_status uakd_image_grid(const uakd_image *ims, int n, int cols, int cell_w, int cell_h, uakd_image *out);

#endif
