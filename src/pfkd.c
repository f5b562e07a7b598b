/* PFKD regions and losses, FKD attention-masked feature loss (formulas in uakd/pfkd.h).
 *
 * Regions are sampled with the engine's bilinear kernel (uakd_sample_forward / _backward, zero
 * outside the map) at x = u / s - 0.5 + a - (r-1)/2; the PFKD loss is the plan-weighted mean
 * squared difference of region vectors; FKD weighs a whole-map squared difference with the
 * averaged, detached spatial x channel attention of teacher and student. */
#include "uakd/pfkd.h"

#include <math.h>
#include <string.h>

#include "uakd/layers.h"

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

uakd_status uakd_pfkd_sample(const float *feat, int c, int h, int w, int stride, int r, int count,
                             const float *xy, float *pts, float *out) {
    UAKD_TRY(check_sample(c, h, w, stride, r, count));
    if (count == 0) return UAKD_OK;
    fill_points(stride, r, count, xy, pts);
    uakd_sample_forward(1, c, h, w, count * r * r, feat, pts, out);
    return UAKD_OK;
}

uakd_status uakd_pfkd_sample_backward(const float *feat, int c, int h, int w, int stride, int r, int count,
                                      const float *xy, const float *dout, float *pts, float *dfeat) {
    UAKD_TRY(check_sample(c, h, w, stride, r, count));
    if (count == 0) {
        memset(dfeat, 0, sizeof(float) * (size_t)c * h * w);
        return UAKD_OK;
    }
    fill_points(stride, r, count, xy, pts);
    uakd_sample_backward(1, c, h, w, count * r * r, feat, pts, dout, dfeat, NULL);
    return UAKD_OK;
}

double uakd_pfkd_loss(int n, int m, int c, int rr, const float *rs, int lds, const int *rs_off, const float *rt,
                      int ldt, const int *rt_off, const float *plan, double scale, float *grs) {
    const double inv_d = 1.0 / ((double)c * rr);
    double total = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < m; j++) {
            const double p = plan[(size_t)i * m + j];
            if (p == 0) continue;
            double ss = 0;
            for (int ch = 0; ch < c; ch++) {
                const float *s = rs + (size_t)ch * lds + rs_off[i], *t = rt + (size_t)ch * ldt + rt_off[j];
                float *g = grs ? grs + (size_t)ch * lds + rs_off[i] : NULL;
                const double gw = 2.0 * scale * p * inv_d;
                for (int q = 0; q < rr; q++) {
                    const double d = (double)s[q] - t[q];
                    ss += d * d;
                    if (g) g[q] += (float)(gw * d);
                }
            }
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
