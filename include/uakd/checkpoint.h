/* Training checkpoints: everything a run needs to continue exactly where it stopped, in ONE
 * safetensors file written atomically (temporary file, fsync, rename; uakd/fileio.h).
 *
 * Tensors: the network's (uakd_weights_add names, float32) and "optim.state" (the optimizer's
 * state allocation, uakd_optim_state). Metadata: "format" = "uakd-checkpoint", "format_version",
 * "data_crc32", "step", "total_steps", "optim_steps", "rng" (the xoshiro state, 32 bytes hex),
 * "loader_epoch", "loader_index" (when has_loader), plus the caller's architecture keys. A
 * corrupt (CRC, truncation, malformed header) or foreign file (weights, another format) is refused
 * with a message saying what it is. */
#ifndef UAKD_CHECKPOINT_H
#define UAKD_CHECKPOINT_H

#include <stddef.h> /* uakd/loader.h uses size_t */
#include <stdint.h>

#include "uakd/loader.h"
#include "uakd/net.h"
#include "uakd/optim.h"
#include "uakd/rng.h"
#include "uakd/safetensors.h"
#include "uakd/status.h"

#define UAKD_CHECKPOINT_FORMAT "uakd-checkpoint"
#define UAKD_CHECKPOINT_VERSION 1

typedef struct uakd_train_state {
    int64_t step;        /* training steps completed (the schedule position) */
    int64_t total_steps; /* schedule length (a resumed run must use the same) */
    uakd_rng rng;        /* the training loop's random stream (target assignment, ...) */
    int has_loader;
    uakd_loader_position loader; /* uakd_loader_tell before the next batch */
} uakd_train_state;

/* Architecture metadata hooks (e.g. uakd_netdesc_put_metadata / check_metadata wrapped); NULL for
 * none. */
typedef uakd_status (*uakd_put_meta_fn)(const void *arch, uakd_safetensors_writer *w);
typedef uakd_status (*uakd_check_meta_fn)(const void *arch, const uakd_safetensors *st);

uakd_status uakd_checkpoint_save(const char *path, const uakd_net *net, const uakd_optim *opt,
                                 const uakd_train_state *state, uakd_put_meta_fn put_meta, const void *arch);
/* Restores network tensors (strict names and shapes), optimizer state and step count, and *state.
 * The network and optimizer must be built like the saved ones. */
uakd_status uakd_checkpoint_load(const char *path, uakd_net *net, uakd_optim *opt, uakd_train_state *state,
                                 uakd_check_meta_fn check_meta, const void *arch);

#endif
