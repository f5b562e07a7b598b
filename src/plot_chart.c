/* Charts: line charts, histograms and bar charts with error bars, drawn with cairo.
 *
 * Axes: a data range [mn, mx] is widened to multiples of a "nice" step (1, 2 or 5 x 10^k, about
 * five intervals); a log axis is widened to whole decades and ticked at each decade (every k-th one
 * beyond ten). Data (x, y) map linearly (in log10 y on a log axis) onto the plot area
 * [left, right] x [bottom, top]. Non-finite points break a line. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot_cairo.h"
#include "uakd/plot.h"

enum { MAX_TICKS = 64, MAX_SERIES = 64, MAX_BARS = 256 };

static const uint8_t palette[10][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};

void uakd_plot_color(int i, uint8_t rgb[3]) {
    int k = ((i % 10) + 10) % 10;
    memcpy(rgb, palette[k], 3);
}

static void set_color(cairo_t *cr, int i, double shade) {
    uint8_t c[3];
    uakd_plot_color(i, c);
    cairo_set_source_rgb(cr, shade * c[0] / 255.0, shade * c[1] / 255.0, shade * c[2] / 255.0);
}

void uakd_plot_frame_to_pixel(const uakd_plot_frame *f, double x, double y, double px[2]) {
    double ty = y, lo = f->y_min, hi = f->y_max;
    if (f->log_y) ty = log10(y), lo = log10(lo), hi = log10(hi);
    px[0] = f->left + (x - f->x_min) / (f->x_max - f->x_min) * (f->right - f->left);
    px[1] = f->bottom - (ty - lo) / (hi - lo) * (f->bottom - f->top);
}

/* ---- ranges and ticks ---- */

typedef struct ticks {
    int n;
    double v[MAX_TICKS];
    char label[MAX_TICKS][32];
} ticks;

static double nice_step(double span) {
    double raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}

/* Widens [mn, mx] to multiples of the nice step; a single value gets a unit-sized window. */
static void fit_linear(double mn, double mx, double *lo, double *hi) {
    if (!(mx > mn)) {
        double d = mn == 0 ? 1 : fabs(mn) * 0.1;
        mn -= d, mx += d;
    }
    double step = nice_step(mx - mn);
    *lo = floor(mn / step + 1e-9) * step;
    *hi = ceil(mx / step - 1e-9) * step;
}

static void fit_log(double mn, double mx, double *lo, double *hi) {
    *lo = pow(10, floor(log10(mn) + 1e-9));
    *hi = pow(10, ceil(log10(mx) - 1e-9));
    if (!(*hi > *lo)) *hi = *lo * 10;
}

static void make_linear_ticks(double lo, double hi, ticks *t) {
    double step = nice_step(hi - lo);
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    int plain = step >= 1e-5 && fmax(fabs(lo), fabs(hi)) < 1e7;
    t->n = 0;
    for (double k = ceil(lo / step - 1e-9); k <= floor(hi / step + 1e-9) && t->n < MAX_TICKS; k++) {
        double v = k * step;
        if (fabs(v) < step * 1e-9) v = 0;
        t->v[t->n] = v;
        if (plain)
            snprintf(t->label[t->n], sizeof t->label[0], "%.*f", dec, v);
        else
            snprintf(t->label[t->n], sizeof t->label[0], "%.3g", v);
        t->n++;
    }
}

static void make_log_ticks(double lo, double hi, ticks *t) {
    int a = (int)ceil(log10(lo) - 1e-9), b = (int)floor(log10(hi) + 1e-9); /* decades inside [lo, hi] */
    int stride = (b - a + 9) / 10;
    if (stride < 1) stride = 1;
    t->n = 0;
    for (int k = a; k <= b && t->n < MAX_TICKS; k += stride) {
        t->v[t->n] = pow(10, k);
        snprintf(t->label[t->n], sizeof t->label[0], "%g", t->v[t->n]);
        t->n++;
    }
}

/* ---- layout and axes ---- */

typedef struct chart {
    cairo_surface_t *s;
    cairo_t *cr;
    int w, h;
    uakd_plot_frame f;
    ticks xt, yt;
    const char *const *cats; /* categorical x labels (bars), else NULL */
    int ncat;
} chart;

static const double FONT_TITLE = 18, FONT_LABEL = 14, FONT_TICK = 12, FONT_LEGEND = 13;

static uakd_status chart_size(const uakd_plot_opts *o, int *w, int *h) {
    *w = o->width ? o->width : 800;
    *h = o->height ? o->height : 500;
    if (*w < 200 || *h < 200 || *w > 8192 || *h > 8192)
        return uakd_fail(UAKD_EINVAL, "plot size %d x %d: width and height must be 200..8192 (0 for 800 x 500)",
                         *w, *h);
    return UAKD_OK;
}

static uakd_status check_fixed(int fix, double lo, double hi, int log_axis, const char *name) {
    if (fix && !(isfinite(lo) && isfinite(hi) && hi > lo && (!log_axis || lo > 0)))
        return uakd_fail(UAKD_EINVAL, "plot option %s range [%g, %g]: needs finite min < max%s", name, lo, hi,
                         log_axis ? " and min > 0 on a log axis" : "");
    return UAKD_OK;
}

/* Creates the canvas, places the plot area (room for title, labels, tick labels and a legend of
 * the given width) and draws everything behind the data: background grid, title, labels. */
static uakd_status chart_begin(chart *c, const uakd_plot_opts *o, double legend_w) {
    UAKD_TRY(plot_canvas_new(c->w, c->h, &c->s, &c->cr));
    cairo_t *cr = c->cr;
    uakd_plot_frame *f = &c->f;
    plot_font(cr, FONT_TICK, 0);
    double ytw = 0;
    for (int i = 0; i < c->yt.n; i++) ytw = fmax(ytw, plot_text_width(cr, c->yt.label[i]));
    f->left = ceil(12 + (o->ylabel ? FONT_LABEL + 12 : 0) + ytw + 8);
    f->right = floor(c->w - 24 - legend_w);
    f->top = o->title ? 50 : 20;
    f->bottom = c->h - (o->xlabel ? 64 : 36);

    /* grid */
    double px[2];
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    for (int i = 0; i < c->yt.n; i++) {
        uakd_plot_frame_to_pixel(f, f->x_min, c->yt.v[i], px);
        double y = floor(px[1]) + 0.5;
        cairo_move_to(cr, f->left, y);
        cairo_line_to(cr, f->right, y);
    }
    for (int i = 0; i < c->xt.n && !c->cats; i++) {
        uakd_plot_frame_to_pixel(f, c->xt.v[i], f->y_min, px);
        double x = floor(px[0]) + 0.5;
        cairo_move_to(cr, x, f->top);
        cairo_line_to(cr, x, f->bottom);
    }
    cairo_stroke(cr);

    /* tick labels and marks */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    for (int i = 0; i < c->yt.n; i++) {
        uakd_plot_frame_to_pixel(f, f->x_min, c->yt.v[i], px);
        double y = floor(px[1]) + 0.5;
        cairo_move_to(cr, f->left - 6, y);
        cairo_line_to(cr, f->left - 1, y);
        plot_text(cr, c->yt.label[i], f->left - 9, px[1], 1, 0.5, 0);
    }
    if (c->cats) {
        double slot = (f->right - f->left) / c->ncat, wmax = 0;
        for (int i = 0; i < c->ncat; i++) wmax = fmax(wmax, plot_text_width(cr, c->cats[i]));
        if (wmax > slot - 4) plot_font(cr, fmax(8, FONT_TICK * (slot - 4) / wmax), 0);
        for (int i = 0; i < c->ncat; i++) plot_text(cr, c->cats[i], f->left + (i + 0.5) * slot, f->bottom + 8, 0.5, 0, 0);
        plot_font(cr, FONT_TICK, 0);
    } else {
        for (int i = 0; i < c->xt.n; i++) {
            uakd_plot_frame_to_pixel(f, c->xt.v[i], f->y_min, px);
            double x = floor(px[0]) + 0.5;
            cairo_move_to(cr, x, f->bottom + 1);
            cairo_line_to(cr, x, f->bottom + 6);
            plot_text(cr, c->xt.label[i], px[0], f->bottom + 9, 0.5, 0, 0);
        }
    }
    cairo_stroke(cr);

    /* title and axis labels */
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (o->title) {
        plot_font(cr, FONT_TITLE, 1);
        plot_text(cr, o->title, (f->left + f->right) / 2, 14, 0.5, 0, 0);
    }
    plot_font(cr, FONT_LABEL, 0);
    if (o->xlabel) plot_text(cr, o->xlabel, (f->left + f->right) / 2, c->h - 12, 0.5, 1, 0);
    if (o->ylabel) plot_text(cr, o->ylabel, 12, (f->top + f->bottom) / 2, 0.5, 0, -M_PI / 2);
    return UAKD_OK;
}

/* Draws the plot area's border (just outside it, so data pixels stay untouched) and returns the
 * image. */
static uakd_status chart_end(chart *c, uakd_image *out, uakd_plot_frame *frame) {
    cairo_t *cr = c->cr;
    cairo_reset_clip(cr);
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, c->f.left - 0.5, c->f.top - 0.5, c->f.right - c->f.left + 1, c->f.bottom - c->f.top + 1);
    cairo_stroke(cr);
    uakd_status st = plot_surface_to_image(c->s, out);
    if (st == UAKD_OK && frame) *frame = c->f;
    return st;
}

static void clip_to_area(chart *c) {
    cairo_rectangle(c->cr, c->f.left, c->f.top, c->f.right - c->f.left, c->f.bottom - c->f.top);
    cairo_clip(c->cr);
}

/* ---- line charts ---- */

static int drawable(const uakd_plot_frame *f, double x, double y) {
    return isfinite(x) && isfinite(y) && (!f->log_y || y > 0);
}

static void draw_series(chart *c, const uakd_plot_series *s, int color) {
    cairo_t *cr = c->cr;
    set_color(cr, color, 1);
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    int run = 0;
    double px[2], last[2] = {0, 0};
    for (int i = 0; i <= s->n; i++) {
        int ok = i < s->n && drawable(&c->f, s->x[i], s->y[i]);
        if (ok) {
            uakd_plot_frame_to_pixel(&c->f, s->x[i], s->y[i], px);
            if (run == 0) cairo_move_to(cr, px[0], px[1]);
            else cairo_line_to(cr, px[0], px[1]);
            last[0] = px[0], last[1] = px[1];
            run++;
        } else if (run > 0) {
            if (run == 1) {
                cairo_new_path(cr);
                cairo_arc(cr, last[0], last[1], 2.5, 0, 2 * M_PI);
                cairo_fill(cr);
            } else {
                cairo_stroke(cr);
            }
            run = 0;
        }
    }
}

static void draw_legend(chart *c, const uakd_plot_series *s, int ns) {
    cairo_t *cr = c->cr;
    plot_font(cr, FONT_LEGEND, 0);
    double x = c->f.right + 16, y = c->f.top + 4;
    for (int i = 0; i < ns; i++, y += 22) {
        set_color(cr, i, 1);
        cairo_set_line_width(cr, 3);
        cairo_move_to(cr, x, y + 8);
        cairo_line_to(cr, x + 22, y + 8);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        plot_text(cr, s[i].name ? s[i].name : "", x + 30, y + 8, 0, 0.5, 0);
    }
}

static double legend_width(const uakd_plot_series *s, int ns, int w) {
    int any = 0;
    for (int i = 0; i < ns; i++) any |= s[i].name && s[i].name[0];
    if (!any) return 0;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(sf);
    plot_font(cr, FONT_LEGEND, 0);
    double tw = 0;
    for (int i = 0; i < ns; i++)
        if (s[i].name) tw = fmax(tw, plot_text_width(cr, s[i].name));
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    return fmin(tw + 40, w / 3.0);
}

uakd_status uakd_plot_lines(const uakd_plot_opts *o, const uakd_plot_series *s, int ns, uakd_image *out,
                            uakd_plot_frame *frame) {
    chart c = {0};
    UAKD_TRY(chart_size(o, &c.w, &c.h));
    if (ns < 1 || ns > MAX_SERIES || !s)
        return uakd_fail(UAKD_EINVAL, "line chart: %d series given, expected 1..%d", ns, MAX_SERIES);
    UAKD_TRY(check_fixed(o->fix_x, o->x_min, o->x_max, 0, "x"));
    UAKD_TRY(check_fixed(o->fix_y, o->y_min, o->y_max, o->log_y, "y"));
    uakd_plot_frame *f = &c.f;
    f->log_y = o->log_y != 0;
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    for (int k = 0; k < ns; k++) {
        if (s[k].n < 0 || (s[k].n > 0 && (!s[k].x || !s[k].y)))
            return uakd_fail(UAKD_EINVAL, "line chart: series %d (\"%s\") has n = %d or no data", k,
                             s[k].name ? s[k].name : "", s[k].n);
        for (int i = 0; i < s[k].n; i++)
            if (drawable(f, s[k].x[i], s[k].y[i])) {
                xmn = fmin(xmn, s[k].x[i]), xmx = fmax(xmx, s[k].x[i]);
                ymn = fmin(ymn, s[k].y[i]), ymx = fmax(ymx, s[k].y[i]);
            }
    }
    if ((!o->fix_x || !o->fix_y) && !(xmx >= xmn))
        return uakd_fail(UAKD_EINVAL, "line chart \"%s\": no series has a finite point%s to draw",
                         o->title ? o->title : "", o->log_y ? " with y > 0" : "");
    if (o->fix_x) f->x_min = o->x_min, f->x_max = o->x_max;
    else fit_linear(xmn, xmx, &f->x_min, &f->x_max);
    if (o->fix_y) f->y_min = o->y_min, f->y_max = o->y_max;
    else if (o->log_y) fit_log(ymn, ymx, &f->y_min, &f->y_max);
    else fit_linear(ymn, ymx, &f->y_min, &f->y_max);
    make_linear_ticks(f->x_min, f->x_max, &c.xt);
    if (o->log_y) make_log_ticks(f->y_min, f->y_max, &c.yt);
    else make_linear_ticks(f->y_min, f->y_max, &c.yt);

    double lw = legend_width(s, ns, c.w);
    uakd_status st = chart_begin(&c, o, lw);
    if (st == UAKD_OK) {
        cairo_save(c.cr);
        clip_to_area(&c);
        for (int k = 0; k < ns; k++) draw_series(&c, &s[k], k);
        cairo_restore(c.cr);
        if (lw > 0) draw_legend(&c, s, ns);
        st = chart_end(&c, out, frame);
    }
    plot_canvas_free(c.s, c.cr);
    return st;
}

/* ---- histograms ---- */

uakd_status uakd_plot_histogram(const uakd_plot_opts *o, const double *edges, const double *counts, int nbins,
                                uakd_image *out, uakd_plot_frame *frame) {
    chart c = {0};
    UAKD_TRY(chart_size(o, &c.w, &c.h));
    if (nbins < 1 || nbins > 100000 || !edges || !counts)
        return uakd_fail(UAKD_EINVAL, "histogram: %d bins, expected 1..100000 with edges and counts", nbins);
    double cmax = 0;
    for (int b = 0; b < nbins; b++) {
        if (!(isfinite(edges[b]) && isfinite(edges[b + 1]) && edges[b + 1] > edges[b]))
            return uakd_fail(UAKD_EINVAL, "histogram: edges[%d..%d] = %g, %g must be finite and increasing", b,
                             b + 1, edges[b], edges[b + 1]);
        if (!(isfinite(counts[b]) && counts[b] >= 0))
            return uakd_fail(UAKD_EINVAL, "histogram: counts[%d] = %g must be finite and >= 0", b, counts[b]);
        cmax = fmax(cmax, counts[b]);
    }
    UAKD_TRY(check_fixed(o->fix_x, o->x_min, o->x_max, 0, "x"));
    UAKD_TRY(check_fixed(o->fix_y, o->y_min, o->y_max, 0, "y"));
    uakd_plot_frame *f = &c.f;
    if (o->fix_x) f->x_min = o->x_min, f->x_max = o->x_max;
    else f->x_min = edges[0], f->x_max = edges[nbins];
    if (o->fix_y) f->y_min = o->y_min, f->y_max = o->y_max;
    else fit_linear(0, cmax > 0 ? cmax : 1, &f->y_min, &f->y_max);
    make_linear_ticks(f->x_min, f->x_max, &c.xt);
    make_linear_ticks(f->y_min, f->y_max, &c.yt);

    uakd_status st = chart_begin(&c, o, 0);
    if (st == UAKD_OK) {
        cairo_t *cr = c.cr;
        cairo_save(cr);
        clip_to_area(&c);
        double a[2], b2[2];
        for (int b = 0; b < nbins; b++) {
            if (counts[b] <= 0) continue;
            uakd_plot_frame_to_pixel(f, edges[b], counts[b], a);
            uakd_plot_frame_to_pixel(f, edges[b + 1], f->y_min, b2);
            cairo_rectangle(cr, a[0], a[1], b2[0] - a[0], b2[1] - a[1]);
            set_color(cr, 0, 1);
            cairo_fill_preserve(cr);
            set_color(cr, 0, 0.6);
            cairo_set_line_width(cr, 1);
            cairo_stroke(cr);
        }
        cairo_restore(cr);
        st = chart_end(&c, out, frame);
    }
    plot_canvas_free(c.s, c.cr);
    return st;
}

uakd_status uakd_histogram_count(const double *v, long n, double lo, double hi, int nbins, double *edges,
                                 double *counts, long *outside) {
    if (nbins < 1 || !(isfinite(lo) && isfinite(hi) && hi > lo) || n < 0 || (n > 0 && !v))
        return uakd_fail(UAKD_EINVAL, "histogram counting: need nbins >= 1 (got %d) and finite lo < hi (got %g, %g)",
                         nbins, lo, hi);
    for (int b = 0; b <= nbins; b++) edges[b] = lo + (hi - lo) * b / nbins;
    for (int b = 0; b < nbins; b++) counts[b] = 0;
    long left_out = 0;
    for (long i = 0; i < n; i++) {
        if (!(v[i] >= lo && v[i] <= hi)) {
            left_out++;
            continue;
        }
        int b = (int)((v[i] - lo) / (hi - lo) * nbins);
        counts[b < nbins ? b : nbins - 1] += 1;
    }
    if (outside) *outside = left_out;
    return UAKD_OK;
}

/* ---- bar charts with error bars ---- */

uakd_status uakd_plot_bars(const uakd_plot_opts *o, const char *const *labels, const double *mean,
                           const double *spread, int n, uakd_image *out, uakd_plot_frame *frame) {
    chart c = {0};
    UAKD_TRY(chart_size(o, &c.w, &c.h));
    if (n < 1 || n > MAX_BARS || !labels || !mean)
        return uakd_fail(UAKD_EINVAL, "bar chart: %d bars, expected 1..%d with labels and means", n, MAX_BARS);
    double lo = 0, hi = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        double e = spread ? spread[i] : 0;
        if (!labels[i] || !isfinite(mean[i]) || !(isfinite(e) && e >= 0))
            return uakd_fail(UAKD_EINVAL, "bar chart: bar %d needs a label, a finite mean and a spread >= 0", i);
        lo = fmin(lo, mean[i] - e), hi = fmax(hi, mean[i] + e), amax = fmax(amax, fabs(mean[i]));
    }
    UAKD_TRY(check_fixed(o->fix_y, o->y_min, o->y_max, 0, "y"));
    uakd_plot_frame *f = &c.f;
    f->x_min = 0, f->x_max = n;
    if (o->fix_y) f->y_min = o->y_min, f->y_max = o->y_max;
    else fit_linear(lo, hi > lo ? hi * 1.08 - lo * 0.08 : 1, &f->y_min, &f->y_max);
    make_linear_ticks(f->y_min, f->y_max, &c.yt);
    c.cats = labels, c.ncat = n;

    uakd_status st = chart_begin(&c, o, 0);
    if (st == UAKD_OK) {
        cairo_t *cr = c.cr;
        int dec = amax > 0 ? 2 - (int)floor(log10(amax)) : 0;
        dec = dec < 0 ? 0 : dec > 6 ? 6 : dec;
        double base = f->y_min > 0 ? f->y_min : f->y_max < 0 ? f->y_max : 0;
        double slot = (f->right - f->left) / n;
        cairo_save(cr);
        clip_to_area(&c);
        for (int i = 0; i < n; i++) {
            double a[2], b[2], e = spread ? spread[i] : 0;
            uakd_plot_frame_to_pixel(f, i + 0.15, mean[i], a);
            uakd_plot_frame_to_pixel(f, i + 0.85, base, b);
            cairo_rectangle(cr, a[0], fmin(a[1], b[1]), b[0] - a[0], fabs(b[1] - a[1]));
            set_color(cr, i, 1);
            cairo_fill(cr);
            double top[2], bot[2], cap = fmin(10, slot * 0.15);
            uakd_plot_frame_to_pixel(f, i + 0.5, mean[i] + e, top);
            uakd_plot_frame_to_pixel(f, i + 0.5, mean[i] - e, bot);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            if (e > 0) {
                cairo_set_line_width(cr, 1.5);
                cairo_move_to(cr, top[0], top[1]);
                cairo_line_to(cr, bot[0], bot[1]);
                cairo_move_to(cr, top[0] - cap, top[1]);
                cairo_line_to(cr, top[0] + cap, top[1]);
                cairo_move_to(cr, bot[0] - cap, bot[1]);
                cairo_line_to(cr, bot[0] + cap, bot[1]);
                cairo_stroke(cr);
            }
            char txt[64];
            if (spread) snprintf(txt, sizeof txt, "%.*f \xc2\xb1 %.*f", dec, mean[i], dec, e);
            else snprintf(txt, sizeof txt, "%.*f", dec, mean[i]);
            plot_font(cr, fmin(FONT_TICK, slot / 7), 0);
            double ytxt = fmin(top[1], a[1]);
            plot_text(cr, txt, top[0], ytxt - 4, 0.5, 1, 0);
        }
        cairo_restore(cr);
        st = chart_end(&c, out, frame);
    }
    plot_canvas_free(c.s, c.cr);
    return st;
}
