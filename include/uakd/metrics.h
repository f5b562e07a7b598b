/* Pose metrics of the field, implemented exactly as in ../shared/spec/data-and-metrics.md.
 *
 * - ADD: mean over model points X of |(R_gt X + t_gt) - (R X + t)|.
 * - ADD-S (ADI): mean over GT-transformed points of the distance to the nearest estimated-transformed
 *   point, with a k-d tree over the model points (queries are mapped into the model frame:
 *   min_j |R_gt X_i + t_gt - R X_j - t| = min_j |R^T (R_gt X_i + t_gt - t) - X_j|).
 * - 2D projection error: mean pixel distance of the projected model points.
 * - rotation error: the angle of R_gt^T R (degrees); translation error |t - t_gt|.
 * - SPEED+: e_t = |t_gt - t|, normalised e_t / |t_gt|, e_q = 2 acos(min(1, |<q, q_gt>|)) (radians),
 *   E_pose = e_t / |t_gt| + e_q; on lightbox and sunlamp (apply_thresholds) e_q below 0.169 deg and
 *   e_t / |t_gt| below 2.173e-3 count as 0 in E_pose (reported E_T and E_R stay raw).
 * - Accumulators count per object: ADD(-S) below 0.05 / 0.1 / 0.2 diameter, 2D projection below
 *   5 px, 5 cm 5 deg, and sum the errors; a target without a prediction counts as a failure.
 * The library only computes; uakd_eval_format_markdown formats a table into a caller buffer. */
#ifndef UAKD_METRICS_H
#define UAKD_METRICS_H

#include <stddef.h>

#include "uakd/geom.h"
#include "uakd/mesh.h"
#include "uakd/status.h"

/* Nearest-neighbour index (k-d tree) over a fixed point set. */
typedef struct uakd_nn_index uakd_nn_index;
uakd_status uakd_nn_index_new(const float *xyz, int n, uakd_nn_index **out);
void uakd_nn_index_free(uakd_nn_index *ix);
/* Squared distance from q to the nearest indexed point; *which (may be NULL) gets its index. */
double uakd_nn_index_nearest(const uakd_nn_index *ix, const double q[3], int *which);

double uakd_metric_add(const float *xyz, int n, const uakd_pose *gt, const uakd_pose *est);
/* ix must index the same n points xyz. */
double uakd_metric_adds(const uakd_nn_index *ix, const float *xyz, int n, const uakd_pose *gt, const uakd_pose *est);
/* Mean pixel distance; INFINITY when a point is at or behind the camera under either pose. */
double uakd_metric_proj2d(const uakd_camera *cam, const float *xyz, int n, const uakd_pose *gt, const uakd_pose *est);
double uakd_metric_rot_deg(const uakd_pose *gt, const uakd_pose *est);
double uakd_metric_trans(const uakd_pose *gt, const uakd_pose *est);

typedef struct uakd_speed_score {
    double e_t;      /* |t_gt - t| (m) */
    double e_t_norm; /* e_t / |t_gt|, before thresholding */
    double e_q;      /* radians, before thresholding */
    double e_pose;   /* score: e_t_norm + e_q, each zeroed below its threshold when asked */
} uakd_speed_score;
/* Scalar-first quaternions (need not be unit). Fails on |t_gt| = 0 or non-finite input. */
uakd_status uakd_speed_score_compute(const double q_gt[4], const double t_gt[3], const double q[4], const double t[3],
                                     int apply_thresholds, uakd_speed_score *out);

/* Per-domain SPEED+ means: E_T (m) and E_R (deg) from the raw errors, E_pose from the scores. */
typedef struct uakd_speed_stats {
    int images;
    double sum_e_t, sum_e_q, sum_e_pose; /* e_q in radians */
} uakd_speed_stats;
void uakd_speed_stats_add(uakd_speed_stats *s, const uakd_speed_score *score);
/* Means over the added images (all 0 when none): E_T (m), E_R (deg), E_pose. */
void uakd_speed_stats_means(const uakd_speed_stats *s, double *E_T, double *E_R_deg, double *E_pose);

/* An object as the metrics see it: evaluation points (copied), diameter, symmetric flag. */
typedef struct uakd_eval_model {
    int obj_id;
    int n;
    float *xyz;            /* n x 3, owned */
    double diameter;       /* model units */
    int symmetric;         /* 1: ADD-S, 0: ADD */
    uakd_nn_index *index;  /* built when symmetric */
} uakd_eval_model;
/* Takes all vertices of the mesh (BOP protocol: models_eval, every vertex). */
uakd_status uakd_eval_model_init(uakd_eval_model *m, int obj_id, const uakd_mesh *mesh, double diameter, int symmetric);
void uakd_eval_model_free(uakd_eval_model *m);

typedef struct uakd_eval_stats {
    int targets;         /* evaluated targets (predicted or not) */
    int missing;         /* targets without a prediction (failures everywhere) */
    int add_pass[3];     /* ADD(-S) < 0.05 d, 0.1 d, 0.2 d */
    int proj_pass;       /* 2D projection error < 5 px */
    int cm5deg5_pass;    /* rotation < 5 deg and translation < 5 cm */
    double sum_add;      /* over predicted targets, model units */
    double sum_rot_deg;
    double sum_trans;    /* model units */
} uakd_eval_stats;

#define UAKD_EVAL_MAX_OBJECTS 64 /* object ids 0..63 */

typedef struct uakd_eval {
    double units_per_cm;                      /* 10 for BOP (mm), 0.01 for metres */
    uakd_eval_stats obj[UAKD_EVAL_MAX_OBJECTS]; /* indexed by object id */
} uakd_eval;

void uakd_eval_init(uakd_eval *e, double units_per_cm);
/* Scores one target; est NULL means no prediction. */
uakd_status uakd_eval_add(uakd_eval *e, const uakd_eval_model *m, const uakd_camera *cam, const uakd_pose *gt,
                          const uakd_pose *est);
/* Sum over all objects. */
void uakd_eval_overall(const uakd_eval *e, uakd_eval_stats *out);
/* A Markdown table, one row per object with targets and a final "all" row: success rates (%)
 * at 0.05d / 0.1d / 0.2d, 2D proj @5px, 5cm5deg, mean rotation (deg) and translation (cm) errors
 * over predicted targets. Like snprintf: returns the length the full table needs. */
size_t uakd_eval_format_markdown(const uakd_eval *e, char *buf, size_t cap);

#endif
