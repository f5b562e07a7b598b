/* Batch loader: prepares the next batch on a background thread while the caller trains on the
 * current one (double buffering).
 *
 * The stream of samples is defined by the seed alone, never by timing: position (epoch e, k)
 * holds dataset instance indices[perm_e[k]], where perm_e is a Fisher-Yates shuffle drawn from
 * split(split(seed, e), 0) (identity when shuffle is off), and that sample's augmentation uses
 * the stream split(split(seed, e), 1 + k). Batches are consecutive runs of positions; in the
 * default (endless) mode a batch that reaches the end of an epoch continues into the next one,
 * so every batch is full. With single_pass the loader stops after epoch 0 and its last batch may
 * be short (evaluation). uakd_loader_tell / uakd_loader_seek save and restore the position for
 * resumable training: a loader seeked to a saved position returns exactly the batches that
 * followed it. */
#ifndef UAKD_LOADER_H
#define UAKD_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "uakd/augment.h"
#include "uakd/dataset.h"

typedef struct uakd_loader_config {
    int batch_size;              /* samples per batch, 1..4096 */
    uint64_t seed;               /* defines the order and every augmentation */
    int shuffle;                 /* 1: a new permutation each epoch; 0: the order of indices */
    int single_pass;             /* 1: one epoch, then uakd_loader_next returns no batch */
    int threads;                 /* threads preparing one batch's samples (0 or 1: one); results
                                    do not depend on it */
    size_t cache_bytes;          /* keep up to this many bytes of decoded images in memory (0: none);
                                    results do not depend on it */
    uakd_augment_config sample;  /* crop size, train/test, augmentation */
} uakd_loader_config;

typedef struct uakd_loader_position {
    int64_t epoch;
    int64_t index; /* position within the epoch, 0..num_indices-1 */
} uakd_loader_position;

typedef struct uakd_batch {
    int n;                           /* samples in this batch */
    int channels, height, width;     /* 3, out_height, out_width */
    float *images;                   /* n x 3 x H x W, ImageNet-normalised (contiguous NCHW) */
    uint8_t *masks;                  /* n x H x W visible masks (0/1) */
    uakd_target *targets;            /* n per-sample targets (keypoints, pose, crop camera, affine) */
    uakd_loader_position start;      /* position of the first sample */
} uakd_batch;

typedef struct uakd_loader uakd_loader;

/* Starts a loader over the given instance indices of ds (copied; ds must outlive the loader) and
 * begins preparing the first batch. */
uakd_status uakd_loader_new(const uakd_dataset *ds, const int *indices, int num_indices,
                            const uakd_loader_config *cfg, uakd_loader **out);

/* Waits for the next batch and starts preparing the one after it. *batch stays valid until the
 * next call to uakd_loader_next, uakd_loader_seek or uakd_loader_free. At the end of a single
 * pass *batch is NULL and UAKD_OK is returned. An error while preparing (unreadable image, ...)
 * is returned here with the worker's message; the position then stays at the failed batch. */
uakd_status uakd_loader_next(uakd_loader *L, const uakd_batch **batch);

/* The position of the batch the next uakd_loader_next will return. */
uakd_loader_position uakd_loader_tell(const uakd_loader *L);

/* Moves to a position (index in 0..num_indices-1; epoch 0 only with single_pass). */
uakd_status uakd_loader_seek(uakd_loader *L, uakd_loader_position pos);

/* Stops the worker thread and frees everything; NULL is fine. */
void uakd_loader_free(uakd_loader *L);

#endif
