/* Network building: the layer list, shape inference and checks, the parameter table with
 * state_dict-style names, the memory layout (parameters, gradients, activation arena), parameter
 * initialisation and the per-layer summary. Running is in net_run.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "uakd/conv.h"

static const char *kind_names[] = {"input", "conv",   "batchnorm", "groupnorm", "act",    "maxpool", "upsample2",
                                   "add",   "concat", "gap",       "cmul",      "sample", "scale",
                                   "fuse"};

uakd_status uakd_net_new(int max_batch, uakd_net **out) {
    *out = NULL;
    if (max_batch < 1) return uakd_fail(UAKD_EINVAL, "uakd_net_new: max_batch %d must be >= 1", max_batch);
    uakd_net *net = calloc(1, sizeof *net);
    if (!net) return uakd_fail(UAKD_ENOMEM, "uakd_net_new: out of memory");
    net->max_batch = max_batch;
    *out = net;
    return UAKD_OK;
}

void uakd_net_free(uakd_net *net) {
    if (!net) return;
    for (int i = 0; i < net->n_layers; i++) free(net->layers[i].name), free(net->layers[i].in);
    for (int i = 0; i < net->n_params; i++) free(net->param_names[i]);
    free(net->layers), free(net->params), free(net->param_names);
    free(net->param_mem), free(net->grad_mem), free(net->arena), free(net->written);
    free(net);
}

/* Records the first builder error; returns -1 for the builder to return. */
static int fail(uakd_net *net, uakd_status st, const char *fmt, ...) {
    if (net->error == UAKD_OK) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(net->error_msg, sizeof net->error_msg, "network builder: %s", msg);
        net->error = uakd_fail(st, "%s", net->error_msg);
    }
    return -1;
}

static const char *nm(const char *name) { return name ? name : "(unnamed)"; }

/* Appends a layer reading `ins`; checks the input ids. Returns NULL after recording an error. */
static net_layer *add_layer(uakd_net *net, uakd_layer_kind kind, const char *name, int n_in, const int *ins) {
    if (net->error != UAKD_OK) return NULL;
    if (net->built) return fail(net, UAKD_EINVAL, "layer '%s' added after uakd_net_build", nm(name)), NULL;
    for (int i = 0; i < n_in; i++)
        if (ins[i] < 0 || ins[i] >= net->n_layers)
            return fail(net, UAKD_EINVAL, "layer '%s' (%s): input id %d does not name an earlier layer", nm(name),
                        kind_names[kind], ins[i]),
                   NULL;
    if (name && uakd_net_find(net, name) >= 0)
        return fail(net, UAKD_EINVAL, "layer name '%s' used twice", name), NULL;
    if (net->n_layers == net->cap_layers) {
        int cap = net->cap_layers ? 2 * net->cap_layers : 32;
        net_layer *l = realloc(net->layers, sizeof *l * cap);
        if (!l) return fail(net, UAKD_ENOMEM, "out of memory"), NULL;
        net->layers = l, net->cap_layers = cap;
    }
    net_layer *l = &net->layers[net->n_layers];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->name = strdup(name ? name : "");
    l->in = malloc(sizeof(int) * (n_in ? n_in : 1));
    if (!l->name || !l->in) {
        free(l->name), free(l->in);
        return fail(net, UAKD_ENOMEM, "out of memory"), NULL;
    }
    if (n_in) memcpy(l->in, ins, sizeof(int) * n_in);
    l->n_in = n_in;
    l->p0 = net->n_params;
    net->n_layers++;
    return l;
}

static int add_param(uakd_net *net, net_layer *l, const char *suffix, int ndim, const int *shape, unsigned flags) {
    if (net->n_params == net->cap_params) {
        int cap = net->cap_params ? 2 * net->cap_params : 64;
        uakd_param *p = realloc(net->params, sizeof *p * cap);
        if (p) net->params = p;
        char **q = realloc(net->param_names, sizeof *q * cap);
        if (q) net->param_names = q;
        if (!p || !q) return fail(net, UAKD_ENOMEM, "out of memory");
        net->cap_params = cap;
    }
    char buf[512];
    if (suffix) snprintf(buf, sizeof buf, "%s.%s", l->name, suffix);
    else snprintf(buf, sizeof buf, "%s", l->name);
    if (uakd_net_param_find(net, buf)) return fail(net, UAKD_EINVAL, "parameter name '%s' used twice", buf);
    char *s = strdup(buf);
    if (!s) return fail(net, UAKD_ENOMEM, "out of memory");
    uakd_param *p = &net->params[net->n_params];
    memset(p, 0, sizeof *p);
    net->param_names[net->n_params++] = s;
    p->name = s;
    p->ndim = ndim;
    p->count = 1;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i], p->count *= shape[i];
    p->flags = flags;
    l->np++;
    return 0;
}

static int id_of(uakd_net *net, net_layer *l) { return (int)(l - net->layers); }

static int need_name(uakd_net *net, const char *name, const char *what) {
    if (name && name[0]) return 0;
    return fail(net, UAKD_EINVAL, "%s layers own parameters and need a name (the state_dict prefix)", what);
}

int uakd_net_input(uakd_net *net, const char *name, int c, int h, int w, int requires_grad) {
    if (c < 1 || h < 1 || w < 1) return fail(net, UAKD_EINVAL, "input '%s': shape %dx%dx%d must be positive", nm(name), c, h, w);
    net_layer *l = add_layer(net, UAKD_LAYER_INPUT, name, 0, NULL);
    if (!l) return -1;
    l->c = c, l->h = h, l->w = w, l->requires_grad = requires_grad != 0;
    return id_of(net, l);
}

int uakd_net_conv(uakd_net *net, const char *name, int in, int c_out, int k, int stride, int pad, int groups,
                  int bias) {
    if (net->error || need_name(net, name, "conv")) return -1;
    net_layer *l = add_layer(net, UAKD_LAYER_CONV, name, 1, &in);
    if (!l) return -1;
    const net_layer *x = &net->layers[in];
    uakd_conv2d_desc d = {1, x->c, x->h, x->w, c_out, k, k, stride, stride, pad, pad, groups};
    if (uakd_conv2d_check(&d) != UAKD_OK)
        return fail(net, UAKD_EINVAL, "conv '%s' on input %dx%dx%d: %s", name, x->c, x->h, x->w, uakd_last_error());
    l->c = c_out, l->h = uakd_conv2d_out_h(&d), l->w = uakd_conv2d_out_w(&d);
    l->k = k, l->stride = stride, l->pad = pad, l->groups = groups, l->bias = bias != 0;
    int ws[4] = {c_out, x->c / groups, k, k};
    add_param(net, l, "weight", 4, ws, 0);
    if (bias) add_param(net, l, "bias", 1, &c_out, UAKD_PARAM_NO_DECAY);
    return net->error ? -1 : id_of(net, l);
}

int uakd_net_set_init_normal(uakd_net *net, int conv, float std, float bias_value) {
    if (net->error) return -1;
    if (conv < 0 || conv >= net->n_layers || net->layers[conv].kind != UAKD_LAYER_CONV)
        return fail(net, UAKD_EINVAL, "set_init_normal: layer %d is not a conv", conv);
    if (!(std >= 0) || !isfinite(bias_value))
        return fail(net, UAKD_EINVAL, "set_init_normal: std %g / bias %g invalid", std, bias_value);
    net_layer *l = &net->layers[conv];
    l->init_normal = 1, l->init_std = std, l->init_bias = bias_value;
    return conv;
}

static int norm_layer(uakd_net *net, uakd_layer_kind kind, const char *name, int in, int groups) {
    if (net->error || need_name(net, name, kind_names[kind])) return -1;
    net_layer *l = add_layer(net, kind, name, 1, &in);
    if (!l) return -1;
    const net_layer *x = &net->layers[in];
    l->c = x->c, l->h = x->h, l->w = x->w, l->groups = groups;
    l->eps = 1e-5f, l->momentum = 0.1f;
    if (kind == UAKD_LAYER_GROUPNORM && (groups < 1 || x->c % groups))
        return fail(net, UAKD_EINVAL, "groupnorm '%s': %d groups do not divide %d channels", name, groups, x->c);
    add_param(net, l, "weight", 1, &l->c, UAKD_PARAM_NO_DECAY);
    add_param(net, l, "bias", 1, &l->c, UAKD_PARAM_NO_DECAY);
    if (kind == UAKD_LAYER_BATCHNORM) {
        add_param(net, l, "running_mean", 1, &l->c, UAKD_PARAM_NO_DECAY | UAKD_PARAM_BUFFER);
        add_param(net, l, "running_var", 1, &l->c, UAKD_PARAM_NO_DECAY | UAKD_PARAM_BUFFER);
    }
    return net->error ? -1 : id_of(net, l);
}

int uakd_net_shared(uakd_net *net, const char *name, int in, int src) {
    if (net->error || need_name(net, name, "shared")) return -1;
    if (src < 0 || src >= net->n_layers) return fail(net, UAKD_EINVAL, "shared '%s': source %d is not a layer", name, src);
    const net_layer *s = &net->layers[src];
    if (s->kind != UAKD_LAYER_CONV && s->kind != UAKD_LAYER_BATCHNORM && s->kind != UAKD_LAYER_GROUPNORM &&
        s->kind != UAKD_LAYER_SCALE)
        return fail(net, UAKD_EINVAL, "shared '%s': source '%s' is a %s layer, not conv/batchnorm/groupnorm/scale", name,
                    s->name, kind_names[s->kind]);
    net_layer *l = add_layer(net, s->kind, name, 1, &in);
    if (!l) return -1;
    s = &net->layers[src]; /* add_layer may have moved the layer array */
    const net_layer *sx = &net->layers[s->in[0]];
    const net_layer *x = &net->layers[in];
    if (x->c != sx->c)
        return fail(net, UAKD_EINVAL, "shared '%s': input has %d channels, source '%s' reads %d", name, x->c, s->name, sx->c);
    char *own_name = l->name;
    int *own_in = l->in;
    *l = *s; /* kind, settings, parameter range */
    l->name = own_name, l->in = own_in, l->n_in = 1;
    l->h = x->h, l->w = x->w;
    if (l->kind == UAKD_LAYER_CONV) {
        uakd_conv2d_desc d = {1, x->c, x->h, x->w, l->c, l->k, l->k, l->stride, l->stride, l->pad, l->pad, l->groups};
        if (uakd_conv2d_check(&d) != UAKD_OK)
            return fail(net, UAKD_EINVAL, "shared conv '%s' on input %dx%dx%d: %s", name, x->c, x->h, x->w,
                        uakd_last_error());
        l->h = uakd_conv2d_out_h(&d), l->w = uakd_conv2d_out_w(&d);
    }
    l->shared = 1, l->keep = 0, l->requires_grad = 0;
    return id_of(net, l);
}

int uakd_net_set_norm(uakd_net *net, int norm, float eps, float momentum) {
    if (net->error) return -1;
    if (norm < 0 || norm >= net->n_layers ||
        (net->layers[norm].kind != UAKD_LAYER_BATCHNORM && net->layers[norm].kind != UAKD_LAYER_GROUPNORM))
        return fail(net, UAKD_EINVAL, "set_norm: layer %d is not a batch or group norm", norm);
    if (!(eps > 0 && eps < 1) || !(momentum >= 0 && momentum <= 1))
        return fail(net, UAKD_EINVAL, "set_norm '%s': eps %g must be in (0, 1), momentum %g in [0, 1]",
                    net->layers[norm].name, eps, momentum);
    net->layers[norm].eps = eps, net->layers[norm].momentum = momentum;
    return norm;
}

int uakd_net_batchnorm(uakd_net *net, const char *name, int in) {
    return norm_layer(net, UAKD_LAYER_BATCHNORM, name, in, 1);
}
int uakd_net_groupnorm(uakd_net *net, const char *name, int in, int groups) {
    return norm_layer(net, UAKD_LAYER_GROUPNORM, name, in, groups);
}

/* A parameter-free layer with the shape of its first input. */
static net_layer *same_shape(uakd_net *net, uakd_layer_kind kind, const char *name, int n_in, const int *ins) {
    net_layer *l = add_layer(net, kind, name, n_in, ins);
    if (!l) return NULL;
    const net_layer *x = &net->layers[ins[0]];
    l->c = x->c, l->h = x->h, l->w = x->w;
    return l;
}

int uakd_net_act(uakd_net *net, const char *name, int in, uakd_act kind, float slope) {
    if (kind < UAKD_ACT_RELU || kind > UAKD_ACT_SIGMOID) return fail(net, UAKD_EINVAL, "act '%s': unknown kind %d", nm(name), (int)kind);
    net_layer *l = same_shape(net, UAKD_LAYER_ACT, name, 1, &in);
    if (!l) return -1;
    l->act = kind, l->slope = slope;
    return id_of(net, l);
}

int uakd_net_maxpool(uakd_net *net, const char *name, int in, int k, int stride, int pad) {
    net_layer *l = same_shape(net, UAKD_LAYER_MAXPOOL, name, 1, &in);
    if (!l) return -1;
    uakd_pool_desc d = {1, l->c, l->h, l->w, k, stride, pad};
    if (k < 1 || stride < 1 || pad < 0 || pad > k / 2 || uakd_pool_out_h(&d) < 1 || uakd_pool_out_w(&d) < 1)
        return fail(net, UAKD_EINVAL, "maxpool '%s': window %d stride %d pad %d invalid for %dx%d (pad must be <= k/2)",
                    nm(name), k, stride, pad, l->h, l->w);
    l->k = k, l->stride = stride, l->pad = pad;
    l->h = uakd_pool_out_h(&d), l->w = uakd_pool_out_w(&d);
    return id_of(net, l);
}

int uakd_net_upsample2(uakd_net *net, const char *name, int in) {
    net_layer *l = same_shape(net, UAKD_LAYER_UPSAMPLE2, name, 1, &in);
    if (!l) return -1;
    l->h *= 2, l->w *= 2;
    return id_of(net, l);
}

int uakd_net_add(uakd_net *net, const char *name, int a, int b) {
    int ins[2] = {a, b};
    net_layer *l = same_shape(net, UAKD_LAYER_ADD, name, 2, ins);
    if (!l) return -1;
    const net_layer *y = &net->layers[b];
    if (y->c != l->c || y->h != l->h || y->w != l->w)
        return fail(net, UAKD_EINVAL, "add '%s': shapes %dx%dx%d and %dx%dx%d differ", nm(name), l->c, l->h, l->w, y->c,
                    y->h, y->w);
    return id_of(net, l);
}

int uakd_net_concat(uakd_net *net, const char *name, int n, const int *ids) {
    if (n < 1) return fail(net, UAKD_EINVAL, "concat '%s': needs at least one input", nm(name));
    net_layer *l = same_shape(net, UAKD_LAYER_CONCAT, name, n, ids);
    if (!l) return -1;
    for (int i = 1; i < n; i++) {
        const net_layer *y = &net->layers[ids[i]];
        if (y->h != l->h || y->w != l->w)
            return fail(net, UAKD_EINVAL, "concat '%s': input %d is %dx%d, the first is %dx%d", nm(name), i, y->h, y->w,
                        l->h, l->w);
        l->c += y->c;
    }
    return id_of(net, l);
}

int uakd_net_gap(uakd_net *net, const char *name, int in) {
    net_layer *l = same_shape(net, UAKD_LAYER_GAP, name, 1, &in);
    if (!l) return -1;
    l->h = l->w = 1;
    return id_of(net, l);
}

int uakd_net_cmul(uakd_net *net, const char *name, int x, int s) {
    int ins[2] = {x, s};
    net_layer *l = same_shape(net, UAKD_LAYER_CMUL, name, 2, ins);
    if (!l) return -1;
    const net_layer *y = &net->layers[s];
    if (x == s || y->c != l->c || y->h != 1 || y->w != 1)
        return fail(net, UAKD_EINVAL, "cmul '%s': scale must be a different layer of shape %dx1x1, got %dx%dx%d",
                    nm(name), l->c, y->c, y->h, y->w);
    return id_of(net, l);
}

int uakd_net_sample(uakd_net *net, const char *name, int feat, int pts, int k) {
    int ins[2] = {feat, pts};
    net_layer *l = same_shape(net, UAKD_LAYER_SAMPLE, name, 2, ins);
    if (!l) return -1;
    const net_layer *p = &net->layers[pts];
    if (feat == pts || k < 1 || (int64_t)p->c * p->h * p->w != 2 * (int64_t)k)
        return fail(net, UAKD_EINVAL, "sample '%s': points layer has %dx%dx%d values, expected 2*%d", nm(name), p->c,
                    p->h, p->w, k);
    l->h = k, l->w = 1, l->npts = k;
    return id_of(net, l);
}

int uakd_net_scale(uakd_net *net, const char *name, int in) {
    if (net->error || need_name(net, name, "scale")) return -1;
    net_layer *l = same_shape(net, UAKD_LAYER_SCALE, name, 1, &in);
    if (!l) return -1;
    int one = 1;
    add_param(net, l, NULL, 1, &one, UAKD_PARAM_NO_DECAY);
    return net->error ? -1 : id_of(net, l);
}

int uakd_net_fuse(uakd_net *net, const char *name, int n, const int *ids) {
    if (net->error || need_name(net, name, "fuse")) return -1;
    if (n < 2 || n > UAKD_FUSE_MAX) return fail(net, UAKD_EINVAL, "fuse '%s': %d inputs, need 2..%d", name, n, UAKD_FUSE_MAX);
    net_layer *l = same_shape(net, UAKD_LAYER_FUSE, name, n, ids);
    if (!l) return -1;
    for (int i = 1; i < n; i++) {
        const net_layer *y = &net->layers[ids[i]];
        if (y->c != l->c || y->h != l->h || y->w != l->w)
            return fail(net, UAKD_EINVAL, "fuse '%s': input %d is %dx%dx%d, the first is %dx%dx%d", name, i, y->c, y->h,
                        y->w, l->c, l->h, l->w);
    }
    l->eps = 1e-4f;
    add_param(net, l, NULL, 1, &n, UAKD_PARAM_NO_DECAY);
    return net->error ? -1 : id_of(net, l);
}

/* ---- layout ---- */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(float) * (n ? n : 1))) return NULL;
    memset(p, 0, sizeof(float) * (n ? n : 1));
    return p;
}

int uakd_net_keep(uakd_net *net, int id) {
    if (net->error) return -1;
    if (id < 0 || id >= net->n_layers) return fail(net, UAKD_EINVAL, "keep: %d is not a layer id", id);
    if (net->built) return fail(net, UAKD_EINVAL, "keep: call before uakd_net_build");
    net->layers[id].keep = 1;
    return id;
}

/* Inference builds: a layer's output buffer is returned to a free list after its last consumer
 * ran, unless it is an input, has no consumer or is kept; each new output takes the smallest
 * free buffer that fits (else new space at *a). Offsets are planned once, here. */
static uakd_status plan_shared_outputs(uakd_net *net, size_t *a) {
    const int n = net->n_layers;
    int *last = malloc(sizeof(int) * n), *free_id = malloc(sizeof(int) * n);
    size_t *bsize = malloc(sizeof(size_t) * n);
    if (!last || !free_id || !bsize) {
        free(last), free(free_id), free(bsize);
        return UAKD_ENOMEM;
    }
    for (int i = 0; i < n; i++) last[i] = -1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < net->layers[i].n_in; j++) last[net->layers[i].in[j]] = i;
    for (int i = 0; i < n; i++)
        if (last[i] < 0 || net->layers[i].keep || net->layers[i].kind == UAKD_LAYER_INPUT) last[i] = n;
    int n_free = 0; /* free buffers, named by the layer that owned them */
    for (int i = 0; i < n; i++) {
        net_layer *l = &net->layers[i];
        const size_t sz = round16((size_t)net->max_batch * l->c * l->h * l->w);
        int best = -1;
        for (int k = 0; k < n_free; k++)
            if (bsize[free_id[k]] >= sz && (best < 0 || bsize[free_id[k]] < bsize[free_id[best]])) best = k;
        if (best >= 0) {
            l->out = net->layers[free_id[best]].out, bsize[i] = bsize[free_id[best]];
            free_id[best] = free_id[--n_free];
        } else {
            l->out = *a, bsize[i] = sz, *a += sz;
        }
        for (int j = 0; j < l->n_in; j++) {
            const int src = l->in[j];
            if (last[src] != i) continue;
            last[src] = n + 1; /* released (an input listed twice is released once) */
            free_id[n_free++] = src;
        }
    }
    free(last), free(free_id), free(bsize);
    return UAKD_OK;
}

uakd_status uakd_net_build(uakd_net *net, int training) {
    if (net->error) return uakd_fail(net->error, "%s", net->error_msg);
    if (net->built) return uakd_fail(UAKD_EINVAL, "uakd_net_build: network already built");
    if (net->n_layers == 0) return uakd_fail(UAKD_EINVAL, "uakd_net_build: network has no layers");
    /* parameter table */
    int64_t off = 0;
    for (int i = 0; i < net->n_params; i++) {
        net->params[i].offset = off;
        off += (int64_t)round16((size_t)net->params[i].count);
    }
    net->n_floats = off;
    /* arena: output, gradient, saved state per layer, then two scratch buffers */
    const size_t nb = (size_t)net->max_batch;
    size_t a = 0, biggest = 0;
    for (int i = 0; i < net->n_layers; i++) {
        net_layer *l = &net->layers[i];
        const size_t sz = round16(nb * l->c * l->h * l->w);
        if (sz > biggest) biggest = sz;
        l->out = l->grad = l->save0 = l->save1 = SIZE_MAX;
        if (training) l->out = a, a += sz;
        if (training) l->grad = a, a += sz;
        if (l->kind == UAKD_LAYER_BATCHNORM) l->save0 = a, a += round16(l->c), l->save1 = a, a += round16(l->c);
        if (l->kind == UAKD_LAYER_GROUPNORM)
            l->save0 = a, a += round16(nb * l->groups), l->save1 = a, a += round16(nb * l->groups);
        if (l->kind == UAKD_LAYER_MAXPOOL && training) l->save0 = a, a += sz; /* int32 argmax */
        /* gradient needed: parameters, or an input that needs it */
        if (l->kind != UAKD_LAYER_INPUT) {
            l->requires_grad = l->np > 0;
            for (int j = 0; j < l->n_in; j++) l->requires_grad |= net->layers[l->in[j]].requires_grad;
        }
    }
    if (!training && plan_shared_outputs(net, &a) != UAKD_OK)
        return uakd_fail(UAKD_ENOMEM, "uakd_net_build: out of memory while planning buffers");
    for (int s = 0; s < 2; s++) net->scratch[s] = a, a += training ? biggest : 0;
    net->arena_floats = a;
    net->param_mem = alloc_floats((size_t)net->n_floats);
    net->grad_mem = training ? alloc_floats((size_t)net->n_floats) : NULL;
    net->arena = alloc_floats(a);
    net->written = calloc((size_t)net->n_layers, 1);
    if (!net->param_mem || (training && !net->grad_mem) || !net->arena || !net->written)
        return uakd_fail(UAKD_ENOMEM, "uakd_net_build: cannot allocate %.1f MB (parameters) + %.1f MB (activations); "
                                      "reduce the batch size or input size",
                         4e-6 * (double)net->n_floats * (training ? 2 : 1), 4e-6 * (double)a);
    for (int i = 0; i < net->n_params; i++) {
        uakd_param *p = &net->params[i];
        p->data = net->param_mem + p->offset;
        p->grad = training ? net->grad_mem + p->offset : NULL;
    }
    net->built = 1, net->training_build = training != 0;
    net->last_n = 0;
    return UAKD_OK;
}

uakd_status uakd_net_init(uakd_net *net, uakd_rng *rng) {
    if (!net->built) return uakd_fail(UAKD_EINVAL, "uakd_net_init: call uakd_net_build first");
    for (int i = 0; i < net->n_layers; i++) {
        const net_layer *l = &net->layers[i];
        if (l->shared) continue;
        for (int j = l->p0; j < l->p0 + l->np; j++) {
            uakd_param *p = &net->params[j];
            const char *suffix = strrchr(p->name, '.');
            suffix = suffix ? suffix + 1 : p->name;
            if (l->kind == UAKD_LAYER_CONV) {
                /* PyTorch default: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
                const double fan_in = (double)net->params[l->p0].count / l->c, b = 1.0 / sqrt(fan_in);
                const int is_w = j == l->p0;
                for (int64_t t = 0; t < p->count; t++) {
                    if (l->init_normal) p->data[t] = is_w ? (float)(l->init_std * uakd_rng_normal(rng)) : l->init_bias;
                    else p->data[t] = (float)uakd_rng_range(rng, -b, b);
                }
            } else {
                const int norm = l->kind == UAKD_LAYER_BATCHNORM || l->kind == UAKD_LAYER_GROUPNORM;
                const float v = norm && (!strcmp(suffix, "bias") || !strcmp(suffix, "running_mean")) ? 0.0f : 1.0f;
                for (int64_t t = 0; t < p->count; t++) p->data[t] = v;
            }
        }
    }
    return UAKD_OK;
}

/* ---- queries ---- */

static int valid(const uakd_net *net, int id) { return id >= 0 && id < net->n_layers; }

float *uakd_net_out(const uakd_net *net, int id) {
    return net->built && valid(net, id) ? net->arena + net->layers[id].out : NULL;
}
float *uakd_net_grad(const uakd_net *net, int id) {
    return net->built && net->training_build && valid(net, id) ? net->arena + net->layers[id].grad : NULL;
}
int64_t uakd_net_shape(const uakd_net *net, int id, int *c, int *h, int *w) {
    if (!valid(net, id)) return 0;
    const net_layer *l = &net->layers[id];
    if (c) *c = l->c;
    if (h) *h = l->h;
    if (w) *w = l->w;
    return (int64_t)l->c * l->h * l->w;
}
int uakd_net_num_layers(const uakd_net *net) { return net->n_layers; }
int uakd_net_max_batch(const uakd_net *net) { return net->max_batch; }
int uakd_net_find(const uakd_net *net, const char *name) {
    for (int i = 0; i < net->n_layers; i++)
        if (name && !strcmp(net->layers[i].name, name)) return i;
    return -1;
}

static double layer_flops(const uakd_net *net, const net_layer *l) {
    const double out = (double)l->c * l->h * l->w;
    if (l->kind == UAKD_LAYER_CONV) {
        const net_layer *x = &net->layers[l->in[0]];
        return 2.0 * out * (x->c / l->groups) * l->k * l->k + (l->bias ? out : 0);
    }
    if (l->kind == UAKD_LAYER_MAXPOOL) return out * l->k * l->k;
    if (l->kind == UAKD_LAYER_SAMPLE) return 8.0 * out;
    if (l->kind == UAKD_LAYER_BATCHNORM || l->kind == UAKD_LAYER_GROUPNORM) return 2.0 * out;
    if (l->kind == UAKD_LAYER_INPUT || l->kind == UAKD_LAYER_CONCAT || l->kind == UAKD_LAYER_UPSAMPLE2) return 0;
    if (l->kind == UAKD_LAYER_FUSE) return 2.0 * out * l->n_in;
    return out;
}

uakd_layer_info uakd_net_layer(const uakd_net *net, int id) {
    uakd_layer_info info;
    memset(&info, 0, sizeof info);
    if (!valid(net, id)) return info;
    const net_layer *l = &net->layers[id];
    info.name = l->name, info.kind = l->kind, info.kind_name = kind_names[l->kind];
    info.c = l->c, info.h = l->h, info.w = l->w;
    info.n_inputs = l->n_in, info.inputs = l->in;
    for (int j = l->p0; j < l->p0 + l->np && !l->shared; j++)
        if (!(net->params[j].flags & UAKD_PARAM_BUFFER)) info.params += net->params[j].count;
    info.flops = layer_flops(net, l);
    return info;
}

int uakd_net_num_params(const uakd_net *net) { return net->n_params; }
const uakd_param *uakd_net_param(const uakd_net *net, int i) {
    return i >= 0 && i < net->n_params ? &net->params[i] : NULL;
}
const uakd_param *uakd_net_param_find(const uakd_net *net, const char *name) {
    for (int i = 0; i < net->n_params; i++)
        if (!strcmp(net->params[i].name, name)) return &net->params[i];
    return NULL;
}
float *uakd_net_params(const uakd_net *net, int64_t *count) {
    if (count) *count = net->built ? net->n_floats : 0;
    return net->param_mem;
}
float *uakd_net_grads(const uakd_net *net, int64_t *count) {
    if (count) *count = net->grad_mem ? net->n_floats : 0;
    return net->grad_mem;
}
int64_t uakd_net_trainable_count(const uakd_net *net) {
    int64_t n = 0;
    for (int i = 0; i < net->n_params; i++)
        if (!(net->params[i].flags & UAKD_PARAM_BUFFER)) n += net->params[i].count;
    return n;
}

uakd_status uakd_net_summary(const uakd_net *net, char **out) {
    *out = NULL;
    size_t cap = 256 + (size_t)net->n_layers * 160, len = 0;
    char *s = malloc(cap);
    if (!s) return uakd_fail(UAKD_ENOMEM, "uakd_net_summary: out of memory");
    len += (size_t)snprintf(s + len, cap - len, "%4s  %-36s %-9s %-12s %16s %10s %10s\n", "id", "name", "kind", "inputs",
                            "output (CxHxW)", "params", "MFLOPs");
    double total_flops = 0;
    for (int i = 0; i < net->n_layers; i++) {
        uakd_layer_info f = uakd_net_layer(net, i);
        char ins[64] = "", shape[48];
        size_t k = 0;
        for (int j = 0; j < f.n_inputs && k < sizeof ins - 12; j++)
            k += (size_t)snprintf(ins + k, sizeof ins - k, j ? ",%d" : "%d", f.inputs[j]);
        snprintf(shape, sizeof shape, "%dx%dx%d", f.c, f.h, f.w);
        len += (size_t)snprintf(s + len, cap - len, "%4d  %-36.36s %-9s %-12.12s %16s %10lld %10.2f\n", i, f.name,
                                f.kind_name, ins, shape, (long long)f.params, f.flops * 1e-6);
        total_flops += f.flops;
    }
    snprintf(s + len, cap - len, "total: %d layers, %lld trainable parameters, %.3f GFLOPs per image (forward)\n",
             net->n_layers, (long long)uakd_net_trainable_count(net), total_flops * 1e-9);
    *out = s;
    return UAKD_OK;
}
