/* WDRNet keypoint mathematics, independent of the network engine: FPN levels and anchors, the
 * corner offset coding, depth-range-aware target assignment, the two supervised losses with their
 * gradients, inference decoding, and the local predictions used by distillation.
 *
 * Conventions (models.md, method.md §2):
 * - Coordinates are pixels of the network input (the crop), x right, y down. Level l has stride
 *   s_l = 8 * 2^l and one square anchor of side A_l = 32 * 2^l per cell; cell (col, row) has the
 *   centre (col * s + s/2, row * s + s/2).
 * - Offset coding of corner (u, v) at a cell: dx = (u - c_x) / A, dy = (v - c_y) / A.
 * - The 8 keypoints are the corners of the object's 3D box, index k = 4*ix + 2*iy + iz
 *   (i = 0 for the min, 1 for the max coordinate). 2D corners are stored (u0, v0, u1, v1, ...).
 * - Maps are float32, NCHW, one array per level:
 *     logits  (N, C, gh, gw): one confidence logit per class and cell;
 *     offsets (N, 16*C, gh, gw): for class c, channel 16c + k holds dx of corner k and
 *       channel 16c + 8 + k holds dy of corner k ("all dx first, then all dy"). The per-level
 *       learnable scale of the head is already applied.
 * - Each image holds one object (its class id); cls < 0 marks an image without the object.
 */
#ifndef UAKD_WDR_H
#define UAKD_WDR_H

#include <stdint.h>

#include "uakd/rng.h"
#include "uakd/status.h"

#define UAKD_WDR_MAX_LEVELS 5
#define UAKD_WDR_CORNERS 8

typedef struct uakd_wdr_levels {
    int n;                              /* number of levels, 1..5 */
    int in_w, in_h;                     /* network input size in pixels */
    int stride[UAKD_WDR_MAX_LEVELS];    /* 8, 16, 32, 64, 128 */
    double anchor[UAKD_WDR_MAX_LEVELS]; /* 32, 64, 128, 256, 512 */
    int gw[UAKD_WDR_MAX_LEVELS];        /* grid width (columns) */
    int gh[UAKD_WDR_MAX_LEVELS];        /* grid height (rows) */
} uakd_wdr_levels;

/* The standard levels for an in_w x in_h input, grids ceil(in / stride) (what stride-2 3x3 pad-1
 * convolutions give). Use uakd_wdr_levels_set_grid when the network's maps differ. */
uakd_status uakd_wdr_levels_init(uakd_wdr_levels *lv, int nlevels, int in_w, int in_h);
/* Overrides the grid of one level with the size the network actually produces. */
uakd_status uakd_wdr_levels_set_grid(uakd_wdr_levels *lv, int level, int gw, int gh);
/* Cells of level l (gw * gh). */
int uakd_wdr_level_cells(const uakd_wdr_levels *lv, int level);

void uakd_wdr_cell_centre(const uakd_wdr_levels *lv, int level, int col, int row, double c[2]);
/* corners[16] (u, v pairs) -> off[16] (dx0..dx7, dy0..dy7) at a cell, and back. */
void uakd_wdr_encode(const uakd_wdr_levels *lv, int level, int col, int row, const double corners[16], double off[16]);
void uakd_wdr_decode_cell(const uakd_wdr_levels *lv, int level, int col, int row, const double off[16], double corners[16]);
/* S = max(w, h) + 1 of the axis-aligned box of 8 corners. */
double uakd_wdr_box_size(const double corners[16]);
/* Per-level quotas n_l = floor(total * g_l / sum g + 0.5), g_l = exp(-(log2(S / A_l))^2).
 * Returns the sum of the quotas. */
int uakd_wdr_quotas(const uakd_wdr_levels *lv, double size, int total, int quota[UAKD_WDR_MAX_LEVELS]);

/* Affine maps between crop and image: crop_from_image = [a b c; d e f] (row-major double[6]) maps
 * an image pixel (x, y) to the crop pixel (a x + b y + c, d x + e y + f), i.e. the matrix given to
 * a warpAffine that cuts the crop out of the image. uakd_wdr_crop_to_image inverts it and maps n
 * crop points pts[2i], pts[2i+1] in place to image pixels. Fails on a singular matrix. */
uakd_status uakd_wdr_affine_invert(const double m[6], double inv[6]);
uakd_status uakd_wdr_crop_to_image(const double crop_from_image[6], double *pts, int n);

typedef enum uakd_wdr_norm {
    UAKD_WDR_NORM_NONE = 0, /* plain sum over the batch */
    UAKD_WDR_NORM_IMAGES,   /* sum / N (the sum of one image, averaged over the batch) */
    UAKD_WDR_NORM_NPOS,     /* sum / max(1, number of positive cells in the batch) */
} uakd_wdr_norm;

typedef struct uakd_wdr_config {
    int quota_total;     /* positives per object and iteration, and cells kept at inference: 10 */
    double focal_alpha;  /* 0.25 */
    double focal_gamma;  /* 2 */
    double huber_delta;  /* 0.02 (in units of the object diameter) */
    double w_cls;        /* 0.1 */
    double w_pose;       /* 1.0 */
    uakd_wdr_norm cls_norm;  /* UAKD_WDR_NORM_NPOS (RetinaNet/FCOS practice) */
    uakd_wdr_norm pose_norm; /* UAKD_WDR_NORM_IMAGES: sum over an image's positive cells (models.md),
                                averaged over the images of the batch */
    double conf_thresh;  /* inference threshold on sigmoid(logit): 0.1 */
} uakd_wdr_config;

void uakd_wdr_config_default(uakd_wdr_config *cfg);
uakd_status uakd_wdr_config_check(const uakd_wdr_config *cfg);

/* The ground truth of one image, in network-input (crop) coordinates. */
typedef struct uakd_wdr_object {
    int cls;                /* class id in [0, C); negative: no object in this image */
    double corners2d[16];   /* projected box corners, input pixels */
    double corners_cam[24]; /* box corners in the camera frame, X_c = R X + t, corner k at 3k */
    double K[9];            /* crop intrinsics (row-major), camera frame -> input pixels */
    double diameter;        /* object diameter, same units as corners_cam */
    const uint8_t *mask;    /* visible mask, in_h x in_w row-major, nonzero = visible; may be NULL
                               (then no cell is a candidate and the image is all background) */
} uakd_wdr_object;

/* Fills corners_cam and corners2d (pinhole projection with K, no distortion) from the model box
 * [bmin, bmax], the pose (R row-major, t) and K. Fails if a corner is not in front of the camera. */
uakd_status uakd_wdr_object_set_box(uakd_wdr_object *obj, const double bmin[3], const double bmax[3],
                                    const double R[9], const double t[3], const double K[9]);

typedef struct uakd_wdr_pos {
    int image, level, col, row, cls;
    float offset[16]; /* target offsets dx0..dx7, dy0..dy7 (layout of the offset map) */
} uakd_wdr_pos;

/* Targets of one batch. label[l] is (N, C, gh, gw): 1 positive, 0 background, -1 ignored. */
typedef struct uakd_wdr_targets {
    uakd_wdr_levels lv;
    int n, c;
    int8_t *label[UAKD_WDR_MAX_LEVELS];
    int npos, cap;          /* positives and their capacity */
    uakd_wdr_pos *pos;      /* the positive cells of the batch, image by image, level by level */
    uakd_wdr_object *obj;   /* n objects (copied; the mask pointer is not kept valid) */
} uakd_wdr_targets;

uakd_status uakd_wdr_targets_new(const uakd_wdr_levels *lv, int n, int c, uakd_wdr_targets **out);
void uakd_wdr_targets_free(uakd_wdr_targets *t);
/* Stores the objects and makes every cell background with no positives. */
uakd_status uakd_wdr_targets_reset(uakd_wdr_targets *t, const uakd_wdr_object *objs);
/* Sets the label of one cell of the image's class: 1 appends a positive (with its offset targets),
 * -1 ignores it. A cell can be marked once. Used by assignment and by tests with fixed targets. */
uakd_status uakd_wdr_targets_mark(uakd_wdr_targets *t, int image, int level, int col, int row, int label);
/* Depth-range-aware assignment for the whole batch (reset + marks): per image and level, the cells
 * whose centre pixel (floor of the centre) is visible in the mask are candidates; quota n_l of
 * them are drawn uniformly without replacement (all of them if fewer), the others are ignored. */
uakd_status uakd_wdr_assign(uakd_wdr_targets *t, const uakd_wdr_config *cfg, const uakd_wdr_object *objs, uakd_rng *rng);

/* Network outputs for a batch (read-only) and their gradients (same shapes). */
typedef struct uakd_wdr_maps {
    int n, c;
    const float *logits[UAKD_WDR_MAX_LEVELS];  /* (n, c, gh, gw) */
    const float *offsets[UAKD_WDR_MAX_LEVELS]; /* (n, 16c, gh, gw) */
} uakd_wdr_maps;

typedef struct uakd_wdr_grads {
    float *logits[UAKD_WDR_MAX_LEVELS];
    float *offsets[UAKD_WDR_MAX_LEVELS];
} uakd_wdr_grads;

typedef struct uakd_wdr_loss {
    double cls, pose; /* normalised terms, unweighted */
    double total;     /* w_cls * cls + w_pose * pose */
    int npos;
} uakd_wdr_loss;

/* Sigmoid focal loss over all non-ignored cells and classes, normalised by cfg->cls_norm:
 *   y = 1: -alpha (1-p)^gamma log p,   y = 0: -(1-alpha) p^gamma log(1-p),   p = sigmoid(x).
 * If dlogits is not NULL, dlogits[l] is assigned scale * dL/dlogit (every entry written). */
uakd_status uakd_wdr_focal_loss(const uakd_wdr_config *cfg, const uakd_wdr_targets *t, const uakd_wdr_maps *m,
                                double scale, float *const *dlogits, double *loss);
/* Ray-distance pose loss: for positive cell and corner k, the decoded pixel (u, v) gives the ray
 * direction r = K^-1 [u v 1] / |K^-1 [u v 1]|; e = (X - (X.r) r) / diameter with X the camera-frame
 * corner; Huber(delta) on the 3 components, mean over the 24 numbers of a cell, sum over positive
 * cells, normalised by cfg->pose_norm. If doffsets is not NULL, doffsets[l] is assigned
 * scale * dL/doffset (every entry written; only the positives' class channels are nonzero). */
uakd_status uakd_wdr_pose_loss(const uakd_wdr_config *cfg, const uakd_wdr_targets *t, const uakd_wdr_maps *m,
                               double scale, float *const *doffsets, double *loss);
/* Both terms; g (may be NULL) receives the gradients of total. */
uakd_status uakd_wdr_loss_eval(const uakd_wdr_config *cfg, const uakd_wdr_targets *t, const uakd_wdr_maps *m,
                               const uakd_wdr_grads *g, uakd_wdr_loss *out);

/* One selected cell at inference. */
typedef struct uakd_wdr_cell {
    int level, col, row;
    double conf;         /* sigmoid of the logit (teacher cells: ensemble mean of the sigmoids) */
    double corners[16];  /* decoded corners, input pixels (teacher cells: ensemble mean) */
} uakd_wdr_cell;

/* Enough room for any selection: quotas round to nearest, so their sum is below total + levels. */
int uakd_wdr_max_cells(const uakd_wdr_config *cfg);

/* Inference rule for one image and class: cells with sigmoid > conf_thresh; the best cell's decoded
 * corners give S; each level keeps its top-n_l cells (quotas as in training) by confidence.
 * Cells come level by level, best first. *count = 0 when no cell passes (missing prediction).
 * cap must be at least uakd_wdr_max_cells(cfg). */
uakd_status uakd_wdr_decode(const uakd_wdr_levels *lv, const uakd_wdr_config *cfg, const uakd_wdr_maps *m, int image,
                            int cls, uakd_wdr_cell *cells, int cap, int *count);

/* 2D-3D correspondences of decoded cells for PnP: pts2d[2j], pts2d[2j+1] and pts3d[3j..3j+2] for
 * j = 8i + k (cell i, corner k); box3d are the 24 numbers of uakd_bbox_corners (mesh.h). If
 * crop_from_image is not NULL the 2D points are mapped back to image pixels. */
uakd_status uakd_wdr_correspondences(const uakd_wdr_cell *cells, int count, const double box3d[24],
                                     const double crop_from_image[6], double *pts2d, double *pts3d);

/* Ensemble-mean confidence map of one image and class: conf[l] (gh, gw) = mean over the E members
 * of sigmoid(logit). members[e] share one grid. */
uakd_status uakd_wdr_ensemble_conf(const uakd_wdr_levels *lv, int E, const uakd_wdr_maps *members, int image, int cls,
                                   float *const *conf);
/* Teacher local predictions (method.md §2): the inference rule applied to the ensemble-mean
 * confidence map, with S from the ensemble-mean corners of the best cell. cells[i] gets the mean
 * confidence and the mean corners; member_pos (may be NULL), of size cap * E * 16, gets each
 * member's decoded corners: member_pos[(i * E + e) * 16 + 2k + {0, 1}], input pixels (divide by
 * in_w, in_h for the normalised coordinates of the losses). */
uakd_status uakd_wdr_teacher_cells(const uakd_wdr_levels *lv, const uakd_wdr_config *cfg, int E,
                                   const uakd_wdr_maps *members, int image, int cls, uakd_wdr_cell *cells,
                                   double *member_pos, int cap, int *count);

/* Student local predictions: the ground-truth positive cells of image `image` in the targets of
 * the current iteration. For the j-th of them (j < *count): pos[16j + 2k + {0, 1}] = decoded corner
 * k divided by (in_w, in_h), logit[j] = the cell's logit for the image's class, and idx[j] (may be
 * NULL) = its index into t->pos. */
uakd_status uakd_wdr_student_local(const uakd_wdr_targets *t, const uakd_wdr_maps *m, int image, float *pos,
                                   float *logit, int *idx, int cap, int *count);
/* Backward of uakd_wdr_student_local: ACCUMULATES (+=) the gradients dpos (same layout as pos) and
 * dlogit (may be NULL) of the count local predictions of `image` into g. */
uakd_status uakd_wdr_student_local_backward(const uakd_wdr_targets *t, int image, const float *dpos,
                                            const float *dlogit, int count, const uakd_wdr_grads *g);

#endif
