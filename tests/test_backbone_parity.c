/* PyTorch parity on whole networks (fixtures of scripts/ref_backbones.py): WDRNet on
 * DarkNet-Tiny-H (F = 64, 2 tower convs, 96x96 input, C = 2; outputs, FPN maps and every parameter gradient,
 * training mode), the DarkNet-Tiny backbone (taps and gradients, training mode) and DarkNet-53
 * (taps, eval mode, 1x3x64x64). Weights and inputs come from the formula of the script, computed
 * here the same way, so no weights are stored. Also: the files uakd writes have exactly the
 * PyTorch twin's state_dict keys and shapes (strict loading in PyTorch). */
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "uakd/backend.h"
#include "uakd/net.h"
#include "uakd/netbuild.h"
#include "uakd/safetensors.h"
#include "uakd/weights.h"
#include "uakd/wdrnet.h"

#define DIR "tests/data/backbones/"

static uint32_t fnv1a(const char *s) {
    uint32_t h = 0x811C9DC5u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x01000193u;
    return h;
}

/* The hash of scripts/ref_backbones.py: uniform in [-1, 1), exact in both languages. */
static double hash_uniform(uint32_t h, int64_t i) {
    uint64_t x = (((uint64_t)i + h) * 2654435761u) & 0xFFFFFFFFu;
    x ^= x >> 15;
    x = (x * 2246822519u) & 0xFFFFFFFFu;
    x ^= x >> 13;
    return (double)x * (2.0 / 4294967296.0) - 1.0;
}

/* The weight formula of scripts/ref_backbones.py. */
static void set_formula(uakd_net *net) {
    for (int j = 0; j < uakd_net_num_params(net); j++) {
        const uakd_param *p = uakd_net_param(net, j);
        const uint32_t h = fnv1a(p->name);
        const char *dot = strrchr(p->name, '.');
        const char *last = dot ? dot + 1 : p->name;
        for (int64_t i = 0; i < p->count; i++) {
            const double v = hash_uniform(h, i);
            double w;
            if (p->ndim == 4) w = 1.5 * v / sqrt((double)p->shape[1] * p->shape[2] * p->shape[3]);
            else if (!strcmp(last, "bias") || !strcmp(last, "running_mean")) w = 0.1 * v;
            else if (!strcmp(last, "weight")) w = 1 + 0.2 * v;
            else if (!strcmp(last, "running_var")) w = 0.75 + 0.5 * v * v;
            else w = 1 + 0.1 * v; /* scale */
            p->data[i] = (float)w;
        }
    }
}

static void set_input(float *x, int64_t n) {
    const uint32_t h = fnv1a("input");
    for (int64_t i = 0; i < n; i++) x[i] = (float)hash_uniform(h, i);
}

/* dL/do for the k-th output of the loss. */
static void seed(float *g, int64_t n, int k) {
    for (int64_t i = 0; i < n; i++) g[i] = (float)cos(0.013 * (double)i + k);
}

/* max |a - ref| / max |ref| of a fixture output against a layer's output. */
static double out_error(const uakd_safetensors *st, const char *name, const float *a, int64_t n) {
    const uakd_st_tensor *t = uakd_safetensors_find(st, name);
    CHECK_MSG(t && (int64_t)t->numel == n, "%s: missing or %zu values instead of %lld", name, t ? t->numel : 0,
              (long long)n);
    if (!t || (int64_t)t->numel != n) return INFINITY;
    float *ref = malloc(sizeof(float) * (size_t)n);
    uakd_st_tensor_to_f32(t, ref);
    double err = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(a[i] - ref[i])), mag = fmax(mag, fabs(ref[i]));
    free(ref);
    return err / fmax(mag, 1e-30);
}

/* Gradients: the L2 norm and the 4 projections of the fixture (see scripts/ref_backbones.py),
 * errors relative to the reference norm; the worst over all parameters. */
static double grad_error(const uakd_safetensors *st, const uakd_net *net) {
    double worst = 0;
    int seen = 0;
    for (int j = 0; j < uakd_net_num_params(net); j++) {
        const uakd_param *p = uakd_net_param(net, j);
        if (p->flags & UAKD_PARAM_BUFFER) continue;
        char sn[300];
        snprintf(sn, sizeof sn, "gradstat.%s", p->name);
        const uakd_st_tensor *s = uakd_safetensors_find(st, sn);
        CHECK_MSG(s && s->numel == 5, "fixture lacks the gradient of %s", p->name);
        if (!s || s->numel != 5) continue;
        float ref[5];
        uakd_st_tensor_to_f32(s, ref);
        double ours[5] = {0, 0, 0, 0, 0};
        for (int64_t i = 0; i < p->count; i++) {
            ours[0] += (double)p->grad[i] * p->grad[i];
            for (int k = 0; k < 4; k++) ours[1 + k] += p->grad[i] * cos(0.7 * (double)i + k);
        }
        ours[0] = sqrt(ours[0]);
        const double scale = sqrt(fmax((double)p->count / 2, 1));
        double w = 0;
        for (int k = 0; k < 5; k++) w = fmax(w, fabs((k ? ours[k] / scale : ours[k]) - ref[k]) / (ref[0] + 1e-30));
        worst = fmax(worst, w);
        seen++;
    }
    CHECK(seen > 0);
    return worst;
}

static void test_wdrnet_tiny_h(void) {
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open(DIR "wdrnet_tiny_h.safetensors", &st));
    if (!st) return;
    uakd_wdrnet_config cfg;
    uakd_wdrnet_config_default(&cfg, "darknet-tiny-h");
    cfg.classes = 2, cfg.width = 64, cfg.tower_convs = 2, cfg.input_size = 96, cfg.max_batch = 2, cfg.training = 1;
    uakd_wdrnet *m;
    CHECK_OK(uakd_wdrnet_new(&cfg, &m));
    if (!m) goto done;
    uakd_net *net = uakd_wdrnet_net(m);
    set_formula(net);
    set_input(uakd_net_out(net, uakd_wdrnet_input(m)), 2 * 3 * 96 * 96);
    CHECK_OK(uakd_wdrnet_forward(m, 2, 1));
    double worst = 0;
    char name[64];
    for (int l = 0; l < 4; l++) {
        const int ids[3] = {uakd_wdrnet_feature_id(m, l), uakd_wdrnet_logits_id(m, l), uakd_wdrnet_offsets_id(m, l)};
        const char *what[3] = {"feature", "logits", "offsets"};
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "out.%s%d", what[k], l);
            const double e = out_error(st, name, uakd_net_out(net, ids[k]), 2 * uakd_net_shape(net, ids[k], 0, 0, 0));
            worst = fmax(worst, e);
        }
    }
    CHECK_MSG(worst < 1e-4, "WDRNet Tiny-H outputs: relative error %g", worst);
    fprintf(stderr, "  WDRNet Tiny-H (%s): outputs %.2g,", uakd_backend_name(uakd_get_backend()), worst);
    uakd_net_zero_grad(net);
    for (int l = 0; l < 4; l++) {
        seed(uakd_net_grad(net, uakd_wdrnet_logits_id(m, l)), 2 * uakd_net_shape(net, uakd_wdrnet_logits_id(m, l), 0, 0, 0), l);
        seed(uakd_net_grad(net, uakd_wdrnet_offsets_id(m, l)), 2 * uakd_net_shape(net, uakd_wdrnet_offsets_id(m, l), 0, 0, 0),
             4 + l);
    }
    CHECK_OK(uakd_wdrnet_backward(m));
    const double g = grad_error(st, net);
    CHECK_MSG(g < 1e-3, "WDRNet Tiny-H gradients: error %g", g);
    fprintf(stderr, " gradients %.2g\n", g);
    /* our weights file has exactly the twin's state_dict keys and shapes */
    const char *path = test_tmp("parity_wdrnet.safetensors");
    CHECK_OK(uakd_wdrnet_save(m, path));
    uakd_safetensors *ours;
    CHECK_OK(uakd_safetensors_open(path, &ours));
    cJSON *keys = cJSON_Parse(uakd_safetensors_meta(st, "state_dict"));
    CHECK(keys && ours && (size_t)cJSON_GetArraySize(keys) == uakd_safetensors_count(ours));
    int bad = 0;
    for (int i = 0; keys && ours && i < cJSON_GetArraySize(keys); i++) {
        const cJSON *e = cJSON_GetArrayItem(keys, i), *shape = cJSON_GetArrayItem(e, 1);
        const uakd_st_tensor *t = uakd_safetensors_find(ours, cJSON_GetArrayItem(e, 0)->valuestring);
        int ok = t && t->ndim == cJSON_GetArraySize(shape);
        for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
        if (!ok && bad++ < 5) fprintf(stderr, "  key %s: missing or another shape\n", cJSON_GetArrayItem(e, 0)->valuestring);
    }
    CHECK(bad == 0);
    cJSON_Delete(keys);
    uakd_safetensors_free(ours);
    uakd_wdrnet_free(m);
done:
    uakd_safetensors_free(st);
}

/* A backbone alone, names without prefix (the twin's state_dict). */
static uakd_net *backbone(const char *cfg, int n, int training, uakd_netdesc **d, int **ids) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_netdesc_load(cfg, d));
    if (!*d) return NULL;
    CHECK_OK(uakd_netdesc_set_input_size(*d, 64, 64));
    CHECK_OK(uakd_net_new(n, &net));
    *ids = malloc(sizeof(int) * (*d)->n_layers);
    const int in = uakd_net_input(net, "image", 3, 64, 64, 0);
    CHECK_OK(uakd_netbuild_append(net, *d, in, NULL, *ids));
    for (int i = 0; i < (*d)->n_layers; i++)
        if ((*d)->layers[i].type == UAKD_ND_OUTPUT) uakd_net_keep(net, (*ids)[i]);
    CHECK_OK(uakd_net_build(net, training));
    set_formula(net);
    set_input(uakd_net_out(net, in), (int64_t)n * 3 * 64 * 64);
    return net;
}

static void test_tiny(void) {
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open(DIR "tiny.safetensors", &st));
    uakd_netdesc *d = NULL;
    int *ids = NULL;
    uakd_net *net = st ? backbone("cfg/darknet-tiny.cfg", 2, 1, &d, &ids) : NULL;
    if (net) {
        CHECK_OK(uakd_net_forward(net, 2, 1));
        const int taps[2] = {uakd_netbuild_tap(d, ids, "s8"), uakd_netbuild_tap(d, ids, "s16")};
        double worst = fmax(out_error(st, "out.s8", uakd_net_out(net, taps[0]), 2 * uakd_net_shape(net, taps[0], 0, 0, 0)),
                            out_error(st, "out.s16", uakd_net_out(net, taps[1]), 2 * uakd_net_shape(net, taps[1], 0, 0, 0)));
        CHECK_MSG(worst < 1e-4, "DarkNet-Tiny taps: relative error %g", worst);
        fprintf(stderr, "  DarkNet-Tiny (%s): taps %.2g,", uakd_backend_name(uakd_get_backend()), worst);
        uakd_net_zero_grad(net);
        for (int k = 0; k < 2; k++) seed(uakd_net_grad(net, taps[k]), 2 * uakd_net_shape(net, taps[k], 0, 0, 0), k);
        CHECK_OK(uakd_net_backward(net, 2, taps));
        const double g = grad_error(st, net);
        CHECK_MSG(g < 1e-3, "DarkNet-Tiny gradients: error %g", g);
        fprintf(stderr, " gradients %.2g\n", g);
    }
    uakd_net_free(net);
    free(ids);
    uakd_netdesc_free(d);
    uakd_safetensors_free(st);
}

static void test_darknet53(void) {
    uakd_safetensors *st;
    CHECK_OK(uakd_safetensors_open(DIR "darknet53.safetensors", &st));
    uakd_netdesc *d = NULL;
    int *ids = NULL;
    uakd_net *net = st ? backbone("cfg/darknet53.cfg", 1, 0, &d, &ids) : NULL;
    if (net) {
        CHECK_OK(uakd_net_forward(net, 1, 0));
        const char *names[3] = {"s8", "s16", "s32"};
        double worst = 0;
        for (int k = 0; k < 3; k++) {
            char on[16];
            snprintf(on, sizeof on, "out.%s", names[k]);
            const int id = uakd_netbuild_tap(d, ids, names[k]);
            worst = fmax(worst, out_error(st, on, uakd_net_out(net, id), uakd_net_shape(net, id, 0, 0, 0)));
        }
        CHECK_MSG(worst < 1e-4, "DarkNet-53 taps: relative error %g", worst);
        fprintf(stderr, "  DarkNet-53 (%s): taps %.2g\n", uakd_backend_name(uakd_get_backend()), worst);
    }
    uakd_net_free(net);
    free(ids);
    uakd_netdesc_free(d);
    uakd_safetensors_free(st);
}

/* The reference kernels too (the ground truth of the engine's own tests). */
static void test_wdrnet_tiny_h_ref(void) {
    uakd_set_backend(UAKD_BACKEND_REF);
    test_wdrnet_tiny_h();
    uakd_set_backend(UAKD_BACKEND_FAST);
}
static void test_tiny_ref(void) {
    uakd_set_backend(UAKD_BACKEND_REF);
    test_tiny();
    uakd_set_backend(UAKD_BACKEND_FAST);
}

int main(void) {
    RUN(test_wdrnet_tiny_h);
    RUN(test_tiny);
    RUN(test_darknet53);
    RUN(test_wdrnet_tiny_h_ref);
    RUN(test_tiny_ref);
    return TEST_END();
}
