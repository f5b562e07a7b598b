/* PFKD regions and losses, FKD attention-masked feature loss (formulas in uakd/pfkd.h).
 *
 * Regions are sampled with the engine's bilinear rule (uakd_sample_forward / _backward, zero
 * outside the map; the same weights in the same order, so the same floats) at
 * x = u / s - 0.5 + a - (r-1)/2, the four taps of each sample located once for all channels; the
 * PFKD loss is the plan-weighted mean squared difference of region vectors; FKD weighs a whole-map
 * squared difference with the averaged, detached spatial x channel attention of teacher and
 * student. */
#include "uakd/pfkd.h"

#include <math.h>
#include <string.h>

#include "layers_omp.h"

void uakd_pfkd_region_points(double u, double v, int stride, int r, float *pts) {
    const double x = u / stride - 0.5, y = v / stride - 0.5, h = 0.5 * (r - 1);
    for (int b = 0; b < r; b++)
        for (int a = 0; a < r; a++) {
            pts[2 * (b * r + a)] = (float)(x + a - h);
            pts[2 * (b * r + a) + 1] = (float)(y + b - h);
        }
}

static uakd_status check_sample(int c, int h, int w, int stride, int r, int count) {
    if (c < 1 || h < 1 || w < 1 || stride < 1 || r < 1 || r > 63 || count < 0)
        return uakd_fail(UAKD_EINVAL, "pfkd: bad region sampling sizes (c %d, h %d, w %d, stride %d, r %d, count %d)",
                         c, h, w, stride, r, count);
    return UAKD_OK;
}

static void fill_points(int stride, int r, int count, const float *xy, float *pts) {
    for (int i = 0; i < count; i++) uakd_pfkd_region_points(xy[2 * i], xy[2 * i + 1], stride, r, pts + 2 * i * r * r);
}

/* A region's samples lie on an r x r grid: sample (a, b) is at (x_a, y_b), so each axis is
 * located once (floor and fraction of every x_a, every y_b) and the taps of a sample combine them. */
typedef struct axes {
    int x0[64], y0[64];   /* floor, clamped to -2 far outside (and for NaN) as the engine does */
    float fx[64], fy[64]; /* fractions */
} axes;

static void locate_axis(float x, int size, int *i0, float *f) {
    const float xf = floorf(x);
    *f = x - xf;
    *i0 = (xf >= -2.0f && xf <= (float)size) ? (int)xf : -2;
}

/* The axes of the region around input pixel (u, v): the points of uakd_pfkd_region_points,
 * computed the same way. */
static void region_axes(int h, int w, double u, double v, int stride, int r, axes *ax) {
    const double x = u / stride - 0.5, y = v / stride - 0.5, hr = 0.5 * (r - 1);
    for (int a = 0; a < r; a++) {
        locate_axis((float)(x + a - hr), w, &ax->x0[a], &ax->fx[a]);
        locate_axis((float)(y + a - hr), h, &ax->y0[a], &ax->fy[a]);
    }
}

/* The taps of uakd_sample_forward (uakd/layers.h) for sample (a, b): flat offsets of (y0,x0),
 * (y0,x0+1), (y0+1,x0), (y0+1,x0+1) (-1 outside) and their weights, the same floats in the same
 * order, so every sum below is bit-identical to the engine kernel's. */
static void tap_of(const axes *ax, int a, int b, int h, int w, int *off, float *wt) {
    const float fx = ax->fx[a], fy = ax->fy[b];
    const int x0 = ax->x0[a], y0 = ax->y0[b];
    const int in_x0 = x0 >= 0 && x0 < w, in_x1 = x0 + 1 >= 0 && x0 + 1 < w;
    const int in_y0 = y0 >= 0 && y0 < h, in_y1 = y0 + 1 >= 0 && y0 + 1 < h;
    wt[0] = (1 - fx) * (1 - fy), wt[1] = fx * (1 - fy), wt[2] = (1 - fx) * fy, wt[3] = fx * fy;
    off[0] = in_x0 && in_y0 ? y0 * w + x0 : -1;
    off[1] = in_x1 && in_y0 ? y0 * w + x0 + 1 : -1;
    off[2] = in_x0 && in_y1 ? (y0 + 1) * w + x0 : -1;
    off[3] = in_x1 && in_y1 ? (y0 + 1) * w + x0 + 1 : -1;
}

/* Taps of CHUNK consecutive samples of one region, computed once for all channels. */
#define CHUNK 64
typedef struct taps {
    int off[CHUNK][4];
    float wt[CHUNK][4];
} taps;

static inline float tap(const float *plane, int off) { return off >= 0 ? plane[off] : 0.0f; }

/* Forward (dout == NULL: out in the layout of uakd/pfkd.h) or backward (dfeat[c][off] += w dout)
 * over the taps of every sample, for maps in (C, H, W). */
static void sample_chw(const float *feat, int c, int h, int w, int stride, int r, int count, const float *xy,
                       float *out, const float *dout, float *dfeat) {
    const int rr = r * r;
    const size_t hw = (size_t)h * w, P = (size_t)count * rr;
    taps tp;
    axes ax;
    for (int i = 0; i < count; i++) {
        region_axes(h, w, xy[2 * i], xy[2 * i + 1], stride, r, &ax);
        for (int t0 = 0; t0 < rr; t0 += CHUNK) {
            const int n = rr - t0 < CHUNK ? rr - t0 : CHUNK;
            for (int p = 0, a = t0 % r, b = t0 / r; p < n; p++, a = a + 1 < r ? a + 1 : 0, b += a == 0)
                tap_of(&ax, a, b, h, w, tp.off[p], tp.wt[p]);
            for (int ch = 0; ch < c; ch++) {
                const size_t o = ch * P + (size_t)i * rr + t0;
                if (!dout) {
                    const float *fp = feat + ch * hw;
                    for (int p = 0; p < n; p++) {
                        float v = 0;
                        for (int k = 0; k < 4; k++) v += tp.wt[p][k] * tap(fp, tp.off[p][k]);
                        out[o + p] = v;
                    }
                } else {
                    float *dp = dfeat + ch * hw;
                    for (int p = 0; p < n; p++)
                        for (int k = 0; k < 4; k++)
                            if (tp.off[p][k] >= 0) dp[tp.off[p][k]] += tp.wt[p][k] * dout[o + p];
                }
            }
        }
    }
}

/* The same for maps in (H, W, C): every tap reads and writes C consecutive floats, in blocks of
 * CBLOCK channels; a tap outside the map reads a zero row, as the engine's zero padding. */
#define CBLOCK 64
static const float zero_row[CBLOCK];

static void sample_hwc(const float *feat, int c, int h, int w, int stride, int r, int count, const float *xy,
                       float *out, const float *dout, float *dfeat) {
    const int rr = r * r;
    axes ax;
    for (int i = 0; i < count; i++) {
        region_axes(h, w, xy[2 * i], xy[2 * i + 1], stride, r, &ax);
        for (int t = 0, a = 0, b = 0; t < rr; t++, a = a + 1 < r ? a + 1 : 0, b += a == 0) { /* t = b r + a */
            const size_t o = ((size_t)i * rr + t) * c;
            int off[4];
            float wt[4];
            tap_of(&ax, a, b, h, w, off, wt);
            for (int c0 = 0; c0 < c; c0 += CBLOCK) {
                const int nc = c - c0 < CBLOCK ? c - c0 : CBLOCK;
                if (!dout) {
                    const float *f[4];
                    for (int k = 0; k < 4; k++) f[k] = off[k] >= 0 ? feat + (size_t)off[k] * c + c0 : zero_row;
                    float *restrict y = out + o + c0;
                    UAKD_SIMD
                    for (int ch = 0; ch < nc; ch++)
                        y[ch] = 0.0f + wt[0] * f[0][ch] + wt[1] * f[1][ch] + wt[2] * f[2][ch] + wt[3] * f[3][ch];
                } else {
                    const float *restrict g = dout + o + c0;
                    for (int k = 0; k < 4; k++) {
                        if (off[k] < 0) continue;
                        float *restrict d = dfeat + (size_t)off[k] * c + c0;
                        UAKD_SIMD
                        for (int ch = 0; ch < nc; ch++) d[ch] += wt[k] * g[ch];
                    }
                }
            }
        }
    }
}

uakd_status uakd_pfkd_sample_hwc(const float *feat, int c, int h, int w, int stride, int r, int count, const float *xy,
                                 float *out) {
    UAKD_TRY(check_sample(c, h, w, stride, r, count));
    sample_hwc(feat, c, h, w, stride, r, count, xy, out, NULL, NULL);
    return UAKD_OK;
}

uakd_status uakd_pfkd_sample_hwc_backward(int c, int h, int w, int stride, int r, int count, const float *xy,
                                          const float *dout, float *dfeat) {
    UAKD_TRY(check_sample(c, h, w, stride, r, count));
    memset(dfeat, 0, sizeof(float) * (size_t)c * h * w);
    sample_hwc(NULL, c, h, w, stride, r, count, xy, NULL, dout, dfeat);
    return UAKD_OK;
}

uakd_status uakd_pfkd_sample(const float *feat, int c, int h, int w, int stride, int r, int count,
                             const float *xy, float *pts, float *out) {
    UAKD_TRY(check_sample(c, h, w, stride, r, count));
    fill_points(stride, r, count, xy, pts);
    sample_chw(feat, c, h, w, stride, r, count, xy, out, NULL, NULL);
    return UAKD_OK;
}

uakd_status uakd_pfkd_sample_backward(const float *feat, int c, int h, int w, int stride, int r, int count,
                                      const float *xy, const float *dout, float *pts, float *dfeat) {
    UAKD_TRY(check_sample(c, h, w, stride, r, count));
    fill_points(stride, r, count, xy, pts);
    memset(dfeat, 0, sizeof(float) * (size_t)c * h * w);
    sample_chw(NULL, c, h, w, stride, r, count, xy, NULL, dout, dfeat);
    return UAKD_OK;
}

/* The loss loop runs AVX2-wide where the CPU has it: compiled twice, for the baseline and for AVX2
 * without FMA, so every lane does exactly the baseline's operations (the same gradients; only the
 * order of the float64 loss sum differs). The sampling loops measured no faster with AVX2. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_CLONE 1
#endif

/* sum_q (s_q - t_q)^2 over one region pair, adding gw (s_q - t_q) into g (when not NULL). */
static inline __attribute__((always_inline)) double pair_body(int len, const float *s, const float *t, double gw,
                                                              float *g) {
    double ss = 0;
    if (g) {
        UAKD_SIMD_SUM(ss)
        for (int q = 0; q < len; q++) {
            const double d = (double)s[q] - t[q];
            ss += d * d;
            g[q] += (float)(gw * d);
        }
    } else {
        UAKD_SIMD_SUM(ss)
        for (int q = 0; q < len; q++) {
            const double d = (double)s[q] - t[q];
            ss += d * d;
        }
    }
    return ss;
}

static double pair_base(int len, const float *s, const float *t, double gw, float *g) {
    return pair_body(len, s, t, gw, g);
}

#ifdef HAVE_AVX2_CLONE
__attribute__((target("avx2"))) static double pair_avx2(int len, const float *s, const float *t, double gw, float *g) {
    return pair_body(len, s, t, gw, g);
}
#endif

double uakd_pfkd_loss(int n, int m, int c, int rr, const float *rs, int lds, const int *rs_off, const float *rt,
                      int ldt, const int *rt_off, const float *plan, double scale, float *grs) {
    double (*pair)(int, const float *, const float *, double, float *) = pair_base;
#ifdef HAVE_AVX2_CLONE
    if (__builtin_cpu_supports("avx2")) pair = pair_avx2;
#endif
    const double inv_d = 1.0 / ((double)c * rr);
    double total = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < m; j++) {
            const double p = plan[(size_t)i * m + j];
            if (p == 0) continue;
            double ss = 0;
            for (int ch = 0; ch < c; ch++)
                ss += pair(rr, rs + (size_t)ch * lds + rs_off[i], rt + (size_t)ch * ldt + rt_off[j],
                           2.0 * scale * p * inv_d, grs ? grs + (size_t)ch * lds + rs_off[i] : NULL);
            total += p * ss * inv_d;
        }
    }
    return scale * total;
}

/* att[0..len) = len * softmax(mean_abs / temp), added with weight 0.5 into acc. */
static void add_attention(int len, const double *mean_abs, double temp, double *acc) {
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < len; i++) mx = fmax(mx, mean_abs[i] / temp);
    for (int i = 0; i < len; i++) z += exp(mean_abs[i] / temp - mx);
    for (int i = 0; i < len; i++) acc[i] += 0.5 * len * exp(mean_abs[i] / temp - mx) / z;
}

static void attentions(int c, int hw, const float *f, double temp, double *spatial, double *channel, double *tmp_s,
                       double *tmp_c) {
    for (int p = 0; p < hw; p++) tmp_s[p] = 0;
    for (int ch = 0; ch < c; ch++) {
        double sc = 0;
        for (int p = 0; p < hw; p++) {
            const double a = fabs(f[(size_t)ch * hw + p]);
            sc += a;
            tmp_s[p] += a / c;
        }
        tmp_c[ch] = sc / hw;
    }
    add_attention(hw, tmp_s, temp, spatial);
    add_attention(c, tmp_c, temp, channel);
}

uakd_status uakd_fkd_loss(int c, int h, int w, const float *ft, const float *fs, double temp, double scale,
                          float *gs, double *work, double *loss) {
    if (c < 1 || h < 1 || w < 1 || !(temp > 0))
        return uakd_fail(UAKD_EINVAL, "fkd: bad sizes (c %d, h %d, w %d) or temperature %g (must be > 0)", c, h, w, temp);
    const int hw = h * w;
    double *spatial = work, *channel = work + hw, *tmp_s = channel + c, *tmp_c = tmp_s + hw;
    memset(spatial, 0, sizeof(double) * (size_t)(hw + c));
    attentions(c, hw, ft, temp, spatial, channel, tmp_s, tmp_c);
    attentions(c, hw, fs, temp, spatial, channel, tmp_s, tmp_c);
    const double inv = 1.0 / ((double)c * hw);
    double total = 0;
    for (int ch = 0; ch < c; ch++)
        for (int p = 0; p < hw; p++) {
            const size_t o = (size_t)ch * hw + p;
            const double mk = spatial[p] * channel[ch], d = (double)fs[o] - ft[o];
            total += mk * d * d;
            if (gs) gs[o] += (float)(scale * 2.0 * mk * d * inv);
        }
    *loss = scale * total * inv;
    return UAKD_OK;
}
