/* The network's private structure, shared by src/net.c (building, layout, parameters) and
 * src/net_run.c (forward and backward). */
#ifndef UAKD_NET_INTERNAL_H
#define UAKD_NET_INTERNAL_H

#include "uakd/net.h"

typedef struct net_layer {
    uakd_layer_kind kind;
    char *name;
    int n_in;
    int *in;
    int c, h, w; /* output per image */
    /* kind-specific settings */
    int k, stride, pad, groups, bias, npts;
    uakd_act act;
    float slope;
    float eps, momentum; /* batch/group norm */
    int init_normal;
    float init_std, init_bias;
    int requires_grad; /* inputs: caller wants the gradient; others: computed at build */
    int keep;          /* inference builds: output stays readable after forward */
    /* parameters: table entries [p0, p0 + np); shared: they belong to an earlier layer */
    int p0, np;
    int shared;
    /* arena offsets in floats; SIZE_MAX when absent */
    size_t out, grad, save0, save1;
} net_layer;

struct uakd_net {
    int max_batch;
    int n_layers, cap_layers;
    net_layer *layers;
    int n_params, cap_params;
    uakd_param *params;
    char **param_names;
    uakd_status error; /* sticky builder error and its message */
    char error_msg[600];
    int built, training_build;
    int64_t n_floats; /* parameter allocation size */
    float *param_mem, *grad_mem;
    float *arena;
    size_t arena_floats, scratch[2];
    int last_n, last_training; /* the last forward */
    unsigned char *written;    /* per layer, during backward: gradient buffer holds a value */
};

#endif
