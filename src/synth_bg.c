/* Procedural backgrounds and camera effects for synthetic images.
 *
 * Value noise: random colours on a coarse grid (cell 8..64 px), bilinearly interpolated, plus
 * fine per-pixel variation. Gradient: c(t) = (1 - t) c0 + t c1 with t the clamped projection of
 * the pixel on a random direction. Shapes: a flat colour under 4..16 random polygons (triangles,
 * quads, 16-gon ellipses). Space: black with sparse stars. Noise: a table of 4096 draws of
 * N(0, sigma^2) (rounded: adding a rounded value to an integer pixel is rounding the sum), indexed
 * by uniform 12-bit numbers, five per 64-bit draw. Blur: separable binomial [1 2 1] / 4 with clamped edges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/render.h"
#include "uakd/synth.h"

static uint8_t clamp_u8(double v) { return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v + 0.5); }

static void random_colour(uakd_rng *r, double c[3]) {
    for (int k = 0; k < 3; k++) c[k] = uakd_rng_range(r, 0, 255);
}

static void bg_value_noise(uakd_image *im, uakd_rng *r) {
    int cell = 8 << uakd_rng_below(r, 4);
    int gw = im->width / cell + 2, gh = im->height / cell + 2;
    float *grid = malloc((size_t)gw * gh * 3 * sizeof(float));
    if (!grid) { /* degrade to a flat colour rather than fail the image */
        memset(im->data, 96, (size_t)im->width * im->height * 3);
        return;
    }
    double base[3], spread = uakd_rng_range(r, 20, 120);
    random_colour(r, base);
    for (int k = 0; k < gw * gh * 3; k++) grid[k] = (float)(base[k % 3] + uakd_rng_range(r, -spread, spread));
    for (int j = 0; j < im->height; j++) {
        double gy = (double)j / cell;
        int y0 = (int)gy;
        double fy = gy - y0;
        for (int i = 0; i < im->width; i++) {
            double gx = (double)i / cell;
            int x0 = (int)gx;
            double fx = gx - x0;
            const float *a = grid + 3 * ((size_t)y0 * gw + x0), *b = a + 3 * gw;
            uint8_t *p = im->data + 3 * ((size_t)j * im->width + i);
            for (int c = 0; c < 3; c++)
                p[c] = clamp_u8((1 - fy) * ((1 - fx) * a[c] + fx * a[3 + c]) + fy * ((1 - fx) * b[c] + fx * b[3 + c]));
        }
    }
    free(grid);
}

static void bg_gradient(uakd_image *im, uakd_rng *r) {
    double c0[3], c1[3], th = uakd_rng_range(r, 0, 2 * M_PI);
    random_colour(r, c0);
    random_colour(r, c1);
    double dx = cos(th), dy = sin(th), len = fabs(dx) * im->width + fabs(dy) * im->height;
    for (int j = 0; j < im->height; j++)
        for (int i = 0; i < im->width; i++) {
            double t = ((i - 0.5 * im->width) * dx + (j - 0.5 * im->height) * dy) / len + 0.5;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            uint8_t *p = im->data + 3 * ((size_t)j * im->width + i);
            for (int c = 0; c < 3; c++) p[c] = clamp_u8((1 - t) * c0[c] + t * c1[c]);
        }
}

static void bg_shapes(uakd_image *im, uakd_rng *r) {
    double c[3];
    random_colour(r, c);
    size_t n = (size_t)im->width * im->height;
    for (size_t k = 0; k < n; k++)
        for (int ch = 0; ch < 3; ch++) im->data[3 * k + ch] = (uint8_t)c[ch];
    int shapes = 4 + (int)uakd_rng_below(r, 13);
    double scale = 0.5 * (im->width < im->height ? im->width : im->height);
    for (int s = 0; s < shapes; s++) {
        double pts[16][2], cx = uakd_rng_range(r, 0, im->width), cy = uakd_rng_range(r, 0, im->height);
        double rx = uakd_rng_range(r, 0.05, 0.6) * scale, ry = uakd_rng_range(r, 0.05, 0.6) * scale;
        double rot = uakd_rng_range(r, 0, 2 * M_PI);
        int kind = (int)uakd_rng_below(r, 3), nv = kind == 0 ? 3 : kind == 1 ? 4 : 16;
        for (int v = 0; v < nv; v++) {
            double a = kind == 2 ? 2 * M_PI * v / nv : uakd_rng_range(r, 0, 2 * M_PI);
            if (kind == 1) a = rot + M_PI / 2 * v;
            double x = rx * cos(a), y = ry * sin(a);
            pts[v][0] = cx + x * cos(rot) - y * sin(rot);
            pts[v][1] = cy + x * sin(rot) + y * cos(rot);
        }
        if (kind == 0) { /* order the random triangle's corners by angle: a simple polygon */
            double ang[3];
            for (int v = 0; v < 3; v++) ang[v] = atan2(pts[v][1] - cy, pts[v][0] - cx);
            for (int a = 0; a < 3; a++)
                for (int b = a + 1; b < 3; b++)
                    if (ang[b] < ang[a]) {
                        double t = ang[a]; ang[a] = ang[b]; ang[b] = t;
                        double p0 = pts[a][0], p1 = pts[a][1];
                        pts[a][0] = pts[b][0]; pts[a][1] = pts[b][1];
                        pts[b][0] = p0; pts[b][1] = p1;
                    }
        }
        double col[3];
        random_colour(r, col);
        uint8_t c8[3] = {(uint8_t)col[0], (uint8_t)col[1], (uint8_t)col[2]};
        uakd_fill_polygon(im, (const double(*)[2])pts, nv, c8, NULL, 0);
    }
}

static void bg_space(uakd_image *im, uakd_rng *r) {
    size_t n = (size_t)im->width * im->height;
    memset(im->data, 0, n * 3);
    long stars = (long)(n / 4000) + (long)uakd_rng_below(r, n / 2000 + 1);
    for (long s = 0; s < stars; s++) {
        size_t k = (size_t)uakd_rng_below(r, n);
        uint8_t v = (uint8_t)uakd_rng_range(r, 60, 255);
        im->data[3 * k] = im->data[3 * k + 1] = im->data[3 * k + 2] = v;
    }
}

void uakd_synth_background(uakd_image *im, int kind, uakd_rng *r) {
    switch (kind) {
    case 0: bg_value_noise(im, r); break;
    case 1: bg_gradient(im, r); break;
    case 2: bg_shapes(im, r); break;
    default: bg_space(im, r); break;
    }
}

void uakd_image_add_noise(uakd_image *im, double sigma, uakd_rng *r) {
    if (!(sigma > 0)) return;
    /* table: the noise values (|v| <= 300); sat: branch-free clamp, sat[v + 384] = clamp(v, 0, 255) */
    int16_t table[4096];
    uint8_t sat[1024];
    for (int k = 0; k < 4096; k++) {
        double v = sigma * uakd_rng_normal(r);
        table[k] = (int16_t)(384 + lround(fmax(-300, fmin(300, v))));
    }
    for (int k = 0; k < 1024; k++) sat[k] = (uint8_t)(k < 384 ? 0 : k > 384 + 255 ? 255 : k - 384);
    size_t n = (size_t)im->width * im->height * im->channels, bulk = n - n % 5;
    uint8_t *d = im->data;
    for (size_t k = 0; k < bulk; k += 5) {
        uint64_t x = uakd_rng_u64(r);
        d[k] = sat[d[k] + table[x & 4095]];
        d[k + 1] = sat[d[k + 1] + table[(x >> 12) & 4095]];
        d[k + 2] = sat[d[k + 2] + table[(x >> 24) & 4095]];
        d[k + 3] = sat[d[k + 3] + table[(x >> 36) & 4095]];
        d[k + 4] = sat[d[k + 4] + table[(x >> 48) & 4095]];
    }
    uint64_t x = uakd_rng_u64(r);
    for (size_t k = bulk; k < n; k++, x >>= 12) d[k] = sat[d[k] + table[x & 4095]];
}

uakd_status uakd_image_blur3(uakd_image *im) {
    int w = im->width, h = im->height, ch = im->channels;
    uint8_t *tmp = malloc((size_t)w * h * ch);
    if (!tmp) return uakd_fail(UAKD_ENOMEM, "blur: cannot allocate %dx%d", w, h);
    for (int j = 0; j < h; j++) /* rows into tmp */
        for (int i = 0; i < w; i++) {
            int l = i > 0 ? i - 1 : 0, rr = i < w - 1 ? i + 1 : w - 1;
            const uint8_t *row = im->data + (size_t)j * w * ch;
            for (int c = 0; c < ch; c++)
                tmp[((size_t)j * w + i) * ch + c] = (uint8_t)((row[l * ch + c] + 2 * row[i * ch + c] + row[rr * ch + c] + 2) >> 2);
        }
    for (int j = 0; j < h; j++) { /* columns back into im */
        int u = j > 0 ? j - 1 : 0, d = j < h - 1 ? j + 1 : h - 1;
        for (int i = 0; i < w * ch; i++)
            im->data[(size_t)j * w * ch + i] =
                (uint8_t)((tmp[(size_t)u * w * ch + i] + 2 * tmp[(size_t)j * w * ch + i] + tmp[(size_t)d * w * ch + i] + 2) >> 2);
    }
    free(tmp);
    return UAKD_OK;
}
