/* Weights files (uakd/weights.h): a network's parameter table written as float32 safetensors
 * with state_dict names, strict name/shape matching on load, and darknet .weights import
 * following the layout plan of uakd/darknet_weights.h. */
#include "uakd/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/darknet_weights.h"

static const int64_t ZERO_I64 = 0;

/* For "X.num_batches_tracked": 1 when X is a batch norm of net (it has X.running_mean). */
static int is_bn_counter(const uakd_net *net, const char *name) {
    const char *suffix = ".num_batches_tracked";
    const size_t n = strlen(name), k = strlen(suffix);
    if (n <= k || strcmp(name + n - k, suffix) || n - k > 400) return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s.running_mean", (int)(n - k), name);
    return uakd_net_param_find(net, buf) != NULL;
}

uakd_status uakd_weights_add(uakd_safetensors_writer *w, const uakd_net *net) {
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        if (!p->data) return uakd_fail(UAKD_EINVAL, "uakd_weights_add: network not built");
        int64_t shape[4];
        for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
        UAKD_TRY(uakd_safetensors_writer_add_f32(w, p->name, p->ndim, shape, p->data));
        const char *dot = strrchr(p->name, '.');
        if (dot && !strcmp(dot, ".running_var")) {
            char buf[512];
            snprintf(buf, sizeof buf, "%.*s.num_batches_tracked", (int)(dot - p->name), p->name);
            UAKD_TRY(uakd_safetensors_writer_add(w, buf, UAKD_DTYPE_I64, 0, NULL, &ZERO_I64));
        }
    }
    return UAKD_OK;
}

/* Appends "name" to a comma-separated list of at most 6 names, counting the rest. */
static void list_add(char *buf, size_t cap, int *count, const char *name) {
    if (*count < 6) {
        const size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", name);
    }
    (*count)++;
}

uakd_status uakd_weights_load_from(uakd_net *net, const uakd_safetensors *st, unsigned flags, int *loaded) {
    char missing[700] = "", unexpected[700] = "", shapes[700] = "";
    int n_missing = 0, n_unexpected = 0, n_shapes = 0, found = 0;
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        const uakd_st_tensor *t = uakd_safetensors_find(st, p->name);
        if (!t) {
            if (!(flags & UAKD_WEIGHTS_PARTIAL)) list_add(missing, sizeof missing, &n_missing, p->name);
            continue;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) list_add(shapes, sizeof shapes, &n_shapes, p->name);
    }
    for (size_t i = 0; i < uakd_safetensors_count(st); i++) {
        const uakd_st_tensor *t = uakd_safetensors_at(st, i);
        if (uakd_net_param_find(net, t->name)) continue;
        if (is_bn_counter(net, t->name) && t->ndim == 0) continue;
        if ((flags & UAKD_WEIGHTS_ALLOW_OPTIM) && !strncmp(t->name, "optim.", 6)) continue;
        list_add(unexpected, sizeof unexpected, &n_unexpected, t->name);
    }
    if (n_missing || n_unexpected || n_shapes)
        return uakd_fail(UAKD_EFORMAT,
                         "weights do not match the network: %d missing%s%s%s, %d unexpected%s%s%s, %d with another "
                         "shape%s%s%s (is it a file for another architecture, width or class count?)",
                         n_missing, n_missing ? " (" : "", missing, n_missing ? (n_missing > 6 ? ", ...)" : ")") : "",
                         n_unexpected, n_unexpected ? " (" : "", unexpected,
                         n_unexpected ? (n_unexpected > 6 ? ", ...)" : ")") : "", n_shapes, n_shapes ? " (" : "", shapes,
                         n_shapes ? (n_shapes > 6 ? ", ...)" : ")") : "");
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        const uakd_st_tensor *t = uakd_safetensors_find(st, p->name);
        if (!t) continue;
        uakd_status s = uakd_st_tensor_to_f32(t, p->data);
        if (s != UAKD_OK) return uakd_fail_context(s, "tensor %s: ", p->name);
        found++;
    }
    if (loaded) *loaded = found;
    return UAKD_OK;
}

uakd_status uakd_weights_save(const uakd_net *net, const uakd_netdesc *arch, const char *path) {
    uakd_safetensors_writer *w;
    UAKD_TRY(uakd_safetensors_writer_new(&w));
    uakd_status st = uakd_safetensors_writer_set_meta(w, "format", UAKD_WEIGHTS_FORMAT);
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "format_version", UAKD_WEIGHTS_VERSION);
    if (st == UAKD_OK && arch) st = uakd_netdesc_put_metadata(arch, w);
    if (st == UAKD_OK) st = uakd_weights_add(w, net);
    uakd_safetensors_writer_checksum(w, 1);
    if (st == UAKD_OK) st = uakd_safetensors_writer_write(w, path);
    uakd_safetensors_writer_free(w);
    return st;
}

uakd_status uakd_weights_load(uakd_net *net, const uakd_netdesc *arch, const char *path, unsigned flags) {
    uakd_safetensors *st;
    UAKD_TRY(uakd_safetensors_open(path, &st));
    uakd_status s = uakd_safetensors_expect_format(st, UAKD_WEIGHTS_FORMAT, UAKD_WEIGHTS_VERSION, NULL);
    if (s == UAKD_OK && arch) s = uakd_netdesc_check_metadata(arch, st);
    if (s == UAKD_OK) s = uakd_weights_load_from(net, st, flags, NULL);
    if (s != UAKD_OK) uakd_fail_context(s, "%s: ", path);
    uakd_safetensors_free(st);
    return s;
}

/* Reads count values of the stream into the network tensor `name`, which must hold count values. */
static uakd_status read_into(uakd_net *net, uakd_darknet_weights *w, const char *name, size_t count, int layer) {
    const uakd_param *p = uakd_net_param_find(net, name);
    if (!p)
        return uakd_fail(UAKD_EINVAL, "darknet import: layer %d: the network has no tensor %s (build it from the same "
                                      "description with the same name prefix)",
                         layer, name);
    if ((size_t)p->count != count)
        return uakd_fail(UAKD_EINVAL, "darknet import: layer %d: tensor %s has %lld values, the description %zu", layer,
                         name, (long long)p->count, count);
    return uakd_darknet_weights_read(w, p->data, count);
}

uakd_status uakd_weights_import_darknet(uakd_net *net, const uakd_netdesc *d, const char *prefix, const char *path,
                                        unsigned flags, size_t *n_covered) {
    uakd_darknet_layer *layers = NULL;
    size_t n = 0, covered = 0;
    uakd_darknet_weights *w = NULL;
    uakd_status st = uakd_darknet_layout(d, &layers, &n);
    if (st == UAKD_OK) st = uakd_darknet_weights_open(path, &w);
    if (st == UAKD_OK) st = uakd_darknet_weights_plan(w, layers, n, flags, &covered);
    for (size_t k = 0; k < covered && st == UAKD_OK; k++) {
        const int i = layers[k].layer;
        const uakd_layer_desc *l = &d->layers[i];
        char pre[300], name[400];
        uakd_netdesc_layer_prefix(d, i, pre, sizeof pre);
        const size_t f = (size_t)l->filters;
        static const char *const BN[4] = {"bn.bias", "bn.weight", "bn.running_mean", "bn.running_var"};
        const int nvec = l->norm == UAKD_ND_NORM_BATCH ? 4 : 1;
        for (int v = 0; v < nvec && st == UAKD_OK; v++) {
            snprintf(name, sizeof name, "%s%s.%s", prefix ? prefix : "", pre, nvec == 4 ? BN[v] : "conv.bias");
            st = read_into(net, w, name, f, i);
        }
        snprintf(name, sizeof name, "%s%s.conv.weight", prefix ? prefix : "", pre);
        if (st == UAKD_OK) st = read_into(net, w, name, f * (size_t)(l->in_c / l->groups) * l->size * l->size, i);
    }
    if (st != UAKD_OK) uakd_fail_context(st, "%s: ", path);
    if (n_covered) *n_covered = st == UAKD_OK ? covered : 0;
    uakd_darknet_weights_close(w);
    free(layers);
    return st;
}
