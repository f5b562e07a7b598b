/* WDRNet inference and evaluation: crop -> network -> decoding -> RANSAC-EPnP -> pose in the
 * original image, and the ADD(-S) protocol of ../shared/spec/data-and-metrics.md over a dataset.
 *
 * Pipeline for one object instance:
 *   1. test crop (uakd/augment.h, train = 0): side 1.5 max(w, h) around a 2D box, no jitter. The
 *      box is the ground-truth box of the projected 3D box corners unless a detector box is given
 *      (results then assume a perfect detector; reports say which box was used);
 *   2. forward in inference mode, several crops per batch;
 *   3. uakd_wdr_decode: cells with sigmoid > conf_thresh (0.1), per-level quotas (10 in all);
 *   4. the 8 corners of every kept cell are mapped from crop pixels back to image pixels through
 *      the crop's affine (crop_from_image inverted), giving 8 x cells 2D-3D correspondences with the
 *      model's 3D box corners;
 *   5. RANSAC-EPnP (5 px inlier threshold) + Levenberg-Marquardt with the full-image camera.
 * No cell above the threshold, or a PnP failure (degenerate points), is a missing prediction,
 * which the metrics count as a failure. */
#ifndef UAKD_INFER_H
#define UAKD_INFER_H

#include <stddef.h> /* uakd/augment.h uses size_t */
#include <stdint.h>

#include "uakd/augment.h"
#include "uakd/dataset.h"
#include "uakd/geom.h"
#include "uakd/image.h"
#include "uakd/metrics.h"
#include "uakd/wdr.h"
#include "uakd/wdrnet.h"

typedef struct uakd_infer_config {
    uakd_wdr_config wdr;   /* decoding: conf_thresh 0.1, quota_total 10 */
    double ransac_px;      /* RANSAC inlier threshold in image pixels: 5 */
    int ransac_iterations; /* 1000 */
    uint64_t seed;         /* RANSAC seed: 1 */
} uakd_infer_config;

void uakd_infer_config_default(uakd_infer_config *cfg);

/* The pose estimate of one instance. */
typedef struct uakd_prediction {
    int ok;             /* 1: a pose; 0: missing (no confident cell, or PnP failed) */
    uakd_pose pose;     /* model -> image camera */
    double conf;        /* confidence of the best cell (0 when no cell passed) */
    int cells;          /* decoded cells (8 correspondences each) */
    int inliers;        /* RANSAC inliers */
    double rmse_px;     /* reprojection RMSE of the final fit */
    double corners[16]; /* the 8 box corners projected with pose (image pixels; index 4ix+2iy+iz) */
} uakd_prediction;

/* Steps 4-5 for decoded cells (crop pixels): box3d from uakd_bbox_corners, crop_from_image the
 * crop's affine (uakd_crop_geometry.A), cam the image camera. count = 0 gives a missing
 * prediction. Only errors other than a degenerate PnP are returned. */
uakd_status uakd_infer_pose_from_cells(const uakd_infer_config *cfg, const uakd_wdr_cell *cells, int count,
                                       const double box3d[24], const double crop_from_image[6],
                                       const uakd_camera *cam, uakd_prediction *out);

/* Steps 2-5 for n crops already written into the model's input layer: cls[i] the class of crop
 * i, box3d[i] its object's 3D box corners, crops[i] its geometry and cams[i] its image camera.
 * Works on training and inference builds (runs the forward in inference mode). */
uakd_status uakd_infer_batch(uakd_wdrnet *m, const uakd_infer_config *cfg, int n, const int *cls,
                             const double (*box3d)[24], const uakd_crop_geometry *crops, const uakd_camera *cams,
                             uakd_prediction *out);

/* Step 1 for an image in memory (predict): the test crop of side 1.5 max(w, h) around box (x, y,
 * w, h) resampled to size x size, written as ImageNet-normalised CHW floats into chw; geo gets the
 * crop's geometry. */
uakd_status uakd_infer_crop_image(const uakd_image *im, const uakd_camera *cam, const double box[4], int size,
                                  float *chw, uakd_crop_geometry *geo);

/* ---- evaluation over a dataset ---- */

/* The evaluation models of a BOP dataset's objects: every vertex of root/models_eval/obj_NNNNNN.ply
 * (root/models/ when models_eval/ does not have it), the models_info diameter, and ADD-S for
 * objects with symmetries in models_info.json. models[i] belongs to ds->objects[i]. */
uakd_status uakd_eval_models_load(const char *root, const uakd_dataset *ds, uakd_eval_model **models);
void uakd_eval_models_free(uakd_eval_model *models, int n);

/* One evaluated instance. */
typedef struct uakd_eval_sample {
    int instance;          /* index into the dataset's instances */
    int obj_id;
    uakd_prediction pred;
    double err_d;          /* ADD(-S) / diameter; INFINITY when missing */
    double proj_px;        /* 2D projection error; INFINITY when missing */
} uakd_eval_sample;

typedef struct uakd_eval_result {
    uakd_eval stats;          /* per-object counts and sums (uakd/metrics.h) */
    int n;
    uakd_eval_sample *samples; /* n, in the order of the indices */
    int gt_box;               /* 1: crops from the ground-truth box */
} uakd_eval_result;

void uakd_eval_result_free(uakd_eval_result *r);

/* Called after each batch with the instances done; a nonzero return stops (UAKD_EINTERRUPTED). */
typedef int (*uakd_eval_progress_fn)(int done, int total, void *user);

typedef struct uakd_eval_input {
    const uakd_dataset *ds;
    const uakd_eval_model *models; /* per dataset object (uakd_eval_models_load) */
    const int *indices;            /* instances to evaluate */
    int n;
    const int *obj_ids;            /* class c of the model is object obj_ids[c] */
    int num_classes;
    const double (*boxes)[4];      /* per evaluated instance, the detector box (x, y, w, h); NULL:
                                      the ground-truth box of the projected 3D box corners */
    uakd_eval_progress_fn progress;
    void *user;
} uakd_eval_input;

/* Evaluates the model on the instances (batches of the model's max_batch; an instance whose object
 * is not one of the model's classes is an error). */
uakd_status uakd_infer_evaluate(uakd_wdrnet *m, const uakd_infer_config *cfg, const uakd_eval_input *in,
                                uakd_eval_result *out);

#endif
