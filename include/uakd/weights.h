/* Network weights <-> safetensors files, and darknet .weights import into a network.
 *
 * A weights file holds every parameter and buffer of a network under its state_dict name as
 * float32 with the parameter's shape, plus "P.num_batches_tracked" (I64 scalar 0) for every batch
 * norm P, so PyTorch's load_state_dict(strict=True) accepts it. Metadata: "format" = "uakd-weights",
 * "format_version" = 1, "data_crc32", and the architecture keys the caller adds (for example
 * uakd_netdesc_put_metadata: description, hash, input size and normalisation).
 *
 * Loading is strict: every tensor of the network must be in the file with exactly its shape, and
 * the file may hold nothing else (num_batches_tracked of the network's batch norms excepted); a
 * mismatch lists the missing, unexpected and misshapen names. */
#ifndef UAKD_WEIGHTS_H
#define UAKD_WEIGHTS_H

#include <stddef.h>

#include "uakd/net.h"
#include "uakd/netdesc.h"
#include "uakd/safetensors.h"
#include "uakd/status.h"

#define UAKD_WEIGHTS_FORMAT "uakd-weights"
#define UAKD_WEIGHTS_VERSION 1

enum {
    UAKD_WEIGHTS_PARTIAL = 1, /* network tensors absent from the file keep their values (e.g. a
                                 backbone-only file loaded into a whole model); extra names and
                                 wrong shapes are still refused */
    UAKD_WEIGHTS_ALLOW_OPTIM = 2, /* tensors named "optim.*" are not the network's (checkpoints) */
};

/* Adds the network's tensors (borrowed: the net must outlive the writer's last write). */
uakd_status uakd_weights_add(uakd_safetensors_writer *w, const uakd_net *net);
/* Copies the network's tensors from an open file (strict unless UAKD_WEIGHTS_PARTIAL). *loaded
 * (may be NULL) receives the number of network tensors found. */
uakd_status uakd_weights_load_from(uakd_net *net, const uakd_safetensors *st, unsigned flags, int *loaded);

/* Writes a weights file atomically; arch (may be NULL) adds uakd_netdesc_put_metadata. */
uakd_status uakd_weights_save(const uakd_net *net, const uakd_netdesc *arch, const char *path);
/* Reads a weights file ("format" must be uakd-weights); with arch, its "arch_hash" must match. */
uakd_status uakd_weights_load(uakd_net *net, const uakd_netdesc *arch, const char *path, unsigned flags);

/* Reads a darknet .weights file for description d into the network's tensors named
 * prefix + uakd_netdesc_layer_prefix(d, i) + ".conv.weight" / ".bn.*" / ".conv.bias" (the names
 * uakd_netbuild_append gives with that prefix). flags: UAKD_DARKNET_ALLOW_PREFIX / _TRAILING
 * (uakd/darknet_weights.h); *n_covered (may be NULL) gets the conv layers read. */
uakd_status uakd_weights_import_darknet(uakd_net *net, const uakd_netdesc *d, const char *prefix, const char *path,
                                        unsigned flags, size_t *n_covered);

#endif
