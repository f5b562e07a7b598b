/* Reading darknet ".weights" files (how ImageNet-pretrained DarkNet backbones are shared).
 *
 * Layout: int32 major, int32 minor, int32 revision, then "seen" (images trained on) as uint64
 * when major * 10 + minor >= 2, else as uint32; then float32 values, little-endian. For each
 * convolutional layer in network order: with batch norm, beta (darknet calls it "biases"),
 * gamma ("scales"), running mean, running variance (filters values each); without, the bias
 * (filters values); then the weights, filters x (C_in / groups) x size x size (OIHW). Other
 * layers store nothing.
 *
 * The expected size is computed from the network before anything is read: the file must hold
 * exactly the listed layers, or with UAKD_DARKNET_ALLOW_PREFIX exactly a prefix of them (e.g.
 * darknet53.conv.74 = the convolutions of the first 74 layers), or with
 * UAKD_DARKNET_ALLOW_TRAILING at least all of them (e.g. a classifier's head follows). A
 * mismatch names the layer where file and network part ways. */
#ifndef UAKD_DARKNET_WEIGHTS_H
#define UAKD_DARKNET_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "uakd/netdesc.h"
#include "uakd/status.h"

typedef struct uakd_darknet_header {
    int32_t major, minor, revision;
    uint64_t seen;
    size_t header_bytes; /* 20 or 16 */
} uakd_darknet_header;

/* One layer's share of the float stream. */
typedef struct uakd_darknet_layer {
    int layer;       /* index in the network description (for messages) */
    int line;        /* line of its section in the description, 0 when unknown */
    size_t n_floats; /* values stored for this layer */
} uakd_darknet_layer;

enum {
    UAKD_DARKNET_ALLOW_PREFIX = 1,   /* the file may cover only the first k layers */
    UAKD_DARKNET_ALLOW_TRAILING = 2, /* the file may hold more values after the last layer */
};

/* The stored layers of a network: one entry per [convolutional] layer, with
 * n_floats = (batch norm ? 4 : 1) * filters + filters * C_in / groups * size * size. Refuses
 * convolutions darknet cannot store (GroupNorm; no bias and no norm; bias together with batch
 * norm). Free *layers with free(). */
uakd_status uakd_darknet_layout(const uakd_netdesc *d, uakd_darknet_layer **layers, size_t *n);

typedef struct uakd_darknet_weights uakd_darknet_weights;

/* Opens a weights file, reads and checks its header and size (whole float32 values). */
uakd_status uakd_darknet_weights_open(const char *path, uakd_darknet_weights **out);
void uakd_darknet_weights_close(uakd_darknet_weights *w);

const uakd_darknet_header *uakd_darknet_weights_header(const uakd_darknet_weights *w);
/* Number of float32 values after the header. */
size_t uakd_darknet_weights_available(const uakd_darknet_weights *w);

/* Matches the file's size against the layers (see the top of this header) and reports how many
 * leading layers the file covers. Reads nothing. */
uakd_status uakd_darknet_weights_plan(const uakd_darknet_weights *w, const uakd_darknet_layer *layers, size_t n,
                                      unsigned flags, size_t *n_covered);

/* Reads the next n values of the stream into dst. */
uakd_status uakd_darknet_weights_read(uakd_darknet_weights *w, float *dst, size_t n);

/* Converts a darknet weights file for network d into a safetensors file at out_path (written
 * atomically) with state_dict names (see uakd_netdesc_layer_prefix): for each covered conv layer,
 * with batch norm P.bn.bias (beta), P.bn.weight (gamma), P.bn.running_mean, P.bn.running_var and
 * P.bn.num_batches_tracked (I64 scalar 0, as in PyTorch), else P.conv.bias; then P.conv.weight. Metadata: format "uakd-weights", format_version 1, the
 * architecture keys of uakd_netdesc_put_metadata, "darknet_header" ("major.minor.revision"),
 * "darknet_seen" and "darknet_layers" (layers covered). name_prefix (e.g. "backbone.", NULL for
 * none) is prepended to every name. flags as for plan; n_covered may be NULL. */
uakd_status uakd_darknet_to_safetensors(const char *weights_path, const uakd_netdesc *d, unsigned flags,
                                        const char *name_prefix, const char *out_path, size_t *n_covered);

#endif
