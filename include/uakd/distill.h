/* Uncertainty-aware distillation of a WDRNet student from a teacher ensemble (method.md):
 * ensemble directories, the teacher pass (local predictions, uncertainty, masses), and the
 * training-loop hook (uakd/train.h) that adds gamma_p L_pred + gamma_f L_feat.
 *
 * Ensemble directory: member_0/, ..., member_{E-1}/ (each a `uakd train` output directory; a
 * member is finished when its model.safetensors exists) and ensemble.json:
 *   {"format": "uakd-ensemble", "version": 1, "architecture": "darknet-tiny-h width 128 tower 4
 *    input 256", "members": [{"dir": "member_0", "seed": 1, "finished": true, "val_add_01": 61.5},
 *    ...], "pfkd_member": 0}
 * pfkd_member, the member whose features PFKD / FKD distil, is the finished member with the best
 * last validation ADD(-S)-0.1d (the first on ties; 0 when none was validated).
 *
 * Teacher pass (one batch, every member in inference mode on the student's input images):
 * per image, the teacher local predictions are the cells the inference rule selects on the
 * ensemble-mean confidence map (uakd_wdr_teacher_cells); for cell j and corner k, the members'
 * decoded corners give the mean mu (the teacher point, divided by the input width/height) and the
 * unbiased variance s2 (input pixels^2), u = tanh(s2 / tau^2); c_j is the ensemble-mean sigmoid.
 * Teacher masses per method (method.md §4, §7):
 *   uakd, uakd+pfkd:  b = lambda (1 - u) + (1 - lambda) c
 *   adlp, adlp+fkd:   b = c (lambda = 0)
 *   pfkd:             b = 1 and student masses 1 (uniform; the plan is only used to pair regions)
 * Student local predictions: the positive cells of the step's targets (uakd_wdr_student_local),
 * masses clamp(sigmoid(logit)).
 *
 * Losses added by the hook (logged already weighted as "kd_pred" and "kd_feat"):
 *   kd_pred = gamma_p * UAKD (uakd_kd_uakd) or gamma_p * ADLP divergence (uakd_kd_adlp);
 *   kd_feat = gamma_f * 1/V sum_b 1/(N_b M_b) sum_k sum_ij pi_ij MSE(R_T(j,k), R_S(i,k)) (PFKD,
 *             uakd/pfkd.h; V images with student and teacher predictions, pi the plan of L_pred,
 *             held constant; regions on the FPN level of the cell that made the prediction: the
 *             student's level of its positive cell, the designated member's level of the teacher
 *             cell, around the teacher's ensemble-mean corner);
 *   or, for adlp+fkd, kd_feat = gamma_f * 1/(B L) sum_b sum_l FKD(F_T(b,l), A(F_S(b,l))) over the
 *             student's L levels (uakd_fkd_loss).
 * A is the channel adapter: a 1x1 convolution without bias from the student's F_S to the
 * teacher's F_T channels, shared by all levels, trained with the student (the loop's extra net:
 * its own AdamW with the student's settings, saved in checkpoint_extra.safetensors, not part of
 * model.safetensors); identity (no adapter) when F_S = F_T. Without bias it commutes with the
 * zero-padded sampling. Gradients reach the student's FPN features (via the adapter), its offset
 * maps (L_pred through uakd_wdr_student_local_backward) and, unless detach_student_mass, its
 * logits. Teacher activations are not kept for backward (inference builds). */
#ifndef UAKD_DISTILL_H
#define UAKD_DISTILL_H

#include <stddef.h>
#include <stdint.h>

#include "uakd/kd_loss.h"
#include "uakd/status.h"
#include "uakd/train.h"
#include "uakd/uot.h"
#include "uakd/wdr.h"
#include "uakd/wdrnet.h"

#define UAKD_ENSEMBLE_MAX 32

typedef enum uakd_distill_method {
    UAKD_DISTILL_STUDENT = 0, /* supervised only */
    UAKD_DISTILL_ADLP,
    UAKD_DISTILL_ADLP_FKD,
    UAKD_DISTILL_UAKD,
    UAKD_DISTILL_PFKD,
    UAKD_DISTILL_UAKD_PFKD,
    UAKD_DISTILL_METHODS
} uakd_distill_method;

/* "student", "adlp", "adlp+fkd", "uakd", "pfkd", "uakd+pfkd". */
const char *uakd_distill_method_name(uakd_distill_method m);
uakd_status uakd_distill_method_parse(const char *s, uakd_distill_method *m);

typedef struct uakd_distill_config {
    uakd_distill_method method; /* uakd+pfkd */
    double gamma_p;             /* 5 */
    double gamma_f;             /* 0.1 */
    double lambda;              /* 0.5 */
    double tau2;                /* tau^2 in input pixels^2: 1 (tau = 1 px); `auto`: set it from
                                   uakd_ensemble_scan's median of s2 before training */
    uakd_uot_params uot;        /* blur 1e-3, reach 0.5, scaling 0.5, final_iters 10, tol 0 */
    int detach_student_mass;    /* 0 */
    int region;                 /* r: 11 */
    double fkd_temp;            /* FKD attention temperature: 0.5 */
    int feat_member;            /* -1: the ensemble's pfkd_member */
    uint64_t adapter_seed;      /* adapter initialisation: 1 */
} uakd_distill_config;

void uakd_distill_config_default(uakd_distill_config *c);
uakd_status uakd_distill_config_check(const uakd_distill_config *c);

/* ---- ensemble directories ---- */

typedef struct uakd_ensemble_member {
    uint64_t seed;
    int finished;       /* model.safetensors exists */
    int has_checkpoint; /* checkpoint.safetensors exists (resumable) */
    double val_add_01;  /* last validation ADD(-S)-0.1d (percent); NAN when none */
} uakd_ensemble_member;

typedef struct uakd_ensemble_info {
    char architecture[96]; /* "<variant or cfg> width W tower T input S" of member_0 ("" unknown) */
    int members;
    uakd_ensemble_member m[UAKD_ENSEMBLE_MAX];
    int pfkd_member;
} uakd_ensemble_info;

/* dir/member_<e> into buf. */
uakd_status uakd_ensemble_member_dir(const char *dir, int e, char *buf, size_t cap);
/* The state of members 0..members-1 from the files (seed s0 + e for member e unless
 * ensemble.json records one): finished, checkpoint, last validation score (train_log.jsonl),
 * and the designated PFKD member. */
uakd_status uakd_ensemble_scan(const char *dir, int members, uint64_t s0, uakd_ensemble_info *info);
uakd_status uakd_ensemble_write(const char *dir, const uakd_ensemble_info *info);
/* Reads dir/ensemble.json strictly (unknown keys, bad types and sizes are errors). */
uakd_status uakd_ensemble_read(const char *dir, uakd_ensemble_info *info);

/* ---- teachers ---- */

typedef struct uakd_teachers uakd_teachers;

/* Opens every member of an ensemble directory (all must be finished) as inference builds for
 * batches of max_batch images; feat_member < 0 takes the ensemble's pfkd_member. */
uakd_status uakd_teachers_open(const char *dir, int max_batch, int feat_member, uakd_teachers **out);
void uakd_teachers_free(uakd_teachers *t);
int uakd_teachers_count(const uakd_teachers *t);
int uakd_teachers_feat_member(const uakd_teachers *t);
uakd_wdrnet *uakd_teachers_member(const uakd_teachers *t, int e);

/* Teacher local predictions of one batch (uakd_teachers_predict). Arrays indexed by the
 * batch's cells j (images one after another, m[b] cells for image b). */
typedef struct uakd_teacher_preds {
    int images, total;    /* images of the batch, cells in all */
    int *m;               /* [images] cells per image */
    uakd_wdr_cell *cells; /* [total]: level, col, row, mean confidence c, mean corners (pixels) */
    float *y;             /* [total][8][2] mean corners / (in_w, in_h) */
    float *s2;            /* [total][8] unbiased variance, input pixels^2 */
    float *u;             /* [total][8] tanh(s2 / tau2) */
} uakd_teacher_preds;

void uakd_teacher_preds_free(uakd_teacher_preds *p);

/* Runs all members on n images (NCHW, ImageNet-normalised, the members' input size) in inference
 * mode and selects, per image b of class cls[b] (< 0: none), the teacher local predictions with
 * their uncertainty (tau2 as in the config). */
uakd_status uakd_teachers_predict(uakd_teachers *t, const float *images, int n, const int *cls, double tau2,
                                  uakd_teacher_preds *out);

/* The uncertainty of a dataset split: the teachers on the test crop (ground-truth box, no
 * augmentation) of every instance of the objects obj_ids (class c = obj_ids[c]) at least
 * min_visib visible (only the images of the list file `list` when not NULL, as
 * uakd_split_from_list reads it), up to max_images crops (0: all); s2 gets the variances of every selected
 * teacher cell, [cells][8] (corner k at 8j + k). `auto` tau^2 is their median
 * (uakd_unc_auto_tau2). */
typedef struct uakd_unc_scan {
    long images;  /* crops run */
    long missing; /* crops without any selected teacher cell */
    long cells;   /* teacher cells */
    float *s2;    /* [cells][8] */
} uakd_unc_scan;

uakd_status uakd_teachers_scan(uakd_teachers *t, const char *root, const char *split, const char *list,
                               const int *obj_ids, int num_obj, double min_visib, long max_images, uakd_unc_scan *out);
void uakd_unc_scan_free(uakd_unc_scan *s);

/* ---- the distillation hook ---- */

typedef struct uakd_distill uakd_distill;

/* Builds the hook for a student of the given model config (max_batch = batch): opens the
 * teachers, builds and initialises the adapter when channel counts differ (and the method has a
 * feature term). */
uakd_status uakd_distill_new(const uakd_distill_config *cfg, const char *ensemble_dir,
                             const uakd_wdrnet_config *student, uakd_distill **out);
void uakd_distill_free(uakd_distill *d);
/* The teacher mass of a prediction with uncertainty u and ensemble confidence c under cfg's
 * method (the table at the top). */
float uakd_distill_teacher_mass(const uakd_distill_config *cfg, float u, float c);
/* The plan of image b and corner k from the hook's last step (NULL when that image had no student
 * or no teacher prediction, or the method has none); see uakd_kd_plan. */
const float *uakd_distill_plan(const uakd_distill *d, int image, int keypoint, int *n, int *m);
/* The teacher predictions of the hook's last step. */
const uakd_teacher_preds *uakd_distill_teacher_preds(const uakd_distill *d);
/* The hook to put in uakd_train_config.hook (valid while d lives). */
const uakd_train_hook *uakd_distill_hook(uakd_distill *d);
/* The adapter net (NULL when identity). */
uakd_net *uakd_distill_adapter(const uakd_distill *d);

/* Running statistics since the last call (then reset): mean teacher cells per image, mean u, and
 * steps; for logging. */
typedef struct uakd_distill_stats {
    int64_t steps;
    double teacher_cells, student_cells, mean_u;
} uakd_distill_stats;
void uakd_distill_take_stats(uakd_distill *d, uakd_distill_stats *s);

#endif
