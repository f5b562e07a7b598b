/* Network descriptions: a darknet-style text format, parsed and validated against a schema.
 *
 *   [net]                     # first section: input size and normalisation
 *   width=256
 *   height=256
 *   mean=0.485,0.456,0.406
 *   std=0.229,0.224,0.225
 *
 *   [convolutional]           # one section per layer, numbered 0, 1, ... after [net]
 *   name=stem
 *   filters=32
 *   size=3
 *   pad=1
 *   batch_normalize=1
 *   activation=leaky
 *
 * Every key is typed, range-checked and documented with its default in docs/network-format.md;
 * unknown (misspelt) keys, duplicate keys, unknown sections and bad values are errors naming
 * the line and suggesting the closest valid word. Parsing also resolves layer references
 * (route, shortcut) and computes each layer's output shape, parameter count, buffer count
 * (BatchNorm running statistics) and FLOPs from the description alone. */
#ifndef UAKD_NETDESC_H
#define UAKD_NETDESC_H

#include <stddef.h>
#include <stdint.h>

#include "uakd/safetensors.h"
#include "uakd/status.h"

#define UAKD_NETDESC_MAX_LAYERS 4096
#define UAKD_NETDESC_MAX_ROUTE 16
#define UAKD_NETDESC_MAX_CHANNELS 16 /* entries of [net] mean/std */
#define UAKD_NETDESC_MAX_NAME 64
#define UAKD_NETDESC_MAX_TEXT ((size_t)1 << 20) /* bytes of a description file */

typedef enum uakd_netdesc_type {
    UAKD_ND_CONV,       /* [convolutional] (alias [conv]) */
    UAKD_ND_MAXPOOL,    /* [maxpool] */
    UAKD_ND_UPSAMPLE,   /* [upsample]: nearest neighbour */
    UAKD_ND_ROUTE,      /* [route]: channel concatenation of earlier layers */
    UAKD_ND_SHORTCUT,   /* [shortcut]: previous layer + an earlier layer, then activation */
    UAKD_ND_ACTIVATION, /* [activation]: element-wise activation of the previous layer */
    UAKD_ND_OUTPUT,     /* [output]: identity that names the previous layer's map as a tap */
    UAKD_ND_AVGPOOL,    /* [avgpool]: global average pool to C x 1 x 1 */
    UAKD_ND_SCALE_CHANNELS, /* [scale_channels]: earlier map x previous C x 1 x 1 layer */
} uakd_netdesc_type;

typedef enum uakd_netdesc_act {
    UAKD_ND_ACT_LINEAR,
    UAKD_ND_ACT_LEAKY,   /* x > 0 ? x : 0.1 x */
    UAKD_ND_ACT_RELU,
    UAKD_ND_ACT_SILU,    /* x * sigmoid(x) */
    UAKD_ND_ACT_SIGMOID,
} uakd_netdesc_act;

typedef enum uakd_netdesc_norm {
    UAKD_ND_NORM_NONE,
    UAKD_ND_NORM_BATCH,
    UAKD_ND_NORM_GROUP,
} uakd_netdesc_norm;

typedef struct uakd_netdesc_input {
    int width, height, channels;
    float mean[UAKD_NETDESC_MAX_CHANNELS], std[UAKD_NETDESC_MAX_CHANNELS]; /* per channel */
} uakd_netdesc_input;

typedef struct uakd_layer_desc {
    uakd_netdesc_type type;
    int line;                          /* line of the section header, for messages */
    char name[UAKD_NETDESC_MAX_NAME];  /* name= ("" when not given) */
    /* convolutional; size/stride/padding also for maxpool, stride for upsample */
    int filters, size, stride, padding, groups;
    int bias;                          /* 1 when the conv has a bias vector */
    uakd_netdesc_norm norm;
    int norm_groups;                   /* GroupNorm groups */
    float norm_eps, norm_momentum;
    uakd_netdesc_act activation;       /* conv, shortcut, activation */
    /* route (n_from >= 1), shortcut and scale_channels (n_from == 1): absolute indices of
     * earlier layers */
    int n_from;
    int from[UAKD_NETDESC_MAX_ROUTE];
    /* computed: shapes (channels, height, width), parameters, buffers (BN running statistics),
     * FLOPs (2 per multiply-add) */
    int in_c, in_h, in_w, out_c, out_h, out_w;
    int64_t params, buffers;
    double flops;
} uakd_layer_desc;

typedef struct uakd_netdesc {
    uakd_netdesc_input input;
    int n_layers;
    int cap_layers; /* allocated entries of layers (internal) */
    uakd_layer_desc *layers;
    int64_t total_params, total_buffers;
    double total_flops;
} uakd_netdesc;

/* Parses and validates a description; label names the source in messages. */
uakd_status uakd_netdesc_parse(const char *text, size_t len, const char *label, uakd_netdesc **out);
/* Reads a description file (at most UAKD_NETDESC_MAX_TEXT bytes) and parses it. */
uakd_status uakd_netdesc_load(const char *path, uakd_netdesc **out);
void uakd_netdesc_free(uakd_netdesc *d);

/* Recomputes shapes and FLOPs for another input size (parameters do not change). */
uakd_status uakd_netdesc_set_input_size(uakd_netdesc *d, int width, int height);

/* Index of the [output] layer with that name, or -1. */
int uakd_netdesc_find_output(const uakd_netdesc *d, const char *name);

/* The state_dict prefix P of layer i: its name, or "layers.<i>" when it has none. A conv layer's
 * tensors are then P.conv.weight (filters, C_in / groups, k, k), P.conv.bias (filters) when it
 * has a bias, and P.bn.{weight, bias, running_mean, running_var} with batch norm or
 * P.gn.{weight, bias} with group norm (PyTorch: a module with submodules conv and bn/gn). */
void uakd_netdesc_layer_prefix(const uakd_netdesc *d, int i, char *buf, size_t cap);

/* A per-layer table (index, type, output shape C x H x W, parameters, MFLOPs) with totals at the
 * end, as a new string (free with free()). */
uakd_status uakd_netdesc_summary(const uakd_netdesc *d, char **text);

/* The description with every key spelled out in a fixed order and no comments (a new string).
 * Parsing it gives the same network; equal networks give equal text. */
uakd_status uakd_netdesc_canonical(const uakd_netdesc *d, char **text);
/* FNV-1a 64-bit hash of the canonical text without the [net] width and height: identifies an
 * architecture (whose weights fit any input size) in weights files and checkpoints. */
uakd_status uakd_netdesc_hash(const uakd_netdesc *d, uint64_t *hash);

/* Records the architecture in a weights file or checkpoint being written: metadata "arch" (the
 * canonical description), "arch_hash" (16 hex digits), "input_size" ("WxHxC"), "input_mean"
 * and "input_std" (comma-separated). */
uakd_status uakd_netdesc_put_metadata(const uakd_netdesc *d, uakd_safetensors_writer *w);
/* Checks that a file's "arch_hash" is this network's; a file without one, or written for another
 * architecture, is refused with a message giving both hashes. */
uakd_status uakd_netdesc_check_metadata(const uakd_netdesc *d, const uakd_safetensors *st);

const char *uakd_netdesc_type_name(uakd_netdesc_type t);
const char *uakd_netdesc_act_name(uakd_netdesc_act a);

#endif
