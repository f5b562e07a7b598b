/* Network description -> engine layers (see uakd/netbuild.h for the mapping). Shapes are
 * computed by the engine again and checked against the description's own shape inference, so a
 * disagreement between the two is an error rather than a silent mismatch. */
#include "uakd/netbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int engine_act(uakd_netdesc_act a, uakd_act *out) {
    switch (a) {
    case UAKD_ND_ACT_LEAKY: *out = UAKD_ACT_LEAKY; return 1;
    case UAKD_ND_ACT_RELU: *out = UAKD_ACT_RELU; return 1;
    case UAKD_ND_ACT_SILU: *out = UAKD_ACT_SILU; return 1;
    case UAKD_ND_ACT_SIGMOID: *out = UAKD_ACT_SIGMOID; return 1;
    case UAKD_ND_ACT_LINEAR: break;
    }
    return 0;
}

/* Adds the activation a after layer x (nothing for linear). */
static int add_act(uakd_net *net, const char *name, int x, uakd_netdesc_act a) {
    uakd_act k;
    if (!engine_act(a, &k)) return x;
    return uakd_net_act(net, name, x, k, 0.1f);
}

static uakd_status layer_fail(const uakd_netdesc *d, int i, const char *why) {
    char msg[700];
    snprintf(msg, sizeof msg, "%s", why);
    return uakd_fail(UAKD_EINVAL, "network description layer %d [%s] (line %d): %s", i,
                     uakd_netdesc_type_name(d->layers[i].type), d->layers[i].line, msg);
}

static int build_layer(uakd_net *net, const uakd_netdesc *d, int i, int prev, const int *ids, const char *p) {
    const uakd_layer_desc *l = &d->layers[i];
    char name[320];
    switch (l->type) {
    case UAKD_ND_CONV: {
        snprintf(name, sizeof name, "%s.conv", p);
        int x = uakd_net_conv(net, name, prev, l->filters, l->size, l->stride, l->padding, l->groups, l->bias);
        if (l->norm == UAKD_ND_NORM_BATCH) {
            snprintf(name, sizeof name, "%s.bn", p);
            x = uakd_net_set_norm(net, uakd_net_batchnorm(net, name, x), l->norm_eps, l->norm_momentum);
        } else if (l->norm == UAKD_ND_NORM_GROUP) {
            snprintf(name, sizeof name, "%s.gn", p);
            x = uakd_net_set_norm(net, uakd_net_groupnorm(net, name, x, l->norm_groups), l->norm_eps, 0.1f);
        }
        snprintf(name, sizeof name, "%s.act", p);
        return add_act(net, name, x, l->activation);
    }
    case UAKD_ND_MAXPOOL: return uakd_net_maxpool(net, p, prev, l->size, l->stride, l->padding);
    case UAKD_ND_UPSAMPLE:
        if (l->stride == 1) return prev;
        if (l->stride != 2) return -2;
        return uakd_net_upsample2(net, p, prev);
    case UAKD_ND_ROUTE: {
        int in[UAKD_NETDESC_MAX_ROUTE];
        for (int k = 0; k < l->n_from; k++) in[k] = ids[l->from[k]];
        if (l->n_from == 1) return in[0];
        return uakd_net_concat(net, p, l->n_from, in);
    }
    case UAKD_ND_SHORTCUT: {
        int x = uakd_net_add(net, p, prev, ids[l->from[0]]);
        snprintf(name, sizeof name, "%s.act", p);
        return add_act(net, name, x, l->activation);
    }
    case UAKD_ND_ACTIVATION: return add_act(net, p, prev, l->activation);
    case UAKD_ND_OUTPUT: return prev;
    case UAKD_ND_AVGPOOL: return uakd_net_gap(net, p, prev);
    case UAKD_ND_SCALE_CHANNELS: return uakd_net_cmul(net, p, ids[l->from[0]], prev);
    }
    return -2;
}

uakd_status uakd_netbuild_append(uakd_net *net, const uakd_netdesc *d, int input, const char *prefix, int *ids_out) {
    int c, h, w;
    if (!uakd_net_shape(net, input, &c, &h, &w))
        return uakd_fail(UAKD_EINVAL, "uakd_netbuild_append: input id %d is not a layer", input);
    if (c != d->input.channels || h != d->input.height || w != d->input.width)
        return uakd_fail(UAKD_EINVAL, "uakd_netbuild_append: input layer is %dx%dx%d but the description expects %dx%dx%d "
                                      "(set the description's input size with uakd_netdesc_set_input_size)",
                         c, h, w, d->input.channels, d->input.height, d->input.width);
    int *ids = ids_out;
    if (!ids) {
        ids = malloc(sizeof(int) * (size_t)(d->n_layers ? d->n_layers : 1));
        if (!ids) return uakd_fail(UAKD_ENOMEM, "uakd_netbuild_append: out of memory");
    }
    uakd_status st = UAKD_OK;
    int prev = input;
    for (int i = 0; i < d->n_layers && st == UAKD_OK; i++) {
        char p[300], pre[200];
        uakd_netdesc_layer_prefix(d, i, pre, sizeof pre);
        snprintf(p, sizeof p, "%s%s", prefix ? prefix : "", pre);
        const int id = build_layer(net, d, i, prev, ids, p);
        if (id == -2) {
            st = layer_fail(d, i, "upsample by other than 2 is not supported by the engine");
        } else if (id < 0) {
            st = layer_fail(d, i, uakd_last_error());
        } else {
            const uakd_layer_desc *l = &d->layers[i];
            uakd_net_shape(net, id, &c, &h, &w);
            if (c != l->out_c || h != l->out_h || w != l->out_w) {
                char why[200];
                snprintf(why, sizeof why, "engine output %dx%dx%d differs from the description's %dx%dx%d", c, h, w,
                         l->out_c, l->out_h, l->out_w);
                st = layer_fail(d, i, why);
            }
            ids[i] = prev = id;
        }
    }
    if (ids != ids_out) free(ids);
    return st;
}

int uakd_netbuild_tap(const uakd_netdesc *d, const int *ids, const char *name) {
    const int i = uakd_netdesc_find_output(d, name);
    return i < 0 ? -1 : ids[i];
}
