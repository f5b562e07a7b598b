/* Supervised SPNv2 training on a SPEED+ dataset (models.md SPNv2, the SPEED+ recipe), as a library
 * loop: the WDRNet family's loop (uakd/train_loop.h: same files, checkpoint format, resume and
 * interruption semantics) with this family's data, network, loss and validation.
 *
 * One step: the loader's next batch (the whole image resized to in_w x in_h, UAKD_CROP_FULL, no
 * geometric augmentation; brightness/contrast, Gaussian blur and noise each with p = 0.5) ->
 * random erasing and sun flare (uakd/spn.h), each with p = 0.5 per image, drawn from the loop's
 * checkpointed RNG -> targets: the 11 keypoints projected with the camera's distortion through the
 * resize affine (the loader's kp2d), Gaussian heatmaps sigma 2 at stride 4 (uakd_spn_targets;
 * keypoints behind the camera or outside the input are excluded) -> forward -> squared-error loss
 * (uakd_spn_loss) -> [the distillation hook's terms and gradients] -> backward -> optional
 * gradient-norm clipping -> AdamW (weight decay on weights only) with the step schedule
 * lr = lr0 x 0.1 at 15/20 and again at 18/20 of the steps.
 *
 * Batch-norm statistics: before each validation and before model.safetensors is written, the
 * running means and variances are recomputed for the current weights (uakd_spn_recalibrate_bn on
 * bn_recal training images). The running averages of training trail the weights (BiFPN momentum
 * 0.01, head 0.003: windows of about 100 and 330 steps), which is harmless after SPNv2's
 * 20 epochs but, at a few hundred or thousand steps, leaves an inference network whose heatmaps
 * are near zero although the training-mode loss is low (docs/speedplus.md, "Batch-norm statistics").
 *
 * Files in out_dir:
 *   config.json          {"family": "spnv2", "model": {...spnnet config}, "keypoints": [[x,y,z] x K],
 *                        "train": {...settings}} (`uakd eval` builds the model from it)
 *   train_log.jsonl      {"step", "loss", "heatmap", <hook terms>, "lr", "img_s"} every log_every
 *                        steps and {"step", "val_e_t", "val_e_r_deg", "val_e_pose", "val_rejected"}
 *                        per validation
 *   checkpoint.safetensors   uakd/checkpoint.h: model, AdamW state, step, schedule, RNG, loader position
 *   checkpoint_extra.safetensors   the hook's extra network and its optimizer, when it has one
 *   model.safetensors    final weights
 * A resumed run gives bit-identical weights to an uninterrupted one with the same settings. */
#ifndef UAKD_SPN_TRAIN_H
#define UAKD_SPN_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "uakd/loader.h"
#include "uakd/spn.h"
#include "uakd/spn_infer.h"
#include "uakd/spnnet.h"
#include "uakd/train.h"

/* ---- the distillation hook (the heatmap family's counterpart of uakd_train_hook) ----
 * Called after the forward and the supervised loss, before the backward. dheatmap holds the
 * supervised gradient of the student's heatmaps (n, K, hh, hw): the hook ADDS its own. To send a
 * gradient into another layer (e.g. student->p2) it assigns uakd_net_grad(student->net, id) for
 * the first n images and appends id to seeds. Terms are returned already weighted. extra_net: as
 * in uakd_train_hook (own AdamW, clipping, checkpoint_extra.safetensors). */
typedef struct uakd_spn_hook_ctx {
    int64_t step;
    const uakd_batch *batch;
    uakd_spnnet *student;
    const uakd_spn_config *spn;
    const float *heatmap; /* student output */
    float *dheatmap;      /* its gradient buffer: add to it */
    int n;
    int n_seeds;
    int seeds[4];
} uakd_spn_hook_ctx;

typedef struct uakd_spn_hook {
    void *user;
    int n_terms;
    const char *term_names[UAKD_TRAIN_MAX_TERMS];
    uakd_net *extra_net;
    uakd_status (*step)(void *user, uakd_spn_hook_ctx *ctx, double *terms);
} uakd_spn_hook;

typedef struct uakd_spn_train_config {
    const char *data_root;     /* SPEED+ root (camera.json, <domain>/<list>.json, <domain>/images/) */
    const char *domain;        /* "synthetic" */
    const char *train_list;    /* "train" */
    const char *val_list;      /* "validation"; NULL or "" for none */
    const char *keypoints_csv; /* required: "index,x,y,z" (e.g. tangoPoints.transcribed.csv) */
    uakd_spnnet_config model;  /* phi 0 at 768 x 512, 11 keypoints */
    int batch;                 /* 8 */
    int64_t steps;             /* 10000 */
    double lr;                 /* 1e-3 */
    double weight_decay;       /* 1e-4 */
    double gamma;              /* 0.1 at 15/20 and 18/20 of the steps */
    double clip;               /* 0: none */
    double erase_p, flare_p;   /* 0.5, 0.5 */
    double photometric_p;      /* 0.5: brightness/contrast, blur, noise (uakd/augment.h) */
    int bn_recal;              /* 200: training images for the batch-norm statistics of validation and
                                  model.safetensors (uakd_spn_recalibrate_bn); 0: the running averages */
    uint64_t seed;             /* 1 */
    int loader_threads;        /* 1 */
    size_t cache_bytes;        /* 1 GiB */
    int64_t val_every;         /* 0: only at the end */
    int val_max;               /* 200; 0: all */
    int64_t ckpt_every;        /* 500 */
    int64_t log_every;         /* 10 */
    const char *out_dir;       /* required */
    int resume;
    const char *init_weights;  /* NULL or a uakd weights file for the whole model */
    const volatile sig_atomic_t *interrupt;
    uakd_train_progress_fn progress; /* uakd/train.h's: cls = the heatmap loss, pose = 0; after a
                                        validation val_add[0] = E_pose, val_add[1] = E_T (m),
                                        val_add[2] = E_R (deg), val_proj5 = rejected (%) */
    void *user;
    const uakd_spn_hook *hook;
} uakd_spn_train_config;

void uakd_spn_train_config_default(uakd_spn_train_config *c);

typedef struct uakd_spn_train_result {
    int64_t steps_done;
    double seconds;
    double last_loss;
    uakd_spn_eval_stats val; /* last validation (images 0 when none ran) */
} uakd_spn_train_result;

uakd_status uakd_spn_train_run(const uakd_spn_train_config *c, uakd_spn_train_result *result);

/* Recomputes the running mean and variance of every batch norm of m (a training build) for its
 * current weights ("precise BN"): training-mode forwards (drop-connect off) of the first n of the
 * instances idx[0..count) of ds (n > count: all), prepared as for evaluation (whole image, no
 * augmentation), in batches of the net's max batch; batch j of n_j images uses the momentum
 * n_j / (images so far), so the statistics become the image-weighted means of the batch means and
 * unbiased batch variances. The layers' momenta are restored afterwards; group norms and the
 * weights are unchanged. n <= 0, or a net without batch norms: nothing to do. */
uakd_status uakd_spn_recalibrate_bn(uakd_spnnet *m, const uakd_dataset *ds, const int *idx, int count, int n);

/* ---- files of a trained SPNv2 model ---- */
typedef struct uakd_spn_model_info {
    uakd_spnnet_config model;
    int num_keypoints;
    double keypoints[UAKD_SPN_MAX_KEYPOINTS][3];
} uakd_spn_model_info;

/* 1 when dir (or the directory of a weights file) holds a config.json with "family": "spnv2". */
int uakd_spn_model_is(const char *model);
/* Reads config.json (unknown keys and out-of-range sizes are errors); weights (may be NULL, cap
 * bytes) gets dir/model.safetensors, or model itself when it is a file (which must exist). */
uakd_status uakd_spn_model_info_read(const char *model, uakd_spn_model_info *info, char *weights, size_t cap);
/* Builds (max_batch, inference) and loads the weights. */
uakd_status uakd_spn_model_open(const char *model, int max_batch, uakd_spn_model_info *info, uakd_spnnet **out);

#endif
