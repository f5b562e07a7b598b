/* Sub-pixel decoding of SPNv2 heatmaps and the local predictions of distillation (method.md §2).
 *
 * Per map: (mx, my) = first maximum in row-major order, conf = h(my, mx).
 * Soft-argmax: window W = [mx - r, mx + r] x [my - r, my + r] clipped to the map, w = max(h, 0),
 *   S = sum_W w, cx = sum_W w (c - mx) / S, cy = sum_W w (r - my) / S.
 *   Correction (per axis, window columns j = lo..hi relative to mx): G(t) = exp(-t^2 / (2 sigma^2)),
 *   g(d) = sum_j j G(j - d) / sum_j G(j - d) is the centroid of a Gaussian centred at offset d,
 *   increasing with g'(d) = Var_G(j) / sigma^2 (the weights form an exponential family in d);
 *   d = g^-1(cx) by safeguarded Newton in [-1, 1] (clamped outside). x_hm = mx + d.
 *   Backward: dcx/dh(r, c) = [h > 0] ((c - mx) - cx) / S in W, dd/dcx = 1 / g'(d) (0 when clamped).
 * Quadratic: per axis through (-1, L-), (0, L0), (+1, L+) with L = log h when all three are > 0,
 *   else h: d = (L- - L+) / (2 (L- - 2 L0 + L+)), no change if the denominator is >= 0. At a border
 *   the three samples nearest to it are used (the vertex may then lie outside them); the offset
 *   from the argmax is clamped to [-1, 1].
 * Input pixels: x_in = s (x_hm + 0.5) - 0.5; local predictions divide by (in_w, in_h). */
#include <math.h>
#include <string.h>

#include "uakd/spn.h"

typedef struct peak {
    int mx, my;      /* argmax pixel */
    double conf;     /* h(my, mx) */
    double xy[2];    /* refined peak, heatmap px */
    int x0, x1, y0, y1; /* soft-argmax window */
    double S;        /* window sum of max(h, 0); 0 when the soft-argmax was not used or is empty */
    double c[2];     /* centroid offsets from the argmax */
    double gain[2];  /* dd/dc per axis */
} peak;

static uakd_status argmax(const float *map, int hw, int hh, peak *p) {
    size_t n = (size_t)hw * hh, best = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(map[i])) return uakd_fail(UAKD_EDEGENERATE, "spn decode: heatmap value %zu is not finite", i);
        if (map[i] > map[best]) best = i;
    }
    memset(p, 0, sizeof *p);
    p->mx = (int)(best % (size_t)hw);
    p->my = (int)(best / (size_t)hw);
    p->conf = map[best];
    p->xy[0] = p->mx;
    p->xy[1] = p->my;
    return UAKD_OK;
}

/* Centroid g(d) of G(j - d) over j = lo..hi and its derivative g'(d). */
static double window_centroid(int lo, int hi, double sigma, double d, double *deriv) {
    double inv2s2 = 1 / (2 * sigma * sigma), tmin = INFINITY;
    for (int j = lo; j <= hi; j++) tmin = fmin(tmin, (j - d) * (j - d));
    double s0 = 0, s1 = 0, s2 = 0;
    for (int j = lo; j <= hi; j++) {
        double w = exp(-((j - d) * (j - d) - tmin) * inv2s2);
        s0 += w;
        s1 += w * j;
        s2 += w * j * j;
    }
    double mean = s1 / s0;
    *deriv = fmax(s2 / s0 - mean * mean, 0) / (sigma * sigma);
    return mean;
}

/* d with g(d) = c, clamped to [-1, 1]; *gain = dd/dc. */
static double invert_centroid(int lo, int hi, double sigma, double c, double *gain) {
    double dlo, dhi;
    *gain = 0;
    if (lo == hi) return 0;
    if (c <= window_centroid(lo, hi, sigma, -1, &dlo)) return -1;
    if (c >= window_centroid(lo, hi, sigma, 1, &dhi)) return 1;
    double a = -1, b = 1, d = fmin(fmax(c, -0.99), 0.99), deriv = 1;
    for (int it = 0; it < 100; it++) {
        double v = window_centroid(lo, hi, sigma, d, &deriv) - c;
        if (v == 0) break;
        if (v < 0) a = d;
        else b = d;
        double next = deriv > 0 ? d - v / deriv : 0.5 * (a + b);
        if (!(next > a && next < b)) next = 0.5 * (a + b);
        if (fabs(next - d) < 1e-15 || b - a < 1e-15) {
            d = next;
            break;
        }
        d = next;
    }
    window_centroid(lo, hi, sigma, d, &deriv);
    *gain = deriv > 0 ? 1 / deriv : 0;
    return d;
}

static void soft_argmax(const uakd_spn_config *cfg, const float *map, int hw, int hh, peak *p) {
    int r = cfg->window;
    p->x0 = p->mx - r > 0 ? p->mx - r : 0;
    p->x1 = p->mx + r < hw - 1 ? p->mx + r : hw - 1;
    p->y0 = p->my - r > 0 ? p->my - r : 0;
    p->y1 = p->my + r < hh - 1 ? p->my + r : hh - 1;
    double S = 0, sx = 0, sy = 0;
    for (int i = p->y0; i <= p->y1; i++)
        for (int j = p->x0; j <= p->x1; j++) {
            double w = fmax(map[(size_t)i * hw + j], 0);
            S += w;
            sx += w * (j - p->mx);
            sy += w * (i - p->my);
        }
    if (!(S > 0)) return; /* no positive value: the argmax pixel, no gradient */
    p->S = S;
    p->c[0] = sx / S;
    p->c[1] = sy / S;
    int lo[2] = {p->x0 - p->mx, p->y0 - p->my}, hi[2] = {p->x1 - p->mx, p->y1 - p->my};
    for (int a = 0; a < 2; a++) {
        double d = p->c[a];
        p->gain[a] = 1;
        if (cfg->correct) d = invert_centroid(lo[a], hi[a], cfg->sigma, p->c[a], &p->gain[a]);
        p->xy[a] += d;
    }
}

/* Vertex of the parabola through (-1, a), (0, b), (1, c) relative to the middle point; 0 when it
 * has no maximum. */
static double parabola(double a, double b, double c) {
    if (a > 0 && b > 0 && c > 0) {
        a = log(a);
        b = log(b);
        c = log(c);
    }
    double den = a - 2 * b + c;
    return den < 0 ? 0.5 * (a - c) / den : NAN;
}

/* Refined offset from the argmax m along one axis of n samples v[i * step]: the parabola through
 * the argmax and its neighbours, or, at a border, through the three samples nearest to it;
 * clamped to [-1, 1]. */
static double axis_offset(const float *v, int m, int n, size_t step) {
    if (n < 3) return 0;
    int cm = m < 1 ? 1 : m > n - 2 ? n - 2 : m;
    double d = parabola(v[(cm - 1) * step], v[cm * step], v[(cm + 1) * step]);
    if (!isfinite(d)) return 0;
    return fmin(fmax(cm + d - m, -1), 1);
}

static void quadratic(const float *map, int hw, int hh, peak *p) {
    p->xy[0] += axis_offset(map + (size_t)p->my * hw, p->mx, hw, 1);
    p->xy[1] += axis_offset(map + p->mx, p->my, hh, (size_t)hw);
}

static uakd_status decode_map(const uakd_spn_config *cfg, const float *map, uakd_spn_refine refine, peak *p) {
    int hw, hh;
    uakd_spn_heatmap_size(cfg, &hw, &hh);
    UAKD_TRY(argmax(map, hw, hh, p));
    if (refine == UAKD_SPN_SOFTARGMAX) soft_argmax(cfg, map, hw, hh, p);
    else quadratic(map, hw, hh, p);
    return UAKD_OK;
}

uakd_status uakd_spn_peak(const uakd_spn_config *cfg, const float *map, double xy[2], double *conf) {
    UAKD_TRY(uakd_spn_config_check(cfg));
    peak p;
    UAKD_TRY(decode_map(cfg, map, cfg->refine, &p));
    xy[0] = p.xy[0];
    xy[1] = p.xy[1];
    *conf = p.conf;
    return UAKD_OK;
}

/* All maps of one image with a given refinement: xy in input pixels. */
static uakd_status decode_image(const uakd_spn_config *cfg, const float *hm, uakd_spn_refine refine, double *xy,
                                double *conf) {
    UAKD_TRY(uakd_spn_config_check(cfg));
    int hw, hh;
    uakd_spn_heatmap_size(cfg, &hw, &hh);
    for (int k = 0; k < cfg->keypoints; k++) {
        peak p;
        uakd_status st = decode_map(cfg, hm + (size_t)k * hw * hh, refine, &p);
        if (st != UAKD_OK) return uakd_fail_context(st, "keypoint %d: ", k);
        uakd_spn_to_input(cfg, p.xy, &xy[2 * k]);
        conf[k] = p.conf;
    }
    return UAKD_OK;
}

uakd_status uakd_spn_decode(const uakd_spn_config *cfg, const float *hm, double *xy, double *conf) {
    return decode_image(cfg, hm, cfg->refine, xy, conf);
}

static uakd_status local(const uakd_spn_config *cfg, const float *hm, uakd_spn_refine refine, float *pos,
                         float *conf) {
    double xy[2 * UAKD_SPN_MAX_KEYPOINTS], c[UAKD_SPN_MAX_KEYPOINTS];
    UAKD_TRY(decode_image(cfg, hm, refine, xy, c));
    for (int k = 0; k < cfg->keypoints; k++) {
        pos[2 * k] = (float)(xy[2 * k] / cfg->in_w);
        pos[2 * k + 1] = (float)(xy[2 * k + 1] / cfg->in_h);
        conf[k] = (float)c[k];
    }
    return UAKD_OK;
}

uakd_status uakd_spn_local(const uakd_spn_config *cfg, const float *hm, float *pos, float *conf) {
    return local(cfg, hm, cfg->refine, pos, conf);
}

uakd_status uakd_spn_student_local(const uakd_spn_config *cfg, const float *hm, float *pos, float *conf) {
    return local(cfg, hm, UAKD_SPN_SOFTARGMAX, pos, conf);
}

uakd_status uakd_spn_member_peaks(const uakd_spn_config *cfg, int E, const float *const *members, float *pred,
                                  float *conf) {
    if (E < 1) return uakd_fail(UAKD_EINVAL, "spn member peaks: %d ensemble members", E);
    int K = cfg->keypoints;
    for (int e = 0; e < E; e++) {
        double xy[2 * UAKD_SPN_MAX_KEYPOINTS], c[UAKD_SPN_MAX_KEYPOINTS];
        uakd_status st = decode_image(cfg, members[e], cfg->refine, xy, c);
        if (st != UAKD_OK) return uakd_fail_context(st, "ensemble member %d: ", e);
        for (int k = 0; k < K; k++) {
            pred[2 * (e * K + k)] = (float)xy[2 * k];
            pred[2 * (e * K + k) + 1] = (float)xy[2 * k + 1];
            conf[e * K + k] = (float)c[k];
        }
    }
    return UAKD_OK;
}

uakd_status uakd_spn_student_local_backward(const uakd_spn_config *cfg, const float *hm, const float *dpos,
                                            const float *dconf, float *dhm) {
    UAKD_TRY(uakd_spn_config_check(cfg));
    int hw, hh;
    uakd_spn_heatmap_size(cfg, &hw, &hh);
    size_t plane = (size_t)hw * hh;
    for (int k = 0; k < cfg->keypoints; k++) {
        const float *map = hm + k * plane;
        float *d = dhm + k * plane;
        peak p;
        UAKD_TRY(decode_map(cfg, map, UAKD_SPN_SOFTARGMAX, &p));
        if (dconf) d[(size_t)p.my * hw + p.mx] += dconf[k];
        if (!(p.S > 0)) continue;
        /* d pos / d x_hm = s / in_w (x), s / in_h (y) */
        double gx = dpos[2 * k] * cfg->stride / cfg->in_w * p.gain[0] / p.S;
        double gy = dpos[2 * k + 1] * cfg->stride / cfg->in_h * p.gain[1] / p.S;
        for (int i = p.y0; i <= p.y1; i++)
            for (int j = p.x0; j <= p.x1; j++)
                if (map[(size_t)i * hw + j] > 0)
                    d[(size_t)i * hw + j] += (float)(gx * ((j - p.mx) - p.c[0]) + gy * ((i - p.my) - p.c[1]));
    }
    return UAKD_OK;
}
