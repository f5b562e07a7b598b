/* Supervised WDRNet training on a BOP dataset (models.md, LINEMOD recipe), as a library loop the
 * CLI (`uakd train`) and the distillation module drive (the loop itself, shared with the SPNv2
 * family: uakd/train_loop.h).
 *
 * One step: the loader's next batch (training crops with augmentation, visible masks, crop
 * cameras) -> targets (uakd_wdr_assign: per-level quotas inside the visible mask, drawn from the
 * loop's RNG) -> forward -> L = 0.1 focal + 1.0 ray-distance pose (uakd_wdr_loss_eval, gradients
 * into the head outputs) -> the hook's extra terms and gradients (optional) -> backward ->
 * gradient-norm clipping (1.0) -> AdamW (lr 1e-3 peak, weight decay 1e-4, no decay on
 * norm/bias/scale) with the one-cycle schedule (5% linear warm-up, linear decay to 0).
 *
 * Files in out_dir:
 *   config.json          the settings (written at the start; `uakd eval` builds the model from it)
 *   train_log.jsonl      one line per logged step {"step", "loss", "cls", "pose", <hook terms>,
 *                        "lr", "img_s"}, with "val_add_005", "val_add_01", "val_add_02",
 *                        "val_proj5", "val_missing" (percent) added when a validation ran at that
 *                        step (a line of its own when the step is not a logged one)
 *   checkpoint.safetensors  every ckpt_every steps, at the end and on interruption (atomic):
 *                        model, AdamW state, step, schedule length, RNG, loader position
 *   checkpoint_extra.safetensors  the hook's extra network and its optimizer, when it has one
 *   model.safetensors    the final weights (uakd_wdrnet_save)
 * A resumed run (resume = 1) continues from checkpoint.safetensors and gives bit-identical
 * weights to an uninterrupted run with the same settings and compute threads; log lines after
 * the checkpoint's step are dropped first.
 *
 * Validation (every val_every steps and at the end): ADD(-S) at 0.05/0.1/0.2 d on up to val_max
 * instances of val_split, test crops from the ground-truth box (uakd/infer.h). */
#ifndef UAKD_TRAIN_H
#define UAKD_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "uakd/infer.h"
#include "uakd/loader.h"
#include "uakd/net.h"
#include "uakd/optim.h"
#include "uakd/wdr.h"
#include "uakd/wdrnet.h"

#define UAKD_TRAIN_MAX_OBJECTS 16
#define UAKD_TRAIN_MAX_TERMS 8

/* ---- the distillation hook ----
 *
 * Called once per step after the student's forward and its supervised loss, before the backward.
 * The head outputs' gradient buffers (ctx->grads) then hold the supervised gradient: the hook ADDS
 * (+=) its own dLoss/dmap there. To send a gradient into another layer (an FPN feature map,
 * uakd_wdrnet_feature_id), it writes (assigns) uakd_net_grad(uakd_wdrnet_net(student), id) for the
 * first ctx->n images and appends id to ctx->seeds (the loop back-propagates from the head outputs
 * and the seeds together). It returns its loss terms, already weighted, in terms[0..n_terms-1];
 * they are added to the logged total.
 *
 * Extra trainable parameters (e.g. an adapter as a small uakd_net built for training): set
 * extra_net. The loop zeroes its gradients before calling the hook (which runs its forward and
 * backward), clips its gradient norm separately with the same clip value and steps it with its own
 * AdamW with the student's settings and learning rate; it is saved in checkpoint_extra.safetensors
 * and restored on resume (its parameters must be initialised by the caller before training). */
typedef struct uakd_train_hook_ctx {
    int64_t step;                    /* 0-based step being taken */
    const uakd_batch *batch;         /* images, masks, per-sample targets (crop camera, pose) */
    const uakd_wdr_targets *targets; /* assignment of this step (positives in targets->pos) */
    uakd_wdrnet *student;            /* levels, feature ids, the engine net */
    const uakd_wdr_maps *maps;       /* student head outputs (n images) */
    const uakd_wdr_grads *grads;     /* their gradient buffers: add to them */
    int n;                           /* images in the batch */
    int n_seeds;                     /* layer ids whose gradient the hook wrote (append) */
    int seeds[2 * UAKD_WDR_MAX_LEVELS];
} uakd_train_hook_ctx;

typedef struct uakd_train_hook {
    void *user;
    int n_terms;                                  /* 0..UAKD_TRAIN_MAX_TERMS */
    const char *term_names[UAKD_TRAIN_MAX_TERMS]; /* log keys, e.g. "kd_pred", "kd_feat" */
    uakd_net *extra_net;                          /* NULL: none */
    uakd_status (*step)(void *user, uakd_train_hook_ctx *ctx, double *terms);
} uakd_train_hook;

/* ---- progress ---- */
typedef struct uakd_train_progress {
    int64_t step, total;   /* steps done, schedule length */
    double loss, cls, pose; /* last step: total (with hook terms), unweighted focal and pose terms */
    int n_terms;
    const char *const *term_names;
    const double *terms;   /* the hook's terms */
    double lr, img_s, eta_s;
    int validation;        /* 1: a validation just finished (val_* set) */
    double val_add[3];     /* ADD(-S) success (%) at 0.05 / 0.1 / 0.2 d */
    double val_proj5;      /* 2D projection @ 5 px (%) */
    double val_missing;    /* missing predictions (%) */
    int val_instances;
    const char *event;     /* NULL, or a one-line note ("resumed from step 120", "checkpoint written") */
} uakd_train_progress;

/* Called after every step and validation; a nonzero return stops like an interruption. */
typedef int (*uakd_train_progress_fn)(const uakd_train_progress *p, void *user);

typedef struct uakd_train_config {
    const char *data_root;  /* BOP dataset root */
    const char *train_split; /* "train" */
    const char *train_list; /* NULL, or a list file of the train split's images to use
                               (uakd_split_from_list; e.g. the classic 15 % of real LINEMOD) */
    const char *val_split;  /* "test"; NULL or "" for no validation */
    const char *val_list;   /* NULL, or a list file of the validation split's images. Without one,
                               when val_split == train_split and train_list is set, validation uses
                               the images NOT in train_list */
    int obj_ids[UAKD_TRAIN_MAX_OBJECTS]; /* class c = object obj_ids[c] */
    int num_obj_ids;        /* 1 */
    const char *variant;    /* "darknet-tiny-h" (or darknet53, darknet-tiny) */
    const char *cfg_path;   /* backbone description instead of the variant's; NULL */
    const char *cfg_dir;    /* where the variants' cfgs are (NULL: $UAKD_CFG_DIR or "cfg") */
    int width;              /* FPN / head width F; 0: the variant's */
    int tower_convs;        /* head tower depth; 0: 4 */
    int input_size;         /* 256 */
    int batch;              /* 16 */
    int64_t steps;          /* 10000 */
    double lr;              /* 1e-3 */
    double weight_decay;    /* 1e-4 */
    double warmup_frac;     /* 0.05 */
    double clip;            /* 1.0 (0: no clipping) */
    uint64_t seed;          /* initialisation, data order, augmentation, assignment: 1 */
    int loader_threads;     /* 1 */
    size_t cache_bytes;     /* decoded-image cache: 1 GiB */
    double min_visib_fract; /* training instances less visible than this are skipped: 0.1 */
    int64_t val_every;      /* 0: only at the end */
    int val_max;            /* validation instances (first of the split): 200; 0: all */
    int64_t ckpt_every;     /* 500; 0: only at the end and on interruption */
    int64_t log_every;      /* train_log.jsonl line every N steps: 10 */
    const char *out_dir;    /* required; created */
    int resume;             /* continue from out_dir/checkpoint.safetensors */
    const char *init_weights; /* NULL, a uakd weights file for the whole model, or a darknet .weights
                                 file for the backbone (ImageNet pretraining) */
    const volatile sig_atomic_t *interrupt; /* set asynchronously (SIGINT): checkpoint, then
                                               UAKD_EINTERRUPTED */
    uakd_train_progress_fn progress;
    void *user;
    const uakd_train_hook *hook; /* NULL: plain supervised training */
} uakd_train_config;

void uakd_train_config_default(uakd_train_config *c);

/* The model this config builds (for eval and the distillation module). */
void uakd_train_model_config(const uakd_train_config *c, uakd_wdrnet_config *mc);

typedef struct uakd_train_result {
    int64_t steps_done;
    double seconds;       /* wall time of this call's steps */
    double last_loss;
    uakd_eval_stats val;  /* last validation (all objects); targets 0 when none ran */
} uakd_train_result;

/* Runs (or resumes) training. Returns UAKD_EINTERRUPTED after writing a checkpoint when
 * *interrupt became nonzero or the progress callback asked to stop. */
uakd_status uakd_train_run(const uakd_train_config *c, uakd_train_result *result);

/* ---- files of a trained model ---- */

/* out_dir/config.json <-> config: variant or cfg path, width, tower, input, objects (with their
 * 3D box and diameter), and the training settings. uakd_model_info holds what inference needs;
 * its strings live in the struct. */
typedef struct uakd_model_info {
    uakd_wdrnet_config model; /* max_batch 1, inference */
    int num_objects;
    int obj_ids[UAKD_TRAIN_MAX_OBJECTS];
    double box_min[UAKD_TRAIN_MAX_OBJECTS][3], box_max[UAKD_TRAIN_MAX_OBJECTS][3];
    double diameter[UAKD_TRAIN_MAX_OBJECTS];
    char variant[32];
    char cfg_path[1024];
} uakd_model_info;

/* Whether the run in dir was made with c's settings: the "train" object of dir/config.json against
 * c's (data, split, lists, batch, steps, lr, weight decay, warm-up, clipping, seed, visibility,
 * initial weights) and the width, tower depth, input size and variant that c sets. why (size cap)
 * gets "" when they agree, else the first difference ("steps: recorded 600, now 1000"). */
uakd_status uakd_train_config_compare(const char *dir, const uakd_train_config *c, char *why, size_t cap);
/* Reads dir/config.json (model = a directory, or a weights file whose directory holds config.json).
 * weights (may be NULL, size cap) receives the weights path: model itself when it is a file, else
 * dir/model.safetensors (dir/checkpoint.safetensors when there is no final model yet). */
uakd_status uakd_model_info_read(const char *model, uakd_model_info *info, char *weights, size_t cap);
/* Builds the model (max_batch, inference build) and loads its weights (a weights file or a
 * checkpoint). */
uakd_status uakd_model_open(const char *model, int max_batch, uakd_model_info *info, uakd_wdrnet **out);

#endif
