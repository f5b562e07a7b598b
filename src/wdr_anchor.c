/* WDRNet levels, anchors and offset coding (models.md):
 *   level l: stride s = 8 * 2^l, anchor A = 32 * 2^l, grid ceil(W / s) x ceil(H / s);
 *   cell centre c = (col * s + s/2, row * s + s/2); dx = (u - c_x) / A, dy = (v - c_y) / A;
 *   object size S = max(w, h) + 1 of the corners' box; g_l = exp(-(log2(S / A_l))^2);
 *   quota n_l = floor(total * g_l / sum_l g_l + 0.5).
 * Also the configuration defaults and the crop <-> image affine maps (x_crop = M [x_img, y_img, 1];
 * inverse by the 2x2 block's inverse). */
#include <math.h>
#include <string.h>

#include "uakd/wdr.h"

uakd_status uakd_wdr_levels_init(uakd_wdr_levels *lv, int nlevels, int in_w, int in_h) {
    if (nlevels < 1 || nlevels > UAKD_WDR_MAX_LEVELS)
        return uakd_fail(UAKD_EINVAL, "wdr levels: %d levels requested; WDRNet uses 4 (DarkNet-Tiny) or 5 (DarkNet-53)",
                         nlevels);
    if (in_w < 1 || in_h < 1 || in_w > (1 << 16) || in_h > (1 << 16))
        return uakd_fail(UAKD_EINVAL, "wdr levels: input size %dx%d outside 1..65536", in_w, in_h);
    memset(lv, 0, sizeof *lv);
    lv->n = nlevels;
    lv->in_w = in_w;
    lv->in_h = in_h;
    for (int l = 0; l < nlevels; l++) {
        lv->stride[l] = 8 << l;
        lv->anchor[l] = 32 << l;
        lv->gw[l] = (in_w + lv->stride[l] - 1) / lv->stride[l];
        lv->gh[l] = (in_h + lv->stride[l] - 1) / lv->stride[l];
    }
    return UAKD_OK;
}

uakd_status uakd_wdr_levels_set_grid(uakd_wdr_levels *lv, int level, int gw, int gh) {
    if (level < 0 || level >= lv->n)
        return uakd_fail(UAKD_EINVAL, "wdr levels: level %d outside 0..%d", level, lv->n - 1);
    if (gw < 1 || gh < 1 || gw > (1 << 15) || gh > (1 << 15))
        return uakd_fail(UAKD_EINVAL, "wdr levels: grid %dx%d of level %d out of range", gw, gh, level);
    lv->gw[level] = gw;
    lv->gh[level] = gh;
    return UAKD_OK;
}

int uakd_wdr_level_cells(const uakd_wdr_levels *lv, int level) { return lv->gw[level] * lv->gh[level]; }

void uakd_wdr_cell_centre(const uakd_wdr_levels *lv, int level, int col, int row, double c[2]) {
    double s = lv->stride[level];
    c[0] = col * s + s / 2;
    c[1] = row * s + s / 2;
}

void uakd_wdr_encode(const uakd_wdr_levels *lv, int level, int col, int row, const double corners[16], double off[16]) {
    double c[2], A = lv->anchor[level];
    uakd_wdr_cell_centre(lv, level, col, row, c);
    for (int k = 0; k < 8; k++) {
        off[k] = (corners[2 * k] - c[0]) / A;
        off[8 + k] = (corners[2 * k + 1] - c[1]) / A;
    }
}

void uakd_wdr_decode_cell(const uakd_wdr_levels *lv, int level, int col, int row, const double off[16],
                          double corners[16]) {
    double c[2], A = lv->anchor[level];
    uakd_wdr_cell_centre(lv, level, col, row, c);
    for (int k = 0; k < 8; k++) {
        corners[2 * k] = c[0] + A * off[k];
        corners[2 * k + 1] = c[1] + A * off[8 + k];
    }
}

double uakd_wdr_box_size(const double corners[16]) {
    double x0 = corners[0], x1 = corners[0], y0 = corners[1], y1 = corners[1];
    for (int k = 1; k < 8; k++) {
        x0 = fmin(x0, corners[2 * k]);
        x1 = fmax(x1, corners[2 * k]);
        y0 = fmin(y0, corners[2 * k + 1]);
        y1 = fmax(y1, corners[2 * k + 1]);
    }
    return fmax(x1 - x0, y1 - y0) + 1;
}

int uakd_wdr_quotas(const uakd_wdr_levels *lv, double size, int total, int quota[UAKD_WDR_MAX_LEVELS]) {
    double g[UAKD_WDR_MAX_LEVELS], sum = 0;
    for (int l = 0; l < lv->n; l++) {
        double r = log2(size / lv->anchor[l]);
        g[l] = exp(-r * r);
        sum += g[l];
    }
    int n = 0;
    for (int l = 0; l < lv->n; l++) {
        /* sum == 0 only for absurd sizes (every g underflows): give all to the nearest level */
        quota[l] = sum > 0 ? (int)floor(total * g[l] / sum + 0.5) : 0;
        n += quota[l];
    }
    if (sum == 0 && lv->n > 0) {
        int l = size < lv->anchor[0] ? 0 : lv->n - 1;
        quota[l] = total;
        n = total;
    }
    return n;
}

uakd_status uakd_wdr_affine_invert(const double m[6], double inv[6]) {
    double det = m[0] * m[4] - m[1] * m[3];
    double scale = fabs(m[0]) + fabs(m[1]) + fabs(m[3]) + fabs(m[4]);
    if (!(isfinite(det) && isfinite(m[2]) && isfinite(m[5]) && fabs(det) > 1e-14 * scale * scale))
        return uakd_fail(UAKD_EDEGENERATE, "wdr: crop affine [%g %g %g; %g %g %g] is singular or not finite", m[0], m[1],
                         m[2], m[3], m[4], m[5]);
    double a = m[4] / det, b = -m[1] / det, d = -m[3] / det, e = m[0] / det;
    inv[0] = a;
    inv[1] = b;
    inv[2] = -(a * m[2] + b * m[5]);
    inv[3] = d;
    inv[4] = e;
    inv[5] = -(d * m[2] + e * m[5]);
    return UAKD_OK;
}

uakd_status uakd_wdr_crop_to_image(const double crop_from_image[6], double *pts, int n) {
    double inv[6];
    UAKD_TRY(uakd_wdr_affine_invert(crop_from_image, inv));
    for (int i = 0; i < n; i++) {
        double x = pts[2 * i], y = pts[2 * i + 1];
        pts[2 * i] = inv[0] * x + inv[1] * y + inv[2];
        pts[2 * i + 1] = inv[3] * x + inv[4] * y + inv[5];
    }
    return UAKD_OK;
}

void uakd_wdr_config_default(uakd_wdr_config *cfg) {
    cfg->quota_total = 10;
    cfg->focal_alpha = 0.25;
    cfg->focal_gamma = 2;
    cfg->huber_delta = 0.02;
    cfg->w_cls = 0.1;
    cfg->w_pose = 1.0;
    cfg->cls_norm = UAKD_WDR_NORM_NPOS;
    cfg->pose_norm = UAKD_WDR_NORM_IMAGES;
    cfg->conf_thresh = 0.1;
}

uakd_status uakd_wdr_config_check(const uakd_wdr_config *cfg) {
    if (cfg->quota_total < 1 || cfg->quota_total > 10000)
        return uakd_fail(UAKD_EINVAL, "wdr config: quota_total %d outside 1..10000 (default 10)", cfg->quota_total);
    if (!(cfg->focal_alpha >= 0 && cfg->focal_alpha <= 1))
        return uakd_fail(UAKD_EINVAL, "wdr config: focal_alpha %g outside [0, 1] (default 0.25)", cfg->focal_alpha);
    if (!(cfg->focal_gamma >= 0 && cfg->focal_gamma <= 10))
        return uakd_fail(UAKD_EINVAL, "wdr config: focal_gamma %g outside [0, 10] (default 2)", cfg->focal_gamma);
    if (!(cfg->huber_delta > 0 && cfg->huber_delta < 1e6))
        return uakd_fail(UAKD_EINVAL, "wdr config: huber_delta %g must be positive (default 0.02)", cfg->huber_delta);
    if (!(isfinite(cfg->w_cls) && isfinite(cfg->w_pose)))
        return uakd_fail(UAKD_EINVAL, "wdr config: loss weights must be finite (defaults 0.1 and 1.0)");
    if ((unsigned)cfg->cls_norm > UAKD_WDR_NORM_NPOS || (unsigned)cfg->pose_norm > UAKD_WDR_NORM_NPOS)
        return uakd_fail(UAKD_EINVAL, "wdr config: unknown loss normalisation");
    if (!(cfg->conf_thresh >= 0 && cfg->conf_thresh < 1))
        return uakd_fail(UAKD_EINVAL, "wdr config: conf_thresh %g outside [0, 1) (default 0.1)", cfg->conf_thresh);
    return UAKD_OK;
}
