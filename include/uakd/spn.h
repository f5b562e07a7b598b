/* SPNv2 heatmap mathematics, independent of the network engine: Gaussian heatmap targets, the
 * squared-error loss and its gradient, sub-pixel peak decoding (soft-argmax in a window with a
 * Gaussian bias correction, or a log-domain quadratic fit) with its backward, keypoint selection
 * for PnP, pose sanity checks, the local predictions used by distillation, and two photometric
 * augmentations of the SPNv2 recipe (random erasing, sun flare).
 *
 * Conventions (models.md SPNv2, method.md §2):
 * - Keypoint coordinates are pixels of the network input with pixel centres at integer coordinates
 *   (OpenCV convention, as the data module and the camera projection produce them): input pixel i
 *   covers [i - 0.5, i + 0.5).
 * - Heatmaps have stride s (4): in_w x in_h -> (in_w / s) x (in_h / s), 768x512 -> 192x128.
 *   Heatmap pixel (row r, col c) covers the input pixels x in [s c, s c + s), y in [s r, s r + s);
 *   its centre is the input point (s c + (s-1)/2, s r + (s-1)/2). Hence
 *       x_hm = (x_in + 0.5) / s - 0.5,        x_in = s (x_hm + 0.5) - 0.5      (same for y).
 *   (method.md §6 writes x / stride - 0.5 for PFKD: that is the same map for coordinates whose
 *   pixel centres sit at i + 0.5; with this module's integer-centre coordinates it is 0.5 input px off.)
 * - Target of keypoint k: h(r, c) = exp(-((c - x_hm)^2 + (r - y_hm)^2) / (2 sigma^2)), sigma = 2
 *   heatmap pixels, evaluated on the whole map (no truncation); its continuous peak is 1 at the
 *   keypoint. A keypoint is visible when its input position is finite and inside the image,
 *   x_in in [-0.5, in_w - 0.5), y_in in [-0.5, in_h - 0.5) (and the caller's valid flag is set);
 *   an invisible keypoint gets an all-zero map and is excluded from the loss.
 * - Maps are float32 NCHW: (N, K, hh, hw), K = 11 keypoints; the block of one image is
 *   hm + image * K * hh * hw and the functions below that work on one image take that pointer.
 * - Confidence of a decoded keypoint = the heatmap value at its argmax pixel (not the refined
 *   peak), for every refinement method; selection for PnP thresholds that value.
 */
#ifndef UAKD_SPN_H
#define UAKD_SPN_H

#include <stdint.h>

#include "uakd/geom.h"
#include "uakd/image.h"
#include "uakd/rng.h"
#include "uakd/status.h"

#define UAKD_SPN_MAX_KEYPOINTS 64

typedef enum uakd_spn_refine {
    /* Centroid of max(h, 0) over the (2 window + 1)^2 pixels around the argmax (clipped at the
     * border); with `correct` the per-axis centroid offset c is mapped to the Gaussian centre
     * offset d solving g(d) = c, g(d) = sum_j j G(j - d) / sum_j G(j - d), G(t) = exp(-t^2 / (2
     * sigma^2)), j over the window's columns (rows) relative to the argmax: exact for a noise-free
     * Gaussian of the target's sigma, whereas the plain centroid of a truncated window is pulled
     * towards the argmax pixel (0.3 px at a 0.5 px offset with a 5x5 window and sigma 2). d is
     * clamped to [-1, 1] heatmap px around the argmax. Differentiable (uakd_spn_student_local). */
    UAKD_SPN_SOFTARGMAX = 0,
    /* Per axis, a parabola through log h at the argmax and its two neighbours (exact for a
     * Gaussian): d = (L(-1) - L(+1)) / (2 (L(-1) - 2 L(0) + L(+1))); the values themselves instead
     * of their logs when one is <= 0; d = 0 for a flat top. At a border the three samples nearest
     * to it are fitted instead. d is clamped to [-1, 1]. */
    UAKD_SPN_QUADRATIC = 1,
} uakd_spn_refine;

/* Every field with its default (uakd_spn_config_default). */
typedef struct uakd_spn_config {
    int keypoints;          /* K: 11 (Tango) */
    int in_w, in_h;         /* network input: 768 x 512; multiples of stride */
    int stride;             /* 4 */
    double sigma;           /* 2: target Gaussian, heatmap px */
    uakd_spn_refine refine; /* UAKD_SPN_SOFTARGMAX */
    int window;             /* 2: soft-argmax window radius (5x5) */
    int correct;            /* 1: Gaussian bias correction of the soft-argmax (0: plain centroid) */
    double conf_thresh;     /* 0.5: first selection threshold on the peak value */
    double thresh_step;     /* 0.1: the threshold is lowered by this while fewer than min_keypoints pass */
    int min_keypoints;      /* 5: fewer at the lowest threshold (> 0) rejects the image */
    double z_max;           /* 50: accepted poses have 0 < t_z < z_max (model units, SPEED+: m) */
} uakd_spn_config;

void uakd_spn_config_default(uakd_spn_config *cfg);
uakd_status uakd_spn_config_check(const uakd_spn_config *cfg);
/* Heatmap size: in_w / stride x in_h / stride. */
void uakd_spn_heatmap_size(const uakd_spn_config *cfg, int *hw, int *hh);
/* Input pixel <-> heatmap pixel, in place-safe (in may equal out). */
void uakd_spn_to_heatmap(const uakd_spn_config *cfg, const double in[2], double hm[2]);
void uakd_spn_to_input(const uakd_spn_config *cfg, const double hm[2], double in[2]);

/* Targets of a batch. kp: (n, K, 2) input pixels; valid: (n, K) or NULL (all valid), 0 marks a
 * keypoint the caller knows is unusable (e.g. behind the camera). heatmaps: (n, K, hh, hw), every
 * entry assigned; vis: (n, K), 1 for the keypoints that enter the loss. */
uakd_status uakd_spn_targets(const uakd_spn_config *cfg, int n, const double *kp, const uint8_t *valid,
                             float *heatmaps, uint8_t *vis);

/* L = sum over visible (image, keypoint) and pixels of (pred - target)^2 / max(1, number visible):
 * squared error summed over pixels, averaged over the visible keypoints of the batch. If dpred is
 * not NULL it is assigned scale * dL/dpred = scale * 2 (pred - target) / nvis on visible maps and 0
 * elsewhere. Fails when the loss is not finite. */
uakd_status uakd_spn_loss(const uakd_spn_config *cfg, int n, const float *pred, const float *target,
                          const uint8_t *vis, double scale, float *dpred, double *loss);

/* One map (hh, hw): argmax (first maximum in row-major order) refined with cfg->refine.
 * xy = the peak in heatmap pixels, *conf = the argmax pixel's value. Fails on a non-finite map. */
uakd_status uakd_spn_peak(const uakd_spn_config *cfg, const float *map, double xy[2], double *conf);
/* All K maps of one image: xy (K, 2) in input pixels, conf (K). */
uakd_status uakd_spn_decode(const uakd_spn_config *cfg, const float *hm, double *xy, double *conf);

/* Selection for PnP (models.md): thresholds t = conf_thresh - i thresh_step (rounded to 12
 * decimals), i = 0, 1, ... while t > 0; the first at which at least min_keypoints keypoints have conf > t is used. selected (K)
 * marks them, *count their number, *thresh the threshold. *accepted = 0 (and nothing selected,
 * *count = 0) when even the lowest threshold leaves fewer than min_keypoints: reject the image.
 * Fails if min_keypoints > keypoints. */
uakd_status uakd_spn_select(const uakd_spn_config *cfg, const double *conf, uint8_t *selected, int *count,
                            double *thresh, int *accepted);
/* Correspondences of the selected keypoints for PnP (uakd/pnp.h layouts): pts2d (count, 2), pts3d
 * (count, 3) in keypoint order. xy are input pixels; with image_from_input (2x3 row-major,
 * [u; v] = A [x; y; 1], e.g. the data module's Ainv) not NULL the 2D points are mapped to original
 * image pixels, where the camera and its distortion apply. kp3d: (K, 3) model points. */
uakd_status uakd_spn_correspondences(const uakd_spn_config *cfg, const double *xy, const uint8_t *selected,
                                     const double *kp3d, const double image_from_input[6], double *pts2d,
                                     double *pts3d, int *count);

typedef enum uakd_spn_pose_verdict {
    UAKD_SPN_POSE_OK = 0,
    UAKD_SPN_POSE_DEPTH = 1, /* t_z not in (0, z_max) or not finite */
    UAKD_SPN_POSE_FOV = 2,   /* the model origin projects outside the image */
} uakd_spn_pose_verdict;

/* Pose sanity: the model origin (camera point t) must have 0 < t_z < z_max and project, with the
 * camera's distortion, inside the width x height image ([-0.5, width - 0.5) x [-0.5, height - 0.5)),
 * before the fold of the radial distortion (beyond it a far off-axis point can wrap into the image). */
uakd_spn_pose_verdict uakd_spn_pose_check(const uakd_pose *pose, const uakd_camera *cam, int width, int height,
                                          double z_max);

/* Local predictions for distillation (method.md §2), one image. pos (K, 2) = peak in input
 * pixels divided by (in_w, in_h); conf (K) = peak value. uakd_spn_local uses cfg->refine. */
uakd_status uakd_spn_local(const uakd_spn_config *cfg, const float *hm, float *pos, float *conf);
/* Teacher side: the peaks of E members' maps of one image (members[e] points at member e's
 * (K, hh, hw) block), in input pixels: pred[(e K + k) 2 + {0, 1}], conf[e K + k] - the [E][P=1][K][2]
 * layout of uakd/uncertainty.h (uakd_unc_ensemble gives the mean and the variance in input px). */
uakd_status uakd_spn_member_peaks(const uakd_spn_config *cfg, int E, const float *const *members, float *pred,
                                  float *conf);
/* Student side: like uakd_spn_local but always the soft-argmax (with cfg->correct), so that
 * positions are differentiable with respect to the heatmap values in the window. */
uakd_status uakd_spn_student_local(const uakd_spn_config *cfg, const float *hm, float *pos, float *conf);
/* Backward of uakd_spn_student_local on the same maps: ACCUMULATES (+=) into dhm (K, hh, hw) the
 * gradient of sum dpos . pos + sum dconf . conf (dconf may be NULL):
 *   d pos_x / d h(r, c) = (s / in_w) (dd/dc) [h > 0] (c - c_argmax - cx) / S  in the window,
 *   dd/dc = 1 / g'(d) = sigma^2 / Var_G(j) (1 without correction, 0 when d is clamped),
 *   S = window sum of max(h, 0), cx the centroid offset; d conf / d h(argmax) = 1. */
uakd_status uakd_spn_student_local_backward(const uakd_spn_config *cfg, const float *hm, const float *dpos,
                                            const float *dconf, float *dhm);

/* ---------- photometric augmentation (uint8 HWC images, deterministic given the rng state) ---------- */

typedef struct uakd_spn_rect {
    int x, y, w, h; /* w = h = 0: nothing was changed */
} uakd_spn_rect;

typedef struct uakd_spn_erase_config {
    double area_min, area_max;     /* 0.02, 0.33: rectangle area as a fraction of the image */
    double aspect_min, aspect_max; /* 0.3, 3.3: h / w, drawn log-uniformly */
} uakd_spn_erase_config;

void uakd_spn_erase_config_default(uakd_spn_erase_config *cfg);
/* Random erasing (colour channels; alpha untouched): up to 10 draws of (area, aspect) until the rectangle fits in the image, placed
 * uniformly; its pixels (all channels) are replaced by uniform noise in 0..255. *rect says where
 * (w = h = 0 when no draw fitted; the image is then unchanged). */
uakd_status uakd_spn_random_erase(uakd_image *im, uakd_rng *rng, const uakd_spn_erase_config *cfg,
                                  uakd_spn_rect *rect);

#define UAKD_SPN_MAX_FLARES 9

typedef struct uakd_spn_flare_config {
    double radius_min, radius_max;       /* 0.05, 0.15: main flare radius / max(width, height) */
    double intensity_min, intensity_max; /* 0.6, 1.0: added brightness at the centre, x 255 */
    double top_fraction;                 /* 0.5: the centre is drawn in the top part of the image */
    int ghosts;                          /* 3: smaller secondary flares, at most UAKD_SPN_MAX_FLARES - 1 */
} uakd_spn_flare_config;

typedef struct uakd_spn_flare {
    int count;                        /* 1 + ghosts */
    double cx[UAKD_SPN_MAX_FLARES];   /* centres, pixels (element 0 = the main flare) */
    double cy[UAKD_SPN_MAX_FLARES];
    double radius[UAKD_SPN_MAX_FLARES];
    double intensity[UAKD_SPN_MAX_FLARES];
} uakd_spn_flare;

void uakd_spn_flare_config_default(uakd_spn_flare_config *cfg);
/* Sun flare: an additive white radial highlight I * 255 * (1 - (d / R)^2)^2 for d < R around a
 * random centre, plus ghosts (radius R U(0.1, 0.3), intensity I U(0.1, 0.3)) placed along the line
 * from the centre through the image centre at U(0.4, 1.8) of that distance; values saturate at 255.
 * Pixels farther than R from every centre are unchanged. *flare (may be NULL) receives the geometry. */
uakd_status uakd_spn_sun_flare(uakd_image *im, uakd_rng *rng, const uakd_spn_flare_config *cfg,
                               uakd_spn_flare *flare);

#endif
