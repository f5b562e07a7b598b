/* SPNv2 pose estimation and SPEED+ evaluation (models.md SPNv2, data-and-metrics.md SPEED+).
 *
 * Per image: raw heatmaps (K, in_h/4, in_w/4) -> sub-pixel peaks (uakd_spn_decode, input pixels)
 * -> selection (threshold 0.5 lowered by 0.1 until >= 5 keypoints pass; fewer rejects the image)
 * -> the selected peaks mapped to original-image pixels through the resize affine (Ainv) -> EPnP
 * + Levenberg-Marquardt on the reprojection error with the camera's distortion (uakd_pnp_solve)
 * -> sanity check (uakd_spn_pose_check: 0 < t_z < z_max and the origin inside the image).
 *
 * Scores (uakd_speed_score_compute): E_T = |t_gt - t| (m), E_R (deg), E_pose = E_T / |t_gt| + e_q,
 * with the SPEED+ thresholds (2.173 mm/m and 0.169 deg zeroed) on the lightbox and sunlamp
 * domains only. A REJECTED image (too few keypoints, PnP failure, depth or field-of-view check)
 * counts as a failure in every mean: it enters with t = 0 and a 180-degree rotation error, i.e.
 * E_T = |t_gt|, e_q = pi, E_pose = 1 + pi. */
#ifndef UAKD_SPN_INFER_H
#define UAKD_SPN_INFER_H

#include "uakd/dataset.h"
#include "uakd/geom.h"
#include "uakd/metrics.h"
#include "uakd/spn.h"
#include "uakd/spnnet.h"

typedef enum uakd_spn_outcome {
    UAKD_SPN_OK = 0,
    UAKD_SPN_REJ_FEW = 1,   /* fewer than min_keypoints above the lowest threshold */
    UAKD_SPN_REJ_PNP = 2,   /* PnP failed (degenerate points, no convergence, RMSE too large) */
    UAKD_SPN_REJ_DEPTH = 3, /* t_z outside (0, z_max) */
    UAKD_SPN_REJ_FOV = 4,   /* origin projects outside the image */
    UAKD_SPN_OUTCOMES = 5,
} uakd_spn_outcome;

typedef struct uakd_spn_pose_result {
    uakd_spn_outcome outcome;
    uakd_pose pose;   /* valid when outcome is OK (and the PnP pose for DEPTH/FOV) */
    int used;         /* keypoints used */
    double thresh;    /* selection threshold that was used */
    double rmse_px;   /* PnP reprojection RMSE (original pixels) */
    /* every decoded peak (not only the selected ones), mapped to original pixels, for overlays */
    int keypoints;                              /* K */
    double uv[2 * UAKD_SPN_MAX_KEYPOINTS];      /* (K, 2) */
    double conf[UAKD_SPN_MAX_KEYPOINTS];        /* peak values */
    uint8_t selected[UAKD_SPN_MAX_KEYPOINTS];   /* 1: passed the selection and went into PnP */
} uakd_spn_pose_result;

/* One image: hm (K, hh, hw) raw heatmaps; kp3d (K, 3); image_from_input the 2x3 affine from input
 * to original pixels (NULL: identity); cam the original camera with distortion; width x height the
 * original image size for the field-of-view check. */
uakd_status uakd_spn_pose_from_heatmaps(const uakd_spn_config *cfg, const float *hm, const double *kp3d,
                                        const double image_from_input[6], const uakd_camera *cam, int width,
                                        int height, uakd_spn_pose_result *out);

/* The score of one image (thresholds when apply_thresholds); a rejected result gives the failure
 * score described above. */
uakd_status uakd_spn_score(const uakd_spn_pose_result *r, const uakd_pose *gt, int apply_thresholds,
                           uakd_speed_score *out);

/* 1 for the domains scored with the SPEED+ thresholds ("lightbox", "sunlamp"). */
int uakd_spn_domain_thresholds(const char *domain);

typedef struct uakd_spn_eval_stats {
    int images;
    int outcomes[UAKD_SPN_OUTCOMES]; /* images per outcome */
    uakd_speed_stats speed;          /* over all images, rejected ones as failures */
    double E_T, E_R_deg, E_pose;     /* means (uakd_speed_stats_means) */
} uakd_spn_eval_stats;

/* Per image of an evaluation (optional output). */
typedef struct uakd_spn_eval_sample {
    int instance;
    uakd_spn_pose_result pose;
    uakd_speed_score score;
} uakd_spn_eval_sample;

typedef int (*uakd_spn_eval_progress_fn)(int done, int total, void *user);

/* Evaluates the network m on instances idx[0..n-1] of ds (idx NULL: instances 0..n-1, every
 * instance when n <= 0 or n exceeds them) in batches of up to the net's max batch. apply_thresholds as above. samples (may be
 * NULL) receives n entries (caller-allocated). */
uakd_status uakd_spn_evaluate(uakd_spnnet *m, const uakd_spn_config *cfg, const uakd_dataset *ds, const int *idx,
                              int n, int apply_thresholds, uakd_spn_eval_progress_fn progress, void *user,
                              uakd_spn_eval_stats *stats, uakd_spn_eval_sample *samples);

/* The uakd_spn_config for a network: its keypoints and input size, the rest default. */
void uakd_spn_config_for(const uakd_spnnet_config *mc, uakd_spn_config *cfg);

#endif
