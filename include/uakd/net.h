/* A network as a list of layers, each reading earlier layers' outputs by id (so residual skips,
 * FPN top-down paths, concatenations and several outputs are plain references).
 *
 * Building. uakd_net_new, then builder calls in topological order, then uakd_net_build. Every
 * builder call returns the new layer's id (>= 0). Errors are sticky: a failing call records its
 * message and returns -1, later calls given -1 as input return -1 too, and uakd_net_build returns
 * the first error. So a 100-layer builder checks one status at the end:
 *
 *     int x = uakd_net_input(net, "image", 3, 128, 128, 0);
 *     x = uakd_net_conv(net, "stem.conv", x, 16, 3, 1, 1, 1, 0);
 *     x = uakd_net_batchnorm(net, "stem.bn", x);
 *     x = uakd_net_act(net, NULL, x, UAKD_ACT_LEAKY, 0.1f);
 *     UAKD_TRY(uakd_net_build(net, 1));
 *
 * Parameters are named like PyTorch state_dict keys: a layer named P owns P.weight, P.bias
 * (conv: weight (O, I/groups, K, K), bias (O) when asked; batch/group norm: weight, bias (C), and
 * batch norm's running_mean, running_var (C) buffers); a scale layer named P owns the scalar P;
 * a fuse layer named P owns the vector P (one weight per input).
 *
 * Memory (sizes from a table computed at build): one allocation for parameters (and BN buffers),
 * one for their gradients (same layout), one activation arena holding every layer's output, its
 * gradient, what the forward saves for the backward (BN/GN statistics, max-pool argmax) and two
 * scratch buffers (inference builds: no gradients, outputs share buffers by lifetime). The optimizer (uakd/optim.h) owns one more allocation for its state.
 *
 * Running. Write the inputs into uakd_net_out(net, input_id), call uakd_net_forward(net, n,
 * training) with n <= max_batch images, read any layer's output with uakd_net_out (inference
 * builds: only inputs, final and kept layers, see uakd_net_keep). For training:
 * write dLoss/dOutput into uakd_net_grad(net, id) of one or more layers (any layers, e.g. head
 * outputs and feature taps) and call uakd_net_backward with those ids.
 *
 * Gradient rule (the only place it is written): parameter gradients ACCUMULATE (+=) across
 * backward calls until uakd_net_zero_grad; activation gradients are ASSIGNED by the first
 * consumer (in reverse order) that back-propagates into them and ACCUMULATED by every further one
 * (skips, FPN branches, a seeded layer that other layers also read). Kernels always assign;
 * the graph routes a second contribution through a scratch buffer and adds it.
 * Layers that receive no gradient are skipped. Inputs get a gradient only when created with
 * requires_grad (e.g. sampling points); an input that received none has a zero gradient. */
#ifndef UAKD_NET_H
#define UAKD_NET_H

#include <stdint.h>

#include "uakd/layers.h"
#include "uakd/rng.h"
#include "uakd/status.h"

typedef struct uakd_net uakd_net;

typedef enum uakd_layer_kind {
    UAKD_LAYER_INPUT = 0,
    UAKD_LAYER_CONV,
    UAKD_LAYER_BATCHNORM,
    UAKD_LAYER_GROUPNORM,
    UAKD_LAYER_ACT,
    UAKD_LAYER_MAXPOOL,
    UAKD_LAYER_UPSAMPLE2,
    UAKD_LAYER_ADD,
    UAKD_LAYER_CONCAT,
    UAKD_LAYER_GAP,
    UAKD_LAYER_CMUL,
    UAKD_LAYER_SAMPLE,
    UAKD_LAYER_SCALE,
    UAKD_LAYER_FUSE,
} uakd_layer_kind;

/* Parameter flags. */
enum {
    UAKD_PARAM_NO_DECAY = 1, /* norm weights/biases, conv biases, scales: excluded from weight decay */
    UAKD_PARAM_BUFFER = 2,   /* not trained (BN running statistics); gradient stays zero */
};

typedef struct uakd_param {
    const char *name; /* state_dict-style, e.g. "backbone.stage3.unit2.bn.running_var" */
    float *data;      /* into the parameter allocation (valid after uakd_net_build) */
    float *grad;      /* into the gradient allocation (NULL for an inference-only build) */
    int64_t count;
    int ndim;
    int shape[4];
    unsigned flags;
    int64_t offset; /* position in the parameter allocation (floats) */
} uakd_param;

typedef struct uakd_layer_info {
    const char *name; /* "" for unnamed layers */
    uakd_layer_kind kind;
    const char *kind_name; /* "conv", "batchnorm", ... */
    int c, h, w;           /* output shape per image */
    int n_inputs;
    const int *inputs;
    int64_t params; /* trainable parameter count */
    double flops;   /* forward FLOPs per image (2 per multiply-add) */
} uakd_layer_info;

/* ---- building ---- */
uakd_status uakd_net_new(int max_batch, uakd_net **out);
void uakd_net_free(uakd_net *net);

/* An input of shape (c, h, w) per image. requires_grad: backward computes its gradient. */
int uakd_net_input(uakd_net *net, const char *name, int c, int h, int w, int requires_grad);
/* Square k x k convolution, stride, zero padding, groups (groups == c_in: depthwise); bias 0/1.
 * Default init: PyTorch's (Kaiming-uniform a = sqrt(5): weight and bias U(-1/sqrt(fan_in), +)). */
int uakd_net_conv(uakd_net *net, const char *name, int in, int c_out, int k, int stride, int pad, int groups,
                  int bias);
/* BatchNorm2d(eps 1e-5, momentum 0.1); init weight 1, bias 0, running mean 0, var 1. */
int uakd_net_batchnorm(uakd_net *net, const char *name, int in);
/* GroupNorm(groups, C, eps 1e-5, affine); init weight 1, bias 0. */
int uakd_net_groupnorm(uakd_net *net, const char *name, int in, int groups);
/* Activation; slope only for UAKD_ACT_LEAKY (0.1 in the DarkNet nets). */
int uakd_net_act(uakd_net *net, const char *name, int in, uakd_act kind, float slope);
int uakd_net_maxpool(uakd_net *net, const char *name, int in, int k, int stride, int pad);
int uakd_net_upsample2(uakd_net *net, const char *name, int in);
/* a + b, same shapes. */
int uakd_net_add(uakd_net *net, const char *name, int a, int b);
/* Channel concatenation of n layers with the same H, W (in the given order). */
int uakd_net_concat(uakd_net *net, const char *name, int n, const int *ids);
/* Global average pool: (C, H, W) -> (C, 1, 1). */
int uakd_net_gap(uakd_net *net, const char *name, int in);
/* x (C, H, W) times s (C, 1, 1) per channel (squeeze-and-excitation). */
int uakd_net_cmul(uakd_net *net, const char *name, int x, int s);
/* Bilinear samples of feat (C, H, W) at k points read from layer pts (2k floats per image:
 * (x, y) pairs in feature-grid coordinates, see uakd_sample_forward): output (C, k, 1). */
int uakd_net_sample(uakd_net *net, const char *name, int feat, int pts, int k);
/* y = s x with one learnable scalar parameter named `name` (init 1). */
int uakd_net_scale(uakd_net *net, const char *name, int in);
/* Fast normalised fusion of n (2..UAKD_FUSE_MAX) same-shaped layers (EfficientDet BiFPN):
 * y = sum_i relu(w_i) x_i / (1e-4 + sum_j relu(w_j)), w a learnable vector named `name`
 * of n values (init 1), see uakd_fuse_forward. */
int uakd_net_fuse(uakd_net *net, const char *name, int n, const int *ids);
/* A new layer named `name` applying layer src's operation (conv, batch norm, group norm or
 * scale, with the same settings) WITH THE SAME PARAMETERS to another input: parameter sharing,
 * e.g. one detection head run on every FPN level. The input must have src's input channels.
 * The new layer owns no parameter entries (the table, the initialisation and the trainable
 * count see src's only; its summary line shows 0 parameters); its backward adds its parameter
 * gradients to src's (the accumulation rule above). Shared batch norm updates the running
 * statistics once per use. Returns the new id or -1. */
int uakd_net_shared(uakd_net *net, const char *name, int in, int src);
/* Changes a batch/group norm's eps (default 1e-5) and, for batch norm, the running-average
 * momentum (default 0.1; PyTorch convention: new = (1 - m) old + m batch). Returns norm or -1. */
int uakd_net_set_norm(uakd_net *net, int norm, float eps, float momentum);
/* Initialise this conv's weight from N(0, std^2) and its bias with the constant bias_value
 * (WDRNet head: std 0.01, classification bias -ln(99)). Takes effect in uakd_net_init. */
int uakd_net_set_init_normal(uakd_net *net, int conv, float std, float bias_value);

/* Inference builds share output buffers between layers whose lifetimes do not overlap: after a
 * forward only inputs, layers nothing reads and layers marked here hold their values (mark
 * feature taps read by a caller). Training builds keep every output. Returns id or -1. */
int uakd_net_keep(uakd_net *net, int id);

/* Lays out memory. training = 0 builds inference-only (no gradients, no backward, shared
 * activation buffers, see uakd_net_keep).
 * Returns the first builder error, if any. Parameters are zero until uakd_net_init or a load. */
uakd_status uakd_net_build(uakd_net *net, int training);
/* Initialises every parameter (see the builders) drawing from rng in parameter-table order. */
uakd_status uakd_net_init(uakd_net *net, uakd_rng *rng);

/* ---- running ---- */
/* n: images in this batch (1..max_batch). training: batch norm uses and updates batch stats. */
uakd_status uakd_net_forward(uakd_net *net, int n, int training);
/* Back-propagates the gradients written into uakd_net_grad(net, ids[i]) through the graph of the
 * last forward (which must have been a training forward). */
uakd_status uakd_net_backward(uakd_net *net, int n_ids, const int *ids);
void uakd_net_zero_grad(uakd_net *net);

/* Output / gradient buffer of a layer: (max_batch, c, h, w) floats, the first n images used. */
float *uakd_net_out(const uakd_net *net, int id);
float *uakd_net_grad(const uakd_net *net, int id);
/* Per-image shape; returns c*h*w (0 for a bad id). */
int64_t uakd_net_shape(const uakd_net *net, int id, int *c, int *h, int *w);
int uakd_net_num_layers(const uakd_net *net);
int uakd_net_max_batch(const uakd_net *net);
/* Id of the layer with this name, -1 if none. */
int uakd_net_find(const uakd_net *net, const char *name);
uakd_layer_info uakd_net_layer(const uakd_net *net, int id);

/* ---- parameters ---- */
int uakd_net_num_params(const uakd_net *net); /* number of parameter tensors */
const uakd_param *uakd_net_param(const uakd_net *net, int i);
const uakd_param *uakd_net_param_find(const uakd_net *net, const char *name);
/* The whole parameter / gradient allocation (count floats, tensors at their offsets). */
float *uakd_net_params(const uakd_net *net, int64_t *count);
float *uakd_net_grads(const uakd_net *net, int64_t *count);
/* Number of trainable parameter values (excluding buffers). */
int64_t uakd_net_trainable_count(const uakd_net *net);

/* A one-line-per-layer summary (id, name, kind, inputs, output shape, params, MFLOPs per image)
 * and a total line, in a malloc'ed string the caller frees with free(). */
uakd_status uakd_net_summary(const uakd_net *net, char **out);

#endif
