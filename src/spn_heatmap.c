/* SPNv2 heatmap targets and loss (models.md).
 *
 * Coordinates: x_hm = (x_in + 0.5) / s - 0.5 (pixel centres at integers on both grids, heatmap
 * pixel c covering input pixels s c .. s c + s - 1).
 * Target of a visible keypoint at heatmap position (x, y):
 *   t(r, c) = exp(-((c - x)^2 + (r - y)^2) / (2 sigma^2))   on the whole map, 0 for invisible ones.
 * Loss: L = sum_{visible (n, k)} sum_{r, c} (p - t)^2 / max(1, nvis);
 *   dL/dp = 2 (p - t) / nvis on visible maps, 0 on the others.
 * Arithmetic is in double; maps and gradients are float. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/spn.h"

void uakd_spn_config_default(uakd_spn_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->keypoints = 11;
    cfg->in_w = 768;
    cfg->in_h = 512;
    cfg->stride = 4;
    cfg->sigma = 2;
    cfg->refine = UAKD_SPN_SOFTARGMAX;
    cfg->window = 2;
    cfg->correct = 1;
    cfg->conf_thresh = 0.5;
    cfg->thresh_step = 0.1;
    cfg->min_keypoints = 5;
    cfg->z_max = 50;
}

uakd_status uakd_spn_config_check(const uakd_spn_config *cfg) {
    if (cfg->keypoints < 1 || cfg->keypoints > UAKD_SPN_MAX_KEYPOINTS)
        return uakd_fail(UAKD_EINVAL, "spn config: keypoints = %d outside 1..%d (Tango has 11)", cfg->keypoints,
                         UAKD_SPN_MAX_KEYPOINTS);
    if (cfg->stride < 1 || cfg->stride > 64)
        return uakd_fail(UAKD_EINVAL, "spn config: stride = %d outside 1..64 (SPNv2 uses 4)", cfg->stride);
    if (cfg->in_w < cfg->stride || cfg->in_h < cfg->stride || cfg->in_w > 16384 || cfg->in_h > 16384 ||
        cfg->in_w % cfg->stride || cfg->in_h % cfg->stride)
        return uakd_fail(UAKD_EINVAL, "spn config: input %dx%d must be multiples of the stride %d, at most 16384",
                         cfg->in_w, cfg->in_h, cfg->stride);
    if (!(cfg->sigma > 0.1 && cfg->sigma < 100))
        return uakd_fail(UAKD_EINVAL, "spn config: sigma = %g outside (0.1, 100) heatmap pixels (default 2)",
                         cfg->sigma);
    if (cfg->refine != UAKD_SPN_SOFTARGMAX && cfg->refine != UAKD_SPN_QUADRATIC)
        return uakd_fail(UAKD_EINVAL, "spn config: unknown refinement %d (softargmax 0, quadratic 1)", (int)cfg->refine);
    if (cfg->window < 1 || cfg->window > 32)
        return uakd_fail(UAKD_EINVAL, "spn config: window radius %d outside 1..32 (default 2: 5x5)", cfg->window);
    if (cfg->correct != 0 && cfg->correct != 1)
        return uakd_fail(UAKD_EINVAL, "spn config: correct = %d, expected 0 or 1", cfg->correct);
    if (!(cfg->conf_thresh > 0 && cfg->conf_thresh <= 1) || !(cfg->thresh_step > 0 && cfg->thresh_step <= 1))
        return uakd_fail(UAKD_EINVAL, "spn config: conf_thresh %g / thresh_step %g must lie in (0, 1] (0.5, 0.1)",
                         cfg->conf_thresh, cfg->thresh_step);
    if (cfg->min_keypoints < 4 || cfg->min_keypoints > UAKD_SPN_MAX_KEYPOINTS)
        return uakd_fail(UAKD_EINVAL, "spn config: min_keypoints = %d outside 4..%d; PnP needs >= 4", cfg->min_keypoints,
                         UAKD_SPN_MAX_KEYPOINTS);
    if (!(cfg->z_max > 0) || !isfinite(cfg->z_max))
        return uakd_fail(UAKD_EINVAL, "spn config: z_max = %g must be positive and finite (SPEED+: 50 m)", cfg->z_max);
    return UAKD_OK;
}

void uakd_spn_heatmap_size(const uakd_spn_config *cfg, int *hw, int *hh) {
    *hw = cfg->in_w / cfg->stride;
    *hh = cfg->in_h / cfg->stride;
}

void uakd_spn_to_heatmap(const uakd_spn_config *cfg, const double in[2], double hm[2]) {
    double s = cfg->stride, x = in[0], y = in[1];
    hm[0] = (x + 0.5) / s - 0.5;
    hm[1] = (y + 0.5) / s - 0.5;
}

void uakd_spn_to_input(const uakd_spn_config *cfg, const double hm[2], double in[2]) {
    double s = cfg->stride, x = hm[0], y = hm[1];
    in[0] = s * (x + 0.5) - 0.5;
    in[1] = s * (y + 0.5) - 0.5;
}

static uakd_status check_batch(const uakd_spn_config *cfg, int n) {
    UAKD_TRY(uakd_spn_config_check(cfg));
    if (n < 1 || n > (1 << 20)) return uakd_fail(UAKD_EINVAL, "spn: batch of %d images outside 1..2^20", n);
    return UAKD_OK;
}

uakd_status uakd_spn_targets(const uakd_spn_config *cfg, int n, const double *kp, const uint8_t *valid,
                             float *heatmaps, uint8_t *vis) {
    UAKD_TRY(check_batch(cfg, n));
    int hw, hh, K = cfg->keypoints;
    uakd_spn_heatmap_size(cfg, &hw, &hh);
    size_t plane = (size_t)hw * hh;
    double inv2s2 = 1 / (2 * cfg->sigma * cfg->sigma);
    double *gx = malloc((size_t)(hw + hh) * sizeof *gx), *gy = gx + hw;
    if (!gx) return uakd_fail(UAKD_ENOMEM, "spn targets: no memory for %d + %d Gaussian factors", hw, hh);
    for (size_t m = 0; m < (size_t)n * K; m++) {
        double x = kp[2 * m], y = kp[2 * m + 1];
        float *t = heatmaps + m * plane;
        int ok = (!valid || valid[m]) && isfinite(x) && isfinite(y) && x >= -0.5 && x < cfg->in_w - 0.5 &&
                 y >= -0.5 && y < cfg->in_h - 0.5;
        vis[m] = (uint8_t)ok;
        if (!ok) {
            memset(t, 0, plane * sizeof *t);
            continue;
        }
        double c[2];
        uakd_spn_to_heatmap(cfg, &kp[2 * m], c);
        for (int j = 0; j < hw; j++) gx[j] = exp(-(j - c[0]) * (j - c[0]) * inv2s2);
        for (int i = 0; i < hh; i++) gy[i] = exp(-(i - c[1]) * (i - c[1]) * inv2s2);
        for (int i = 0; i < hh; i++)
            for (int j = 0; j < hw; j++) t[(size_t)i * hw + j] = (float)(gy[i] * gx[j]);
    }
    free(gx);
    return UAKD_OK;
}

uakd_status uakd_spn_loss(const uakd_spn_config *cfg, int n, const float *pred, const float *target,
                          const uint8_t *vis, double scale, float *dpred, double *loss) {
    UAKD_TRY(check_batch(cfg, n));
    int hw, hh;
    uakd_spn_heatmap_size(cfg, &hw, &hh);
    size_t plane = (size_t)hw * hh, maps = (size_t)n * cfg->keypoints;
    size_t nvis = 0;
    for (size_t m = 0; m < maps; m++) nvis += vis[m] != 0;
    double norm = nvis > 1 ? (double)nvis : 1, sum = 0, g = 2 * scale / norm;
    for (size_t m = 0; m < maps; m++) {
        const float *p = pred + m * plane, *t = target + m * plane;
        float *d = dpred ? dpred + m * plane : NULL;
        if (!vis[m]) {
            if (d) memset(d, 0, plane * sizeof *d);
            continue;
        }
        double map_sum = 0;
        for (size_t i = 0; i < plane; i++) {
            double e = (double)p[i] - t[i];
            map_sum += e * e;
            if (d) d[i] = (float)(g * e);
        }
        sum += map_sum;
    }
    *loss = sum / norm;
    if (!isfinite(*loss))
        return uakd_fail(UAKD_EDEGENERATE, "spn heatmap loss is not finite: the predicted heatmaps diverged");
    return UAKD_OK;
}
