/* From decoded SPNv2 keypoints to PnP input, and the sanity check of the resulting pose (models.md).
 *
 * Selection: t_i = conf_thresh - i step (i = 0, 1, ..., while t_i > 0; t_i rounded to 12 decimals
 * so that decimal steps land on decimal values); the first t_i with #{k : conf_k > t_i} >= min_keypoints wins; none -> the image is
 * rejected. Correspondences: selected 2D points (optionally mapped by a 2x3 affine to image
 * pixels) with their 3D model points. Pose check: the model origin in the camera frame is t; it
 * must satisfy 0 < t_z < z_max and project (with distortion) into the image. A point beyond the
 * fold of the radial distortion (where r_d = r (1 + k1 r^2 + k2 r^4 + k3 r^6) stops increasing, e.g.
 * r = 2 for SPEED+) can land inside the image although it is far outside the field of view: such
 * points are rejected too (dr_d/dr must stay positive on [0, r], checked at 64 points). */
#include <math.h>

#include "uakd/spn.h"

uakd_status uakd_spn_select(const uakd_spn_config *cfg, const double *conf, uint8_t *selected, int *count,
                            double *thresh, int *accepted) {
    UAKD_TRY(uakd_spn_config_check(cfg));
    int K = cfg->keypoints;
    if (cfg->min_keypoints > K)
        return uakd_fail(UAKD_EINVAL, "spn select: min_keypoints = %d exceeds the %d keypoints: every image would be "
                         "rejected", cfg->min_keypoints, K);
    for (int i = 0;; i++) {
        /* snapped to 1e-12 so that 0.5 - 4 * 0.1 is 0.1, not 0.09999999999999998 */
        double t = nearbyint((cfg->conf_thresh - i * cfg->thresh_step) * 1e12) / 1e12;
        if (!(t > 0)) break;
        int n = 0;
        for (int k = 0; k < K; k++) n += conf[k] > t;
        if (n >= cfg->min_keypoints) {
            for (int k = 0; k < K; k++) selected[k] = conf[k] > t;
            *count = n;
            *thresh = t;
            *accepted = 1;
            return UAKD_OK;
        }
    }
    for (int k = 0; k < K; k++) selected[k] = 0;
    *count = 0;
    *thresh = 0;
    *accepted = 0;
    return UAKD_OK;
}

uakd_status uakd_spn_correspondences(const uakd_spn_config *cfg, const double *xy, const uint8_t *selected,
                                     const double *kp3d, const double image_from_input[6], double *pts2d,
                                     double *pts3d, int *count) {
    UAKD_TRY(uakd_spn_config_check(cfg));
    const double *A = image_from_input;
    int n = 0;
    for (int k = 0; k < cfg->keypoints; k++) {
        if (!selected[k]) continue;
        double x = xy[2 * k], y = xy[2 * k + 1];
        if (!isfinite(x) || !isfinite(y))
            return uakd_fail(UAKD_EDEGENERATE, "spn correspondences: keypoint %d position is not finite", k);
        pts2d[2 * n] = A ? A[0] * x + A[1] * y + A[2] : x;
        pts2d[2 * n + 1] = A ? A[3] * x + A[4] * y + A[5] : y;
        for (int c = 0; c < 3; c++) pts3d[3 * n + c] = kp3d[3 * k + c];
        n++;
    }
    *count = n;
    return UAKD_OK;
}

/* 1 when r_d(r') increases on [0, r]. */
static int before_fold(const uakd_camera *cam, double r) {
    double k1 = cam->dist[0], k2 = cam->dist[1], k3 = cam->dist[4];
    for (int i = 1; i <= 64; i++) {
        double q = r * i / 64, q2 = q * q;
        if (!(1 + q2 * (3 * k1 + q2 * (5 * k2 + 7 * k3 * q2)) > 0)) return 0;
    }
    return 1;
}

uakd_spn_pose_verdict uakd_spn_pose_check(const uakd_pose *pose, const uakd_camera *cam, int width, int height,
                                          double z_max) {
    const double *t = pose->t;
    if (!(isfinite(t[0]) && isfinite(t[1]) && t[2] > 0 && t[2] < z_max)) return UAKD_SPN_POSE_DEPTH;
    double uv[2], xn = t[0] / t[2], yn = t[1] / t[2];
    if (!before_fold(cam, sqrt(xn * xn + yn * yn))) return UAKD_SPN_POSE_FOV;
    uakd_camera_distort_to_pixel(cam, xn, yn, uv);
    if (!(uv[0] >= -0.5 && uv[0] < width - 0.5 && uv[1] >= -0.5 && uv[1] < height - 0.5)) return UAKD_SPN_POSE_FOV;
    return UAKD_SPN_POSE_OK;
}
