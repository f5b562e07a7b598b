/* Running a built network: the forward pass layer by layer in id order, and the backward pass in
 * reverse order applying the gradient rule of uakd/net.h (parameter gradients +=, activation
 * gradients assigned by the first contribution, later contributions summed via scratch). */
#include <math.h>
#include <string.h>

#include "layers_omp.h"
#include "net_internal.h"
#include "uakd/conv.h"

static float *out_of(const uakd_net *net, int id) { return net->arena + net->layers[id].out; }
static float *grad_of(const uakd_net *net, int id) { return net->arena + net->layers[id].grad; }
static float *pdata(const uakd_net *net, const net_layer *l, int k) { return net->params[l->p0 + k].data; }
static float *pgrad(const uakd_net *net, const net_layer *l, int k) { return net->params[l->p0 + k].grad; }
static size_t per_image(const net_layer *l) { return (size_t)l->c * l->h * l->w; }

static uakd_conv2d_desc conv_desc(const uakd_net *net, const net_layer *l, int n) {
    const net_layer *x = &net->layers[l->in[0]];
    uakd_conv2d_desc d = {n, x->c, x->h, x->w, l->c, l->k, l->k, l->stride, l->stride, l->pad, l->pad, l->groups};
    return d;
}

static void add_into(float *dst, const float *src, size_t count) {
    const int64_t m = (int64_t)count;
    UAKD_PARALLEL_FOR(m)
    for (int64_t i = 0; i < m; i++) dst[i] += src[i];
}

static uakd_status forward_layer(uakd_net *net, net_layer *l, int n, int training) {
    const size_t cnt = (size_t)n * per_image(l);
    float *y = net->arena + l->out;
    const float *x = l->n_in ? out_of(net, l->in[0]) : NULL;
    const net_layer *xl = l->n_in ? &net->layers[l->in[0]] : NULL;
    switch (l->kind) {
    case UAKD_LAYER_INPUT: break;
    case UAKD_LAYER_CONV: {
        uakd_conv2d_desc d = conv_desc(net, l, n);
        return uakd_conv2d_forward(&d, x, pdata(net, l, 0), l->bias ? pdata(net, l, 1) : NULL, y);
    }
    case UAKD_LAYER_BATCHNORM: {
        float *mean = net->arena + l->save0, *invstd = net->arena + l->save1;
        if (training) {
            uakd_bn_forward_train(n, l->c, l->h * l->w, x, pdata(net, l, 0), pdata(net, l, 1), l->eps, l->momentum,
                                  pdata(net, l, 2), pdata(net, l, 3), y, mean, invstd);
        } else {
            uakd_bn_forward_infer(n, l->c, l->h * l->w, x, pdata(net, l, 0), pdata(net, l, 1), pdata(net, l, 2),
                                  pdata(net, l, 3), l->eps, y);
            /* the constants a backward through inference-mode BN uses */
            for (int c = 0; c < l->c; c++) {
                mean[c] = pdata(net, l, 2)[c];
                invstd[c] = (float)(1.0 / sqrt((double)pdata(net, l, 3)[c] + l->eps));
            }
        }
        break;
    }
    case UAKD_LAYER_GROUPNORM:
        uakd_gn_forward(n, l->c, l->h * l->w, l->groups, x, pdata(net, l, 0), pdata(net, l, 1), l->eps, y,
                        net->arena + l->save0, net->arena + l->save1);
        break;
    case UAKD_LAYER_ACT: uakd_act_forward(l->act, l->slope, (int64_t)cnt, x, y); break;
    case UAKD_LAYER_MAXPOOL: {
        uakd_pool_desc d = {n, xl->c, xl->h, xl->w, l->k, l->stride, l->pad};
        uakd_maxpool_forward(&d, x, y, l->save0 == SIZE_MAX ? NULL : (int32_t *)(void *)(net->arena + l->save0));
        break;
    }
    case UAKD_LAYER_UPSAMPLE2: uakd_upsample2_forward(n, xl->c, xl->h, xl->w, x, y); break;
    case UAKD_LAYER_ADD: {
        const float *b = out_of(net, l->in[1]);
        const int64_t m = (int64_t)cnt;
        UAKD_PARALLEL_FOR(m)
        for (int64_t i = 0; i < m; i++) y[i] = x[i] + b[i];
        break;
    }
    case UAKD_LAYER_CONCAT: {
        size_t at = 0;
        for (int j = 0; j < l->n_in; j++) {
            const size_t sz = per_image(&net->layers[l->in[j]]);
            const float *src = out_of(net, l->in[j]);
            for (int i = 0; i < n; i++) memcpy(y + i * per_image(l) + at, src + i * sz, sizeof(float) * sz);
            at += sz;
        }
        break;
    }
    case UAKD_LAYER_GAP: uakd_gap_forward(n, xl->c, xl->h * xl->w, x, y); break;
    case UAKD_LAYER_CMUL: uakd_cmul_forward(n, l->c, l->h * l->w, x, out_of(net, l->in[1]), y); break;
    case UAKD_LAYER_SAMPLE:
        uakd_sample_forward(n, xl->c, xl->h, xl->w, l->npts, x, out_of(net, l->in[1]), y);
        break;
    case UAKD_LAYER_SCALE: {
        const float s = pdata(net, l, 0)[0];
        const int64_t m = (int64_t)cnt;
        UAKD_PARALLEL_FOR(m)
        for (int64_t i = 0; i < m; i++) y[i] = s * x[i];
        break;
    }
    case UAKD_LAYER_FUSE: {
        const float *xs[UAKD_FUSE_MAX];
        for (int j = 0; j < l->n_in; j++) xs[j] = out_of(net, l->in[j]);
        uakd_fuse_forward(l->n_in, (int64_t)cnt, xs, pdata(net, l, 0), l->eps, y);
        break;
    }
    }
    return UAKD_OK;
}

uakd_status uakd_net_forward(uakd_net *net, int n, int training) {
    if (!net->built) return uakd_fail(UAKD_EINVAL, "uakd_net_forward: call uakd_net_build first");
    if (n < 1 || n > net->max_batch)
        return uakd_fail(UAKD_EINVAL, "uakd_net_forward: batch %d outside 1..%d (the network's max_batch)", n,
                         net->max_batch);
    if (training && !net->training_build)
        return uakd_fail(UAKD_EINVAL, "uakd_net_forward: training forward on an inference-only build");
    net->last_n = 0;
    for (int i = 0; i < net->n_layers; i++) {
        uakd_status st = forward_layer(net, &net->layers[i], n, training);
        if (st) return uakd_fail_context(st, "layer %d '%s': ", i, net->layers[i].name);
    }
    net->last_n = n, net->last_training = training != 0;
    return UAKD_OK;
}

/* Where the gradient for input j goes: its own buffer on the first contribution, else scratch. */
static float *target(uakd_net *net, int j, int slot) {
    return net->written[j] ? net->arena + net->scratch[slot] : grad_of(net, j);
}
/* Completes a contribution written to target(net, j, slot). */
static void commit(uakd_net *net, int j, int slot, int n) {
    if (net->written[j]) add_into(grad_of(net, j), net->arena + net->scratch[slot], n * per_image(&net->layers[j]));
    net->written[j] = 1;
}
static int wants(const uakd_net *net, const net_layer *l, int k) { return net->layers[l->in[k]].requires_grad; }

static uakd_status backward_layer(uakd_net *net, net_layer *l, int n) {
    const size_t cnt = (size_t)n * per_image(l);
    const float *dy = net->arena + l->grad, *y = net->arena + l->out;
    const int in0 = l->n_in ? l->in[0] : -1;
    const float *x = l->n_in ? out_of(net, in0) : NULL;
    const net_layer *xl = l->n_in ? &net->layers[in0] : NULL;
    switch (l->kind) {
    case UAKD_LAYER_INPUT: break;
    case UAKD_LAYER_CONV: {
        uakd_conv2d_desc d = conv_desc(net, l, n);
        UAKD_TRY(uakd_conv2d_backward_weights(&d, x, dy, pgrad(net, l, 0), l->bias ? pgrad(net, l, 1) : NULL));
        if (wants(net, l, 0)) {
            UAKD_TRY(uakd_conv2d_backward_data(&d, dy, pdata(net, l, 0), target(net, in0, 0)));
            commit(net, in0, 0, n);
        }
        break;
    }
    case UAKD_LAYER_BATCHNORM:
        uakd_bn_backward(n, l->c, l->h * l->w, net->last_training, x, pdata(net, l, 0), net->arena + l->save0,
                         net->arena + l->save1, dy, wants(net, l, 0) ? target(net, in0, 0) : net->arena + net->scratch[0],
                         pgrad(net, l, 0), pgrad(net, l, 1));
        if (wants(net, l, 0)) commit(net, in0, 0, n);
        break;
    case UAKD_LAYER_GROUPNORM:
        uakd_gn_backward(n, l->c, l->h * l->w, l->groups, x, pdata(net, l, 0), net->arena + l->save0,
                         net->arena + l->save1, dy, wants(net, l, 0) ? target(net, in0, 0) : net->arena + net->scratch[0],
                         pgrad(net, l, 0), pgrad(net, l, 1));
        if (wants(net, l, 0)) commit(net, in0, 0, n);
        break;
    case UAKD_LAYER_ACT:
        uakd_act_backward(l->act, l->slope, (int64_t)cnt, x, y, dy, target(net, in0, 0));
        commit(net, in0, 0, n);
        break;
    case UAKD_LAYER_MAXPOOL: {
        uakd_pool_desc d = {n, xl->c, xl->h, xl->w, l->k, l->stride, l->pad};
        uakd_maxpool_backward(&d, (const int32_t *)(const void *)(net->arena + l->save0), dy, target(net, in0, 0));
        commit(net, in0, 0, n);
        break;
    }
    case UAKD_LAYER_UPSAMPLE2:
        uakd_upsample2_backward(n, xl->c, xl->h, xl->w, dy, target(net, in0, 0));
        commit(net, in0, 0, n);
        break;
    case UAKD_LAYER_ADD:
        for (int k = 0; k < 2; k++) {
            const int j = l->in[k];
            if (!wants(net, l, k)) continue;
            if (net->written[j]) add_into(grad_of(net, j), dy, cnt);
            else memcpy(grad_of(net, j), dy, sizeof(float) * cnt);
            net->written[j] = 1;
        }
        break;
    case UAKD_LAYER_CONCAT: {
        size_t at = 0;
        for (int k = 0; k < l->n_in; k++) {
            const int j = l->in[k];
            const size_t sz = per_image(&net->layers[j]);
            if (wants(net, l, k)) {
                float *t = target(net, j, 0);
                for (int i = 0; i < n; i++) memcpy(t + i * sz, dy + i * per_image(l) + at, sizeof(float) * sz);
                commit(net, j, 0, n);
            }
            at += sz;
        }
        break;
    }
    case UAKD_LAYER_GAP:
        uakd_gap_backward(n, xl->c, xl->h * xl->w, dy, target(net, in0, 0));
        commit(net, in0, 0, n);
        break;
    case UAKD_LAYER_CMUL: {
        const int s = l->in[1];
        uakd_cmul_backward(n, l->c, l->h * l->w, x, out_of(net, s), dy, target(net, in0, 0), target(net, s, 1));
        if (wants(net, l, 0)) commit(net, in0, 0, n);
        if (wants(net, l, 1)) commit(net, s, 1, n);
        break;
    }
    case UAKD_LAYER_SAMPLE: {
        const int p = l->in[1];
        uakd_sample_backward(n, xl->c, xl->h, xl->w, l->npts, x, out_of(net, p), dy,
                             wants(net, l, 0) ? target(net, in0, 0) : NULL, wants(net, l, 1) ? target(net, p, 1) : NULL);
        if (wants(net, l, 0)) commit(net, in0, 0, n);
        if (wants(net, l, 1)) commit(net, p, 1, n);
        break;
    }
    case UAKD_LAYER_SCALE: {
        const float s = pdata(net, l, 0)[0];
        double acc = 0;
        for (size_t i = 0; i < cnt; i++) acc += (double)dy[i] * x[i];
        pgrad(net, l, 0)[0] += (float)acc;
        if (wants(net, l, 0)) {
            float *t = target(net, in0, 0);
            for (size_t i = 0; i < cnt; i++) t[i] = s * dy[i];
            commit(net, in0, 0, n);
        }
        break;
    }
    case UAKD_LAYER_FUSE: {
        const float *xs[UAKD_FUSE_MAX];
        for (int k = 0; k < l->n_in; k++) xs[k] = out_of(net, l->in[k]);
        uakd_fuse_backward_weights(l->n_in, (int64_t)cnt, xs, y, pdata(net, l, 0), l->eps, dy, pgrad(net, l, 0));
        for (int k = 0; k < l->n_in; k++) {
            if (!wants(net, l, k)) continue;
            uakd_fuse_backward_data(l->n_in, k, (int64_t)cnt, pdata(net, l, 0), l->eps, dy, target(net, l->in[k], 0));
            commit(net, l->in[k], 0, n);
        }
        break;
    }
    }
    return UAKD_OK;
}

uakd_status uakd_net_backward(uakd_net *net, int n_ids, const int *ids) {
    if (!net->built || !net->training_build)
        return uakd_fail(UAKD_EINVAL, "uakd_net_backward: network not built for training (uakd_net_build(net, 1))");
    if (net->last_n < 1) return uakd_fail(UAKD_EINVAL, "uakd_net_backward: run uakd_net_forward first");
    const int n = net->last_n;
    memset(net->written, 0, (size_t)net->n_layers);
    for (int k = 0; k < n_ids; k++) {
        if (ids[k] < 0 || ids[k] >= net->n_layers)
            return uakd_fail(UAKD_EINVAL, "uakd_net_backward: output id %d is not a layer", ids[k]);
        net->written[ids[k]] = 1;
    }
    for (int i = net->n_layers - 1; i >= 0; i--) {
        net_layer *l = &net->layers[i];
        if (!net->written[i] || !l->requires_grad || l->kind == UAKD_LAYER_INPUT) continue;
        uakd_status st = backward_layer(net, l, n);
        if (st) return uakd_fail_context(st, "backward of layer %d '%s': ", i, l->name);
    }
    for (int i = 0; i < net->n_layers; i++) {
        const net_layer *l = &net->layers[i];
        if (l->kind == UAKD_LAYER_INPUT && l->requires_grad && !net->written[i])
            memset(grad_of(net, i), 0, sizeof(float) * n * per_image(l));
    }
    return UAKD_OK;
}

void uakd_net_zero_grad(uakd_net *net) {
    if (net->grad_mem) memset(net->grad_mem, 0, sizeof(float) * (size_t)net->n_floats);
}
