/* The training loop both model families run (WDRNet, uakd/train.h; SPNv2, uakd/spn_train.h). A
 * family supplies its data, network, forward and loss, validation and files through a
 * uakd_train_family; the loop does the rest, identically for both:
 *
 *   for s = step .. S-1:  batch = loader next;  zero the gradients (network, hook's extra net);
 *     family forward: targets (from the checkpointed RNG), forward, supervised loss (gradients
 *     into its outputs), the distillation hook's terms and gradients (added to the loss);
 *     backward from the outputs and the hook's seeds;  g *= min(1, clip / (|g| + 1e-6)) when
 *     clip > 0 (each network separately);  theta = AdamW(theta, g, lr(s)) (both networks);
 *     log, validate, checkpoint, report progress as scheduled.
 *
 * Files in out_dir: config.json (the family's, on a fresh run), train_log.jsonl (one line per
 * logged step: {"step", "loss", <the family's loss keys>, <hook terms>, "lr", "img_s"}, validation
 * keys merged into that line or on a line of their own), checkpoint.safetensors (uakd/checkpoint.h,
 * atomic: network, AdamW state, step, schedule length, RNG, loader position),
 * checkpoint_extra.safetensors (the hook's extra network and optimizer), model.safetensors.
 * Resuming restores all of it (and drops log lines after the checkpoint), so a resumed run gives
 * the bit-identical weights of an uninterrupted one. An interruption (the flag or the progress
 * callback) writes a checkpoint and returns UAKD_EINTERRUPTED. */
#ifndef UAKD_TRAIN_LOOP_H
#define UAKD_TRAIN_LOOP_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "uakd/checkpoint.h"
#include "uakd/loader.h"
#include "uakd/net.h"
#include "uakd/train.h"

/* Most layers one step back-propagates from (the family's outputs and the hook's seeds). */
#define UAKD_TRAIN_MAX_SEEDS (4 * UAKD_WDR_MAX_LEVELS)

/* The settings both families' configs carry under the same names. */
typedef struct uakd_train_loop_config {
    const char *out_dir;
    int batch;
    int64_t steps;
    double lr, weight_decay, clip;
    uint64_t seed;
    int loader_threads;
    size_t cache_bytes;
    int64_t val_every, ckpt_every, log_every;
    int val_max;
    int resume;
    const volatile sig_atomic_t *interrupt;
    uakd_train_progress_fn progress;
    void *user;
    /* the family's distillation hook, its common part (no hook: all 0) */
    int hooked, hook_has_step, n_terms;
    const char *const *term_names;
    uakd_net *extra_net;
} uakd_train_loop_config;

/* The loop settings of a family config c (uakd_train_config, uakd_spn_train_config). */
#define UAKD_TRAIN_LOOP_CONFIG(c)                                                                                      \
    ((uakd_train_loop_config){.out_dir = (c)->out_dir, .batch = (c)->batch, .steps = (c)->steps, .lr = (c)->lr,          \
                              .weight_decay = (c)->weight_decay, .clip = (c)->clip, .seed = (c)->seed,                  \
                              .loader_threads = (c)->loader_threads, .cache_bytes = (c)->cache_bytes,                   \
                              .val_every = (c)->val_every, .ckpt_every = (c)->ckpt_every, .log_every = (c)->log_every,  \
                              .val_max = (c)->val_max, .resume = (c)->resume, .interrupt = (c)->interrupt,              \
                              .progress = (c)->progress, .user = (c)->user, .hooked = (c)->hook != NULL,                \
                              .hook_has_step = (c)->hook && (c)->hook->step,                                            \
                              .n_terms = (c)->hook ? (c)->hook->n_terms : 0,                                            \
                              .term_names = (c)->hook ? (c)->hook->term_names : NULL,                                   \
                              .extra_net = (c)->hook ? (c)->hook->extra_net : NULL})

/* What a family's prepare hands the loop. */
typedef struct uakd_train_setup {
    uakd_net *net;                /* the network trained */
    const void *arch;             /* passed to put_meta / check_meta */
    const uakd_dataset *train_ds; /* the loader's dataset, indices and sample settings */
    const int *train_idx;
    int n_train;
    uakd_augment_config sample;
    int can_validate;             /* validate has something to evaluate */
} uakd_train_setup;

/* A model family: constants and calls, each given the family's run (self). */
typedef struct uakd_train_family {
    const char *name;           /* message prefix: "train", "spn train" */
    const char *loss_keys[2];   /* log keys of progress cls and pose (NULL: not logged) */
    int val_own_line;           /* 1: validation keys on a line of their own */
    uakd_put_meta_fn put_meta;  /* checkpoint architecture keys (NULL: none) */
    uakd_check_meta_fn check_meta;
    /* Loads the data, builds and initialises the network (the loop has created out_dir). */
    uakd_status (*prepare)(void *self, uakd_train_setup *s);
    double (*lr)(const void *self, int64_t step);
    /* Step `step` on batch b: input, targets (drawing from rng), forward, supervised loss (sets
     * p->loss, cls, pose and the outputs' gradients) and, with a hook, the hook (terms[0..n_terms)
     * zeroed by the loop, which adds them to p->loss). Writes the layers to back-propagate from to
     * ids[0..*nids) (at most UAKD_TRAIN_MAX_SEEDS; the hook's through uakd_train_add_seeds). */
    uakd_status (*forward)(void *self, int64_t step, const uakd_batch *b, uakd_rng *rng, uakd_train_progress *p,
                           double *terms, int *ids, int *nids);
    /* Evaluates the network; sets p's val_* fields (and the family's result). */
    uakd_status (*validate)(void *self, uakd_train_progress *p);
    /* Writes the validation's log keys (uakd_train_log_number). */
    void (*log_validation)(FILE *log, const uakd_train_progress *p);
    uakd_status (*write_config)(const void *self, const char *path);
    uakd_status (*save_model)(const void *self, const char *path);
} uakd_train_family;

typedef struct uakd_train_loop_result {
    int64_t steps_done; /* by this call */
    double seconds;     /* wall time of this call's steps */
    double last_loss;
} uakd_train_loop_result;

/* Runs (or resumes) training of family f with its run self: creates out_dir, f->prepare,
 * optimizers, resume or config.json, the loop, model.safetensors. Frees what it made; the family
 * frees its own. */
uakd_status uakd_train_loop_run(const uakd_train_loop_config *c, const uakd_train_family *f, void *self,
                                uakd_train_loop_result *res);

/* Appends the n layer ids a hook seeded (at most max) to ids[0..*nids). */
uakd_status uakd_train_add_seeds(const char *name, const int *seeds, int n, int max, int *ids, int *nids);

/* One log entry `, "key": v` (null when v is not finite). */
void uakd_train_log_number(FILE *log, const char *key, double v);

#endif
