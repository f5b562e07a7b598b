/* Shared between the training loop (train.c) and its files (train_files.c). */
#ifndef UAKD_TRAIN_INTERNAL_H
#define UAKD_TRAIN_INTERNAL_H

#include "uakd/dataset.h"
#include "uakd/train.h"

/* Writes out_dir/config.json (atomically): the resolved model settings, the objects' 3D boxes
 * and diameters from ds, and the training settings. */
uakd_status uakd_train_write_config(const char *path, const uakd_train_config *c, const uakd_wdrnet *m,
                                    const uakd_dataset *ds);
/* Keeps only the lines of a JSON-lines log whose "step" is <= step (atomic rewrite; a missing
 * file is fine). */
uakd_status uakd_train_log_truncate(const char *path, int64_t step);

#endif
