/* Plots and overlays: pixels of rendered charts checked against hand-computed positions (lines
 * pass through their data points, bar and histogram heights are proportional to the values, box
 * edges pass through the projected corners), PNG round trips, determinism and bad input. */
#include <stdint.h>

#include "test.h"
#include "uakd/plot.h"

static const uint8_t *px_at(const uakd_image *im, int x, int y) {
    return im->data + ((size_t)y * im->width + x) * im->channels;
}

/* Every channel within tol of the colour. */
static int near_color(const uakd_image *im, int x, int y, const uint8_t rgb[3], int tol) {
    if (x < 0 || y < 0 || x >= im->width || y >= im->height) return 0;
    const uint8_t *p = px_at(im, x, y);
    for (int c = 0; c < 3; c++)
        if (abs((int)p[c] - (int)rgb[c]) > tol) return 0;
    return 1;
}

/* The colour found in the 3x3 pixels around cairo point (x, y) (pixel floor(x), floor(y)). */
static int color_near_point(const uakd_image *im, double x, double y, const uint8_t rgb[3], int tol) {
    int cx = (int)floor(x), cy = (int)floor(y);
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            if (near_color(im, cx + dx, cy + dy, rgb, tol)) return 1;
    return 0;
}

static void test_frame_mapping(void) {
    uakd_plot_frame f = {.left = 100, .top = 50, .right = 700, .bottom = 450, .x_min = 0, .x_max = 10,
                         .y_min = -1, .y_max = 3};
    double p[2];
    uakd_plot_frame_to_pixel(&f, 2.5, 0, p);
    CHECK_NEAR(p[0], 100 + 0.25 * 600, 1e-12);
    CHECK_NEAR(p[1], 450 - 0.25 * 400, 1e-12);
    f.log_y = 1, f.y_min = 0.01, f.y_max = 100;
    uakd_plot_frame_to_pixel(&f, 10, 1, p);
    CHECK_NEAR(p[0], 700, 1e-12);
    CHECK_NEAR(p[1], 250, 1e-9); /* 1 is halfway between 1e-2 and 1e2 in decades */
}

static void test_lines_pass_through_points(void) {
    double x[11], up[11], down[11];
    for (int i = 0; i <= 10; i++) x[i] = i, up[i] = i, down[i] = 10 - 0.5 * i;
    uakd_plot_series s[2] = {{"up", x, up, 11}, {"down", x, down, 11}};
    uakd_plot_opts o = {.title = "t", .xlabel = "x", .ylabel = "y", .fix_x = 1, .x_max = 10, .fix_y = 1, .y_max = 10};
    uakd_image im = {0};
    uakd_plot_frame f;
    CHECK_OK(uakd_plot_lines(&o, s, 2, &im, &f));
    CHECK(im.width == 800 && im.height == 500 && im.channels == 3);
    CHECK(f.left > 20 && f.right < 800 - 60 && f.top > 20 && f.bottom < 500 - 30); /* room for labels, legend */
    CHECK(f.x_min == 0 && f.x_max == 10 && f.y_min == 0 && f.y_max == 10);
    uint8_t c0[3], c1[3];
    uakd_plot_color(0, c0);
    uakd_plot_color(1, c1);
    /* Points on each line, away from the crossing at x = 20/3, mapped by hand. */
    double w = f.right - f.left, h = f.bottom - f.top;
    for (double t = 0.5; t < 10; t += 0.75) {
        if (fabs(t - 20.0 / 3) < 1) continue;
        CHECK_MSG(near_color(&im, (int)(f.left + t / 10 * w), (int)(f.bottom - t / 10 * h), c0, 40), "up at x=%g", t);
        double yd = 10 - 0.5 * t;
        CHECK_MSG(near_color(&im, (int)(f.left + t / 10 * w), (int)(f.bottom - yd / 10 * h), c1, 40), "down at %g", t);
    }
    /* Off the lines: background. */
    const uint8_t white[3] = {255, 255, 255};
    CHECK(near_color(&im, (int)(f.left + 0.15 * w), (int)(f.bottom - 0.5 * h), white, 30));
    /* The plot area's border lies just outside it and is dark. */
    const uint8_t dark[3] = {64, 64, 64};
    CHECK(near_color(&im, (int)f.left - 1, (int)((f.top + f.bottom) / 2), dark, 30));
    /* Legend: a swatch of each colour right of the plot area. */
    int found0 = 0, found1 = 0;
    for (int y = (int)f.top; y < (int)f.top + 60; y++)
        for (int xx = (int)f.right + 2; xx < (int)f.right + 60; xx++)
            found0 |= near_color(&im, xx, y, c0, 10), found1 |= near_color(&im, xx, y, c1, 10);
    CHECK(found0 && found1);

    /* PNG round trip and determinism. */
    const char *png = test_tmp("plot_lines.png");
    CHECK_OK(uakd_image_write(png, &im, 0));
    uakd_image back = {0}, again = {0};
    CHECK_OK(uakd_image_read(png, 3, 1, &back));
    CHECK(back.width == im.width && back.height == im.height && !memcmp(back.data, im.data, (size_t)im.width * im.height * 3));
    CHECK_OK(uakd_plot_lines(&o, s, 2, &again, NULL));
    CHECK(again.data && !memcmp(again.data, im.data, (size_t)im.width * im.height * 3));
    uakd_image_free(&im);
    uakd_image_free(&back);
    uakd_image_free(&again);
}

static void test_log_axis_and_gaps(void) {
    /* y = 10^x on a log axis is a straight line through decades spaced evenly. */
    double x[7] = {0, 0.5, 1, 1.5, 2, 2.5, 3}, y[7], yg[7];
    for (int i = 0; i < 7; i++) y[i] = pow(10, x[i]), yg[i] = 2;
    yg[3] = NAN; /* a gap between x = 1 and x = 2 */
    uakd_plot_series s[2] = {{"exp", x, y, 7}, {"gap", x, yg, 7}};
    uakd_plot_opts o = {.log_y = 1, .width = 600, .height = 400};
    uakd_image im = {0};
    uakd_plot_frame f;
    CHECK_OK(uakd_plot_lines(&o, s, 2, &im, &f));
    CHECK(im.width == 600 && im.height == 400);
    CHECK_NEAR(f.y_min, 1, 1e-12);
    CHECK_NEAR(f.y_max, 1000, 1e-9);
    CHECK_NEAR(f.x_min, 0, 0);
    CHECK_NEAR(f.x_max, 3, 1e-12);
    uint8_t c0[3], c1[3];
    uakd_plot_color(0, c0);
    uakd_plot_color(1, c1);
    double w = f.right - f.left, h = f.bottom - f.top;
    for (int i = 1; i < 6; i++) /* x / 3 of the way across and up */
        CHECK_MSG(color_near_point(&im, f.left + x[i] / 3 * w, f.bottom - x[i] / 3 * h, c0, 40), "point %d", i);
    double ylog2 = f.bottom - log10(2) / 3 * h;
    CHECK(color_near_point(&im, f.left + 0.5 / 3 * w, ylog2, c1, 40));
    CHECK(!color_near_point(&im, f.left + 1.5 / 3 * w, ylog2, c1, 60)); /* the gap */
    CHECK(color_near_point(&im, f.left + 2.5 / 3 * w, ylog2, c1, 40));
    uakd_image_free(&im);

    /* A fixed log range off the decades keeps it and has grid lines at the decades inside. */
    uakd_plot_opts o2 = {.log_y = 1, .fix_y = 1, .y_min = 0.05, .y_max = 5};
    CHECK_OK(uakd_plot_lines(&o2, s, 1, &im, &f));
    CHECK(f.y_min == 0.05 && f.y_max == 5);
    const uint8_t grid[3] = {229, 229, 229};
    for (double d = 0.1; d < 2; d *= 10) {
        double py = f.bottom - (log10(d) - log10(0.05)) / 2 * (f.bottom - f.top);
        CHECK_MSG(near_color(&im, (int)f.left + 3, (int)floor(py), grid, 2), "grid at %g", d);
    }
    uakd_image_free(&im);
}

/* Height in pixels of the run of non-background pixels going up from just above the bottom. */
static int bar_height(const uakd_image *im, const uakd_plot_frame *f, int x, const uint8_t rgb[3]) {
    int y = (int)f->bottom - 1, n = 0;
    while (y >= (int)f->top && near_color(im, x, y, rgb, 80)) y--, n++;
    return n;
}

static void test_histogram_heights(void) {
    const double edges[5] = {0, 0.25, 0.5, 0.75, 1}, counts[4] = {2, 4, 8, 1};
    uakd_plot_opts o = {.title = "u", .xlabel = "u", .ylabel = "count", .fix_y = 1, .y_max = 10};
    uakd_image im = {0};
    uakd_plot_frame f;
    CHECK_OK(uakd_plot_histogram(&o, edges, counts, 4, &im, &f));
    CHECK(f.x_min == 0 && f.x_max == 1);
    uint8_t c0[3];
    uakd_plot_color(0, c0);
    double h = f.bottom - f.top;
    for (int b = 0; b < 4; b++) {
        int x = (int)(f.left + (b + 0.5) / 4 * (f.right - f.left));
        CHECK_NEAR(bar_height(&im, &f, x, c0), counts[b] / 10 * h, 1.5);
    }
    uakd_image_free(&im);

    /* Fitted axis: heights stay proportional to the counts. */
    uakd_plot_opts o2 = {0};
    CHECK_OK(uakd_plot_histogram(&o2, edges, counts, 4, &im, &f));
    CHECK(f.y_min == 0 && f.y_max >= 8 && f.y_max <= 10);
    int hmax = bar_height(&im, &f, (int)(f.left + 2.5 / 4 * (f.right - f.left)), c0);
    for (int b = 0; b < 4; b++) {
        int x = (int)(f.left + (b + 0.5) / 4 * (f.right - f.left));
        CHECK_NEAR((double)bar_height(&im, &f, x, c0) / hmax, counts[b] / 8, 0.02);
    }
    uakd_image_free(&im);
}

static void test_histogram_count(void) {
    const double v[9] = {0, 0.1, 0.2499, 0.25, 0.6, 1.0, -0.1, 1.01, NAN};
    double e[5], c[4];
    long out = -1;
    CHECK_OK(uakd_histogram_count(v, 9, 0, 1, 4, e, c, &out));
    CHECK(e[0] == 0 && e[1] == 0.25 && e[2] == 0.5 && e[4] == 1);
    CHECK(c[0] == 3 && c[1] == 1 && c[2] == 1 && c[3] == 1); /* 1.0 goes into the last bin */
    CHECK(out == 3);
    CHECK_FAILS(uakd_histogram_count(v, 9, 1, 1, 4, e, c, NULL), UAKD_EINVAL);
}

static void test_bars_with_error_bars(void) {
    const char *labels[3] = {"student", "UAKD", "UAKD+PFKD"};
    const double mean[3] = {80, 90, 45}, spread[3] = {5, 2, 0};
    uakd_plot_opts o = {.title = "ablation", .ylabel = "ADD-0.1d (%)", .fix_y = 1, .y_max = 100};
    uakd_image im = {0};
    uakd_plot_frame f;
    CHECK_OK(uakd_plot_bars(&o, labels, mean, spread, 3, &im, &f));
    CHECK(f.x_min == 0 && f.x_max == 3);
    double w = f.right - f.left, h = f.bottom - f.top;
    const uint8_t dark[3] = {26, 26, 26};
    for (int i = 0; i < 3; i++) {
        uint8_t c[3];
        uakd_plot_color(i, c);
        int x = (int)(f.left + (i + 0.3) / 3 * w); /* beside the error bar */
        CHECK_NEAR(bar_height(&im, &f, x, c), mean[i] / 100 * h, 1.5);
        if (spread[i] > 0) { /* error bar ends (caps) at mean +- spread */
            double xc = f.left + (i + 0.5) / 3 * w;
            CHECK(color_near_point(&im, xc + 4, f.bottom - (mean[i] + spread[i]) / 100 * h, dark, 60));
            CHECK(color_near_point(&im, xc + 4, f.bottom - (mean[i] - spread[i]) / 100 * h, dark, 60));
        }
    }
    uakd_image_free(&im);
    const double bad[3] = {1, NAN, 2};
    CHECK_FAILS(uakd_plot_bars(&o, labels, bad, NULL, 3, &im, NULL), UAKD_EINVAL);
}

static void test_bad_chart_input(void) {
    double x[2] = {0, 1}, y[2] = {NAN, NAN}, yneg[2] = {-1, 0};
    uakd_plot_series s = {"a", x, y, 2}, sneg = {"a", x, yneg, 2};
    uakd_plot_opts o = {0};
    uakd_image im = {0};
    CHECK_FAILS(uakd_plot_lines(&o, &s, 1, &im, NULL), UAKD_EINVAL);
    CHECK_FAILS(uakd_plot_lines(&o, &s, 0, &im, NULL), UAKD_EINVAL);
    o.log_y = 1;
    CHECK_FAILS(uakd_plot_lines(&o, &sneg, 1, &im, NULL), UAKD_EINVAL); /* nothing positive on a log axis */
    o.fix_x = o.fix_y = 1, o.x_max = 1, o.y_min = 0, o.y_max = 1;
    CHECK_FAILS(uakd_plot_lines(&o, &sneg, 1, &im, NULL), UAKD_EINVAL); /* log axis from 0 */
    uakd_plot_opts small = {.width = 100};
    CHECK_FAILS(uakd_plot_lines(&small, &s, 1, &im, NULL), UAKD_EINVAL);
    const double edges[3] = {0, 1, 1}, counts[2] = {1, 1};
    CHECK_FAILS(uakd_plot_histogram(&small, edges, counts, 2, &im, NULL), UAKD_EINVAL);
    uakd_plot_opts def = {0};
    CHECK_FAILS(uakd_plot_histogram(&def, edges, counts, 2, &im, NULL), UAKD_EINVAL); /* edges not increasing */
    CHECK(im.data == NULL);
}

static void fill(uakd_image *im, uint8_t r, uint8_t g, uint8_t b) {
    for (long i = 0; i < (long)im->width * im->height; i++) {
        uint8_t *p = im->data + i * im->channels;
        p[0] = r, p[1] = g, p[2] = b;
    }
}

static void test_box_overlay(void) {
    /* Cube [-1, 1]^3 at distance 5 in front of a 100 px focal camera centred at (100, 75):
     * corner (x, y, z) projects to (100 + 100 x / (5 + z), 75 + 100 y / (5 + z)). */
    uakd_image im = {0};
    CHECK_OK(uakd_image_alloc(&im, 200, 150, 3));
    fill(&im, 60, 60, 60);
    uakd_camera cam = {100, 100, 100, 75, {0}};
    uakd_pose pose = {{1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 5}};
    const double mn[3] = {-1, -1, -1}, mx[3] = {1, 1, 1};
    const uint8_t green[3] = {0, 200, 0}, grey[3] = {60, 60, 60};
    CHECK_OK(uakd_draw_pose_box(&im, &cam, &pose, mn, mx, green, 2));
    double uv[16];
    for (int c = 0; c < 8; c++) {
        double X = c & 4 ? 1 : -1, Y = c & 2 ? 1 : -1, Z = c & 1 ? 1 : -1;
        uv[2 * c] = 100 + 100 * X / (5 + Z), uv[2 * c + 1] = 75 + 100 * Y / (5 + Z);
        CHECK_MSG(near_color(&im, (int)lround(uv[2 * c]), (int)lround(uv[2 * c + 1]), green, 50), "corner %d", c);
    }
    /* Edge midpoints (corners differing in one bit) are drawn; the diagonal's midpoint (the image
     * centre, on no edge) is not. */
    for (int c = 0; c < 8; c++)
        for (int bit = 1; bit < 8; bit <<= 1)
            if (!(c & bit)) {
                int d = c | bit;
                int u = (int)lround((uv[2 * c] + uv[2 * d]) / 2), v = (int)lround((uv[2 * c + 1] + uv[2 * d + 1]) / 2);
                CHECK_MSG(near_color(&im, u, v, green, 50), "edge %d-%d", c, d);
            }
    CHECK(near_color(&im, 100, 75, grey, 0));
    CHECK(near_color(&im, 100, 75 - 21, grey, 0)); /* between the front (25 px) and back (16.7 px) faces */

    /* The same corners through uakd_draw_box in another colour land on the same pixels. */
    const uint8_t blue[3] = {30, 100, 255};
    CHECK_OK(uakd_draw_box(&im, uv, blue, 2));
    for (int c = 0; c < 8; c++)
        CHECK(near_color(&im, (int)lround(uv[2 * c]), (int)lround(uv[2 * c + 1]), blue, 50));

    /* A box crossing behind the camera keeps only the edges in front. */
    uakd_pose near = {{1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0.5}};
    fill(&im, 60, 60, 60);
    CHECK_OK(uakd_draw_pose_box(&im, &cam, &near, mn, mx, green, 2));

    /* Points and a label. */
    fill(&im, 60, 60, 60);
    const double pts[4] = {50, 40, 150.4, 110.6};
    const uint8_t red[3] = {230, 30, 30}, white[3] = {255, 255, 255};
    CHECK_OK(uakd_draw_points(&im, pts, 2, red, 4));
    CHECK(near_color(&im, 50, 40, red, 10) && near_color(&im, 150, 111, red, 10));
    CHECK(near_color(&im, 50 + 8, 40, grey, 0));
    CHECK_OK(uakd_draw_label(&im, 5, 100, "ADD 3.2 mm", white, 12));
    int bright = 0;
    for (int y = 100; y < 120; y++)
        for (int x = 5; x < 80; x++) bright += near_color(&im, x, y, white, 40);
    CHECK(bright > 20);
    CHECK(near_color(&im, 5, 98, grey, 0)); /* above the label box */

    uakd_image g = {0};
    CHECK_OK(uakd_image_alloc(&g, 10, 10, 1));
    CHECK_FAILS(uakd_draw_box(&g, uv, green, 2), UAKD_EINVAL);
    CHECK_FAILS(uakd_draw_box(&im, uv, green, 0), UAKD_EINVAL);
    uakd_image_free(&g);
    CHECK_OK(uakd_image_write(test_tmp("overlay.png"), &im, 0));
    uakd_image_free(&im);
}

static void test_rgba_overlay_keeps_alpha(void) {
    uakd_image im = {0};
    CHECK_OK(uakd_image_alloc(&im, 40, 30, 4));
    for (int i = 0; i < 40 * 30; i++) im.data[4 * i + 3] = 77;
    const double pt[2] = {20, 15};
    const uint8_t red[3] = {230, 30, 30};
    CHECK_OK(uakd_draw_points(&im, pt, 1, red, 3));
    CHECK(near_color(&im, 20, 15, red, 10));
    int alpha_ok = 1;
    for (int i = 0; i < 40 * 30; i++) alpha_ok &= im.data[4 * i + 3] == 77;
    CHECK(alpha_ok);
    uakd_image_free(&im);
}

static void test_image_grid(void) {
    uakd_image ims[3] = {{0}, {0}, {0}}, out = {0};
    CHECK_OK(uakd_image_alloc(&ims[0], 100, 50, 3)); /* wide: fills the cell's width */
    CHECK_OK(uakd_image_alloc(&ims[1], 50, 100, 3)); /* tall: fills the cell's height */
    CHECK_OK(uakd_image_alloc(&ims[2], 20, 20, 1));  /* grey, scaled up 5x */
    fill(&ims[0], 200, 0, 0);
    fill(&ims[1], 0, 0, 200);
    memset(ims[2].data, 90, 400);
    CHECK_OK(uakd_image_grid(ims, 3, 2, 100, 100, &out));
    CHECK(out.width == 2 * 104 + 4 && out.height == 2 * 104 + 4 && out.channels == 3);
    const uint8_t red[3] = {200, 0, 0}, blue[3] = {0, 0, 200}, grey[3] = {90, 90, 90}, white[3] = {255, 255, 255};
    /* cell (0, 0) spans x 4..103, y 4..103; the 100 x 50 image sits at y 29..78. */
    CHECK(near_color(&out, 54, 54, red, 2) && near_color(&out, 6, 31, red, 2) && near_color(&out, 101, 76, red, 2));
    CHECK(near_color(&out, 54, 20, white, 0) && near_color(&out, 54, 90, white, 0));
    /* cell (1, 0) spans x 108..207; the 50 x 100 image sits at x 133..182. */
    CHECK(near_color(&out, 158, 54, blue, 2) && near_color(&out, 158, 6, blue, 2));
    CHECK(near_color(&out, 120, 54, white, 0) && near_color(&out, 195, 54, white, 0));
    /* cell (0, 1): grey fills it; cell (1, 1) is empty. */
    CHECK(near_color(&out, 54, 158, grey, 2) && near_color(&out, 158, 158, white, 0));
    CHECK(near_color(&out, 105, 54, white, 0)); /* the gap */
    uakd_image_free(&out);
    CHECK_FAILS(uakd_image_grid(ims, 3, 4, 100, 100, &out), UAKD_EINVAL);
    for (int i = 0; i < 3; i++) uakd_image_free(&ims[i]);
}

int main(void) {
    RUN(test_frame_mapping);
    RUN(test_lines_pass_through_points);
    RUN(test_log_axis_and_gaps);
    RUN(test_histogram_heights);
    RUN(test_histogram_count);
    RUN(test_bars_with_error_bars);
    RUN(test_bad_chart_input);
    RUN(test_box_overlay);
    RUN(test_rgba_overlay_keeps_alpha);
    RUN(test_image_grid);
    return TEST_END();
}
