/* Perspective-n-point: the pose of a rigid object from n 3D-2D correspondences.
 *
 * uakd_pnp_solve: EPnP (non-planar and planar) for a start, then Levenberg-Marquardt on the
 * (optionally weighted) reprojection error in pixels with the camera's distortion. uakd_pnp_ransac
 * wraps it in RANSAC. Neither reports garbage as success: fewer than 4 usable points, collinear
 * points, non-finite input, a pose with a used point at or behind the camera, an LM that does not
 * converge or a reprojection RMSE above a sanity bound give UAKD_EDEGENERATE with a message.
 *
 * Arrays: X is n x 3 model points, uv is n x 2 pixels, w (optional, NULL = all 1) is n
 * non-negative finite weights; a point of weight 0 is ignored. Weights scale squared pixel
 * residuals (think 1 / variance). */
#ifndef UAKD_PNP_H
#define UAKD_PNP_H

#include <stdint.h>

#include "uakd/geom.h"
#include "uakd/status.h"

typedef struct uakd_pnp_options {
    int max_iterations; /* LM iteration cap (default 100); hitting it unconverged is an error */
    double max_rmse_px; /* a pose whose RMSE over its points exceeds this is rejected (default 100;
                           INFINITY disables the check) */
} uakd_pnp_options;

typedef struct uakd_ransac_options {
    double threshold_px; /* a point is an inlier when its reprojection error is <= this (default 8) */
    int max_iterations;  /* sample cap (default 1000) */
    double confidence;   /* stop early once an all-inlier sample was drawn with this probability (0.999) */
    uint64_t seed;       /* the same seed gives the same result */
} uakd_ransac_options;

typedef struct uakd_pnp_result {
    uakd_pose pose;
    double rmse_px;  /* unweighted RMS reprojection error over the points used in the final fit */
    int num_inliers; /* points used in the final fit (weight > 0 and, with RANSAC, inliers) */
    int iterations;  /* LM iterations of the final fit */
    int samples;     /* RANSAC samples drawn (0 without RANSAC) */
} uakd_pnp_result;

void uakd_pnp_default_options(uakd_pnp_options *o);
void uakd_ransac_default_options(uakd_ransac_options *o);

/* EPnP alone on undistorted normalised coordinates xy (n x 2, x/z and y/z) of the points listed
 * in idx (m indices; idx NULL means all n = m points). No refinement. Allocation-free. Writes
 * its candidate poses (one per approximation of the null-space combination, each with every
 * point in front of the camera) ranked by reprojection error, best first: *ncand in [1, 3]. */
uakd_status uakd_pnp_epnp(const double *X, const double *xy, const double *w, const int *idx, int m, uakd_pose cand[4],
                          int *ncand);

/* Levenberg-Marquardt refinement of pose (in/out) on the weighted pixel reprojection error of
 * the points listed in idx (m of them; NULL = all). rmse_px and iterations may be NULL. */
uakd_status uakd_pnp_refine(const uakd_camera *cam, const double *X, const double *uv, const double *w,
                            const int *idx, int m, const uakd_pnp_options *opt, uakd_pose *pose, double *rmse_px,
                            int *iterations);

/* EPnP + LM on all points with non-zero weight: every distinct EPnP candidate is refined and the
 * lowest cost wins. opt may be NULL (defaults). */
uakd_status uakd_pnp_solve(const uakd_camera *cam, int n, const double *X, const double *uv, const double *w,
                           const uakd_pnp_options *opt, uakd_pnp_result *out);

/* RANSAC over EPnP samples of 5 points (MSAC scoring; the sample count adapts to the inlier
 * ratio and confidence), then a refit on the inliers (LM from the best hypothesis and the
 * multi-start fit of uakd_pnp_solve, the lower cost wins), repeated until the inlier set is stable. inliers (may be NULL) receives n flags 0/1. ropt must be given;
 * opt may be NULL. */
uakd_status uakd_pnp_ransac(const uakd_camera *cam, int n, const double *X, const double *uv, const double *w,
                            const uakd_ransac_options *ropt, const uakd_pnp_options *opt, uakd_pnp_result *out,
                            unsigned char *inliers);

#endif
