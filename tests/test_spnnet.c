/* SPNv2 networks (uakd/spnnet.h).
 *
 * PyTorch parity (fixtures of scripts/ref_spnnet.py in tests/data/spnnet, one safetensors file per case): two MBConv
 * blocks with squeeze-and-excitation, two BiFPN layers (the first with its 1x1 projections and
 * P6/P7), the heatmap head with batch norm and with group norm. The PyTorch parameters are loaded
 * by state_dict name, one training-mode forward runs, the gradient of sum_o sum(out_o * r_o)
 * (r_i = sin(0.7 i + 0.3 s), see the script) is back-propagated; on both backends (REF, FAST):
 *   outputs                        max |diff| <= 1e-5 + 1e-4 max|ref|
 *   parameter gradients            max |diff| <= 1e-5 G + 5e-4 max|ref|, G = the largest gradient
 *                                  of the case (float32 sums in another order; the bias of a conv
 *                                  in front of a training-mode batch norm has the exact gradient 0
 *                                  and both sides hold rounding noise of order 1e-6 G; seen: 1e-6 G
 *                                  noise and 1e-5 relative elsewhere)
 *   BN running stats after         max |diff| <= 1e-6 + 1e-5 max|ref|
 * Full-size models: phi 0 / 3 / 6 build, their P1..P5 channels and parameter counts (backbone,
 * BiFPN, head) equal those of the PyTorch modules (tests/data/spnnet/counts.json; the backbone
 * counts are torchvision's efficientnet_b0/b3/b6 features without the 1x1 head conv); a phi 0
 * training step runs at 256x256 and a phi 6 (group norm) forward at 128x128, timed. The whole
 * reduced network against PyTorch end to end: see test_parity_full. */
#include <cjson/cJSON.h>
#include <time.h>

#include "test.h"
#include "uakd/backend.h"
#include "uakd/safetensors.h"
#include "uakd/spnnet.h"

#define DIR "tests/data/spnnet/"
#define MAX_OUT 6

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void compare(const char *what, const float *got, const float *ref, int64_t n, double atol, double rtol,
                    double *worst) {
    double maxdiff = 0, maxref = 0;
    for (int64_t i = 0; i < n; i++) {
        maxdiff = fmax(maxdiff, fabs((double)got[i] - ref[i]));
        maxref = fmax(maxref, fabs((double)ref[i]));
    }
    const double tol = atol + rtol * maxref;
    CHECK_MSG(maxdiff <= tol, "%s: max diff %g > tol %g (max|ref| %g)", what, maxdiff, tol, maxref);
    if (maxdiff / tol > *worst) *worst = maxdiff / tol;
}

/* Reads fixture tensor `name` (must exist with count values) into a new buffer. */
static float *fixture(const uakd_safetensors *st, const char *name, int64_t count) {
    const uakd_st_tensor *t = uakd_safetensors_find(st, name);
    CHECK_MSG(t && (int64_t)t->numel == count, "fixture %s missing or not %lld values", name, (long long)count);
    if (!t || (int64_t)t->numel != count) return NULL;
    float *v = malloc(sizeof(float) * (size_t)count);
    if (v && uakd_st_tensor_to_f32(t, v) != UAKD_OK) free(v), v = NULL;
    return v;
}

typedef int (*build_fn)(uakd_net *net, int *outs, const char **names);

static void parity(const char *file, build_fn build) {
    uakd_safetensors *st = NULL;
    CHECK_OK(uakd_safetensors_open(file, &st));
    if (!st) return;
    for (int b = 0; b < 2; b++) {
        uakd_set_backend(b ? UAKD_BACKEND_FAST : UAKD_BACKEND_REF);
        uakd_net *net = NULL;
        CHECK_OK(uakd_net_new(2, &net));
        int outs[MAX_OUT];
        const char *names[MAX_OUT];
        const int n_out = build(net, outs, names);
        CHECK_OK(uakd_net_build(net, 1));
        if (n_out < 1 || !uakd_net_out(net, 0)) {
            uakd_net_free(net);
            break;
        }
        /* parameters by name; the fixture holds exactly the network's tensors */
        int n_fix_params = 0;
        for (size_t i = 0; i < uakd_safetensors_count(st); i++)
            n_fix_params += !strncmp(uakd_safetensors_at(st, i)->name, "param:", 6);
        CHECK_MSG(n_fix_params == uakd_net_num_params(net), "%s: fixture has %d parameters, network %d", file,
                  n_fix_params, uakd_net_num_params(net));
        char key[300];
        for (int i = 0; i < uakd_net_num_params(net); i++) {
            const uakd_param *p = uakd_net_param(net, i);
            int64_t shape[4];
            for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
            snprintf(key, sizeof key, "param:%s", p->name);
            CHECK_OK(uakd_safetensors_read_f32(st, key, p->ndim, shape, p->data));
        }
        for (int i = 0; i < uakd_net_num_layers(net); i++) {
            uakd_layer_info f = uakd_net_layer(net, i);
            if (f.kind != UAKD_LAYER_INPUT) continue;
            snprintf(key, sizeof key, "in:%s", f.name);
            int64_t shape[4] = {2, f.c, f.h, f.w};
            CHECK_OK(uakd_safetensors_read_f32(st, key, 4, shape, uakd_net_out(net, i)));
        }
        CHECK_OK(uakd_net_forward(net, 2, 1));
        double worst_out = 0, worst_grad = 0, worst_stat = 0;
        for (int o = 0; o < n_out; o++) {
            const int64_t cnt = 2 * uakd_net_shape(net, outs[o], NULL, NULL, NULL);
            snprintf(key, sizeof key, "out:%s", names[o]);
            size_t salt = 0;
            while (salt < uakd_safetensors_count(st) && strcmp(uakd_safetensors_at(st, salt)->name, key)) salt++;
            float *ref = fixture(st, key, cnt);
            if (ref) compare(key, uakd_net_out(net, outs[o]), ref, cnt, 1e-5, 1e-4, &worst_out);
            free(ref);
            float *g = uakd_net_grad(net, outs[o]);
            for (int64_t i = 0; i < cnt; i++) g[i] = (float)sin(0.7 * (double)i + 0.3 * (double)salt);
        }
        uakd_net_zero_grad(net);
        CHECK_OK(uakd_net_backward(net, n_out, outs));
        double big = 0; /* G */
        for (size_t i = 0; i < uakd_safetensors_count(st); i++) {
            const uakd_st_tensor *t = uakd_safetensors_at(st, i);
            if (strncmp(t->name, "grad:", 5)) continue;
            float *v = fixture(st, t->name, (int64_t)t->numel);
            for (size_t k = 0; v && k < t->numel; k++) big = fmax(big, fabs(v[k]));
            free(v);
        }
        for (int i = 0; i < uakd_net_num_params(net); i++) {
            const uakd_param *p = uakd_net_param(net, i);
            const int buffer = (p->flags & UAKD_PARAM_BUFFER) != 0;
            snprintf(key, sizeof key, "%s:%s", buffer ? "after" : "grad", p->name);
            float *ref = fixture(st, key, p->count);
            if (ref && buffer) compare(key, p->data, ref, p->count, 1e-6, 1e-5, &worst_stat);
            if (ref && !buffer) compare(key, p->grad, ref, p->count, 1e-5 * big, 5e-4, &worst_grad);
            free(ref);
        }
        fprintf(stderr, "  %-40s %s: worst diff / tol: outputs %.3f, gradients %.3f, running stats %.3f\n", file,
                b ? "fast" : "ref ", worst_out, worst_grad, worst_stat);
        uakd_net_free(net);
    }
    uakd_set_backend(UAKD_BACKEND_FAST);
    uakd_safetensors_free(st);
}

static int build_mbconv(uakd_net *net, int *outs, const char **names) {
    const uakd_spnnet_norm bn = {0, 1e-3f, 0.01f};
    int x = uakd_net_input(net, "x", 8, 16, 16, 0);
    x = uakd_spnnet_mbconv(net, "a", x, 1, 3, 1, 8, &bn, 0);
    outs[0] = uakd_spnnet_mbconv(net, "b", x, 6, 5, 2, 16, &bn, 0);
    names[0] = "y";
    return 1;
}

static int build_bifpn(uakd_net *net, int *outs, const char **names) {
    static const char *levels[6] = {"p2", "p3", "p4", "p5", "p6", "p7"};
    const uakd_spnnet_norm bn = {0, 1e-4f, 0.01f};
    const int chans[4] = {4, 8, 12, 16};
    int ins[4], mid[6];
    for (int i = 0; i < 4; i++) ins[i] = uakd_net_input(net, levels[i], chans[i], 32 >> i, 32 >> i, 0);
    uakd_spnnet_bifpn_layer(net, "bifpn.0", 1, ins, 8, &bn, mid);
    uakd_spnnet_bifpn_layer(net, "bifpn.1", 0, mid, 8, &bn, outs);
    for (int i = 0; i < 6; i++) names[i] = levels[i];
    return 6;
}

static int build_head(uakd_net *net, int *outs, const char **names, const uakd_spnnet_norm *nm) {
    int x = uakd_net_input(net, "x", 16, 12, 10, 0);
    outs[0] = uakd_spnnet_head(net, "heatmap", x, 2, 5, nm);
    names[0] = "heatmap";
    return 1;
}
static int build_head_bn(uakd_net *net, int *outs, const char **names) {
    const uakd_spnnet_norm bn = {0, 1e-4f, 0.003f};
    return build_head(net, outs, names, &bn);
}
static int build_head_gn(uakd_net *net, int *outs, const char **names) {
    const uakd_spnnet_norm gn = {16, 1e-4f, 0.1f};
    return build_head(net, outs, names, &gn);
}

static void test_parity_mbconv(void) { parity(DIR "mbconv.safetensors", build_mbconv); }
static void test_parity_bifpn(void) { parity(DIR "bifpn.safetensors", build_bifpn); }
static void test_parity_head(void) {
    parity(DIR "head_bn.safetensors", build_head_bn);
    parity(DIR "head_gn.safetensors", build_head_gn);
}

/* ref_spnnet.py formula_value: deterministic parameters shared with the script */
static float formula_value(const uakd_param *p, int64_t i) {
    unsigned salt = 0;
    for (const char *c = p->name; *c; c++) salt += (unsigned char)*c;
    const double v = sin(0.37 * (double)i + 0.01 * salt);
    const size_t len = strlen(p->name);
#define ENDS(s) (len >= strlen(s) && !strcmp(p->name + len - strlen(s), s))
    if (p->ndim == 4) return (float)(v * sqrt(2.0 / (double)(p->count / p->shape[0])));
    if (ENDS("running_var")) return (float)(1 + 0.25 * v);
    if (ENDS("running_mean") || ENDS("bias")) return (float)(0.1 * v);
    if (ENDS("weight")) return (float)(1 + 0.2 * v);
    return (float)(1 + 0.5 * v);
#undef ENDS
}

/* The whole reduced network (width 0.25, depth 0.34, BiFPN 16 x 2, head depth 2, 128x128, batch
 * 2) in eval mode against PyTorch: heatmaps (1e-5 + 1e-4 max|ref|), the L2 norm of every
 * parameter gradient (1e-3 relative + 1e-5 of the largest norm) and the full gradients of the stem
 * and the fusion weights (1e-5 G + 5e-4 max|ref|). This checks the wiring end to end: tap
 * positions, strides, stage repeats, BiFPN inputs and the state_dict names. */
static void test_parity_full(void) {
    uakd_safetensors *st = NULL;
    CHECK_OK(uakd_safetensors_open(DIR "full.safetensors", &st));
    if (!st) return;
    const uakd_spnnet_config cfg = {0.25, 0.34, 16, 2, 2, 11, 128, 128, 0, 0, 0};
    for (int b = 0; b < 2; b++) {
        uakd_set_backend(b ? UAKD_BACKEND_FAST : UAKD_BACKEND_REF);
        uakd_spnnet *m = NULL;
        CHECK_OK(uakd_spnnet_new(&cfg, 2, 1, &m));
        if (!m) break;
        uakd_net *net = m->net;
        int n_trainable = 0, n_norms = 0;
        for (int i = 0; i < uakd_net_num_params(net); i++) {
            const uakd_param *p = uakd_net_param(net, i);
            for (int64_t k = 0; k < p->count; k++) p->data[k] = formula_value(p, k);
            n_trainable += !(p->flags & UAKD_PARAM_BUFFER);
        }
        for (size_t i = 0; i < uakd_safetensors_count(st); i++)
            n_norms += !strncmp(uakd_safetensors_at(st, i)->name, "gradnorm:", 9);
        CHECK_MSG(n_norms == n_trainable, "fixture has %d parameters, network %d", n_norms, n_trainable);
        float *x = uakd_net_out(net, m->input);
        for (int64_t i = 0; i < 2 * 3 * 128 * 128; i++) x[i] = (float)sin(0.37 * (double)i);
        CHECK_OK(uakd_net_forward(net, 2, 0));
        const int64_t ny = 2 * uakd_net_shape(net, m->heatmap, NULL, NULL, NULL);
        double worst_out = 0, worst_norm = 0, worst_grad = 0;
        float *ref = fixture(st, "out:heatmap", ny);
        if (ref) compare("heatmap", uakd_net_out(net, m->heatmap), ref, ny, 1e-5, 1e-4, &worst_out);
        free(ref);
        float *g = uakd_net_grad(net, m->heatmap);
        for (int64_t i = 0; i < ny; i++) g[i] = (float)sin(0.7 * (double)i);
        uakd_net_zero_grad(net);
        CHECK_OK(uakd_net_backward(net, 1, &m->heatmap));
        double big = 0, norm_big = 0;
        char key[300];
        for (size_t i = 0; i < uakd_safetensors_count(st); i++) {
            const uakd_st_tensor *t = uakd_safetensors_at(st, i);
            const int is_norm = !strncmp(t->name, "gradnorm:", 9);
            if (!is_norm && strncmp(t->name, "grad:", 5)) continue;
            float *v = fixture(st, t->name, (int64_t)t->numel);
            for (size_t k = 0; v && k < t->numel; k++) big = fmax(big, fabs(v[k]));
            if (v && is_norm) norm_big = fmax(norm_big, v[0]);
            free(v);
        }
        for (int i = 0; i < uakd_net_num_params(net); i++) {
            const uakd_param *p = uakd_net_param(net, i);
            if (p->flags & UAKD_PARAM_BUFFER) continue;
            snprintf(key, sizeof key, "gradnorm:%s", p->name);
            float *r = fixture(st, key, 1);
            if (r) {
                double nrm = 0;
                for (int64_t k = 0; k < p->count; k++) nrm += (double)p->grad[k] * p->grad[k];
                const float got = (float)sqrt(nrm);
                compare(key, &got, r, 1, 1e-5 * norm_big, 1e-3, &worst_norm);
            }
            free(r);
            snprintf(key, sizeof key, "grad:%s", p->name);
            if (!uakd_safetensors_find(st, key)) continue;
            r = fixture(st, key, p->count);
            if (r) compare(key, p->grad, r, p->count, 1e-5 * big, 5e-4, &worst_grad);
            free(r);
        }
        fprintf(stderr, "  full reduced network %s: worst diff / tol: heatmap %.3f, gradient norms %.3f, gradients %.3f\n",
                b ? "fast" : "ref ", worst_out, worst_norm, worst_grad);
        uakd_spnnet_free(m);
    }
    uakd_set_backend(UAKD_BACKEND_FAST);
    uakd_safetensors_free(st);
}

/* make_divisible(v, 8): nearest multiple of 8, at least 8, +8 when it lost more than 10% */
static void test_round_channels(void) {
    CHECK(uakd_spnnet_round_channels(32) == 32);
    CHECK(uakd_spnnet_round_channels(16 * 1.2) == 24); /* 19.2 -> 16 is < 0.9 * 19.2 -> 24 */
    CHECK(uakd_spnnet_round_channels(24 * 1.8) == 40); /* 43.2 -> 40 */
    CHECK(uakd_spnnet_round_channels(112 * 1.8) == 200);
    CHECK(uakd_spnnet_round_channels(3) == 8);
    CHECK(uakd_spnnet_round_channels(12) == 16); /* 12 + 4 = 16 */
}

typedef struct counts {
    int64_t backbone, bifpn, head;
} counts;

static counts count_params(const uakd_net *net) {
    counts c = {0, 0, 0};
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        if (p->flags & UAKD_PARAM_BUFFER) continue;
        if (!strncmp(p->name, "efficientnet.", 13)) c.backbone += p->count;
        else if (!strncmp(p->name, "bifpn.", 6)) c.bifpn += p->count;
        else if (!strncmp(p->name, "heatmap.", 8)) c.head += p->count;
    }
    return c;
}

static int64_t json_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "counts.json: %s missing", key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* Full-size phi 0 / 3 / 6 (inference builds): shapes and parameter counts against PyTorch. */
static void test_full_size_counts(void) {
    FILE *f = fopen(DIR "counts.json", "rb");
    CHECK(f != NULL);
    if (!f) return;
    char buf[4096];
    const size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    cJSON *js = cJSON_Parse(buf);
    CHECK(js != NULL);
    static const int phis[3] = {0, 3, 6};
    for (int k = 0; k < 3; k++) {
        uakd_spnnet_config cfg;
        CHECK_OK(uakd_spnnet_config_phi(phis[k], &cfg));
        uakd_spnnet *m = NULL;
        CHECK_OK(uakd_spnnet_new(&cfg, 1, 0, &m));
        if (!m) continue;
        char key[16];
        snprintf(key, sizeof key, "phi%d", phis[k]);
        const cJSON *ref = cJSON_GetObjectItem(js, key);
        const counts c = count_params(m->net);
        CHECK(c.backbone == json_int(ref, "backbone"));
        CHECK(c.bifpn == json_int(ref, "bifpn"));
        CHECK(c.head == json_int(ref, "head"));
        CHECK(c.backbone + c.bifpn + c.head == uakd_net_trainable_count(m->net));
        /* P1 = the first stage's width; P2..P5 the taps at strides 4..32 */
        const cJSON *ch = cJSON_GetObjectItem(ref, "channels");
        CHECK(uakd_spnnet_round_channels(16 * cfg.width_mult) == (int)cJSON_GetArrayItem(ch, 0)->valuedouble);
        for (int t = 0; t < 4; t++) {
            int cc, h, w;
            uakd_net_shape(m->net, m->taps[t], &cc, &h, &w);
            CHECK(cc == (int)cJSON_GetArrayItem(ch, t + 1)->valuedouble);
            CHECK(h == 512 >> (t + 2) && w == 768 >> (t + 2));
        }
        int cc, h, w;
        uakd_net_shape(m->net, m->p2, &cc, &h, &w);
        CHECK(cc == cfg.bifpn_width && h == 128 && w == 192);
        uakd_net_shape(m->net, m->heatmap, &cc, &h, &w);
        CHECK(cc == 11 && h == 128 && w == 192);
        uakd_net_shape(m->net, m->features[5], &cc, &h, &w);
        CHECK(h == 4 && w == 6); /* P7: stride 128 */
        fprintf(stderr, "  phi %d: %lld parameters (backbone %lld, BiFPN %lld, head %lld), P2 feature %d channels\n",
                phis[k], (long long)uakd_net_trainable_count(m->net), (long long)c.backbone, (long long)c.bifpn,
                (long long)c.head, cfg.bifpn_width);
        uakd_spnnet_free(m);
    }
    cJSON_Delete(js);
}

/* A phi-0 training step at 256x256: finite heatmaps and gradients, a BN statistic updated. */
static void test_phi0_train_step(void) {
    uakd_spnnet_config cfg;
    CHECK_OK(uakd_spnnet_config_phi(0, &cfg));
    cfg.in_w = 256, cfg.in_h = 256;
    uakd_spnnet *m = NULL;
    CHECK_OK(uakd_spnnet_new(&cfg, 1, 1, &m));
    if (!m) return;
    uakd_rng rng;
    uakd_rng_seed(&rng, 5);
    CHECK_OK(uakd_net_init(m->net, &rng));
    float *x = uakd_net_out(m->net, m->input);
    for (int i = 0; i < 3 * 256 * 256; i++) x[i] = (float)uakd_rng_normal(&rng);
    const double t0 = seconds();
    CHECK_OK(uakd_net_forward(m->net, 1, 1));
    const double t1 = seconds();
    int c, h, w;
    const int64_t n = uakd_net_shape(m->net, m->heatmap, &c, &h, &w);
    CHECK(c == 11 && h == 64 && w == 64);
    const float *y = uakd_net_out(m->net, m->heatmap);
    float *g = uakd_net_grad(m->net, m->heatmap);
    int finite = 1;
    for (int64_t i = 0; i < n; i++) finite &= isfinite(y[i]) != 0, g[i] = 2 * y[i] / (float)n;
    CHECK(finite);
    uakd_net_zero_grad(m->net);
    CHECK_OK(uakd_net_backward(m->net, 1, &m->heatmap));
    const double t2 = seconds();
    const uakd_param *stem = uakd_net_param_find(m->net, "efficientnet.0.0.weight");
    const uakd_param *rm = uakd_net_param_find(m->net, "efficientnet.0.1.running_mean");
    CHECK(stem && rm);
    if (stem && rm) {
        double gn = 0;
        for (int64_t i = 0; i < stem->count; i++) gn += (double)stem->grad[i] * stem->grad[i];
        CHECK(isfinite(gn) && gn > 0);
        double mn = 0;
        for (int64_t i = 0; i < rm->count; i++) mn += fabs(rm->data[i]);
        CHECK(mn > 0); /* momentum 0.1 of a nonzero batch mean */
    }
    fprintf(stderr, "  phi 0 at 256x256, batch 1: forward %.2f s, backward %.2f s\n", t1 - t0, t2 - t1);
    uakd_spnnet_free(m);
}

/* phi 6 (group norm) forward at 128x128, inference build. */
static void test_phi6_forward(void) {
    uakd_spnnet_config cfg;
    CHECK_OK(uakd_spnnet_config_phi(6, &cfg));
    cfg.in_w = 128, cfg.in_h = 128;
    uakd_spnnet *m = NULL;
    CHECK_OK(uakd_spnnet_new(&cfg, 1, 0, &m));
    if (!m) return;
    CHECK(uakd_net_layer(m->net, uakd_net_find(m->net, "efficientnet.0.1")).kind == UAKD_LAYER_GROUPNORM);
    CHECK(uakd_net_layer(m->net, uakd_net_find(m->net, "heatmap.bns.0")).kind == UAKD_LAYER_GROUPNORM);
    uakd_rng rng;
    uakd_rng_seed(&rng, 6);
    CHECK_OK(uakd_net_init(m->net, &rng));
    float *x = uakd_net_out(m->net, m->input);
    for (int i = 0; i < 3 * 128 * 128; i++) x[i] = (float)uakd_rng_normal(&rng);
    const double t0 = seconds();
    CHECK_OK(uakd_net_forward(m->net, 1, 0));
    int c, h, w;
    const int64_t n = uakd_net_shape(m->net, m->heatmap, &c, &h, &w);
    CHECK(c == 11 && h == 32 && w == 32);
    int finite = 1;
    for (int64_t i = 0; i < n; i++) finite &= isfinite(uakd_net_out(m->net, m->heatmap)[i]) != 0;
    CHECK(finite);
    uakd_net_shape(m->net, m->p2, &c, NULL, NULL);
    CHECK(c == 384);
    fprintf(stderr, "  phi 6 forward at 128x128: %.2f s\n", seconds() - t0);
    uakd_spnnet_free(m);
}

/* ---- drop-connect ---- */

/* One MBConv block with its skip (8 -> 8 channels, 6x6, expand 2) and a drop-connect mask, for
 * two images; L = sum(y * r). */
typedef struct dc_block {
    uakd_net *net;
    int x, mask, y;
    float r[2 * 8 * 6 * 6];
} dc_block;

static void dc_block_new(dc_block *b, int drop) {
    const uakd_spnnet_norm bn = {0, 1e-3f, 0.01f};
    CHECK_OK(uakd_net_new(2, &b->net));
    b->x = uakd_net_input(b->net, "x", 8, 6, 6, 1);
    b->y = uakd_spnnet_mbconv(b->net, "blk", b->x, 2, 3, 1, 8, &bn, drop);
    CHECK_OK(uakd_net_build(b->net, 1));
    b->mask = uakd_net_find(b->net, "blk.drop_connect");
    uakd_rng rng;
    uakd_rng_seed(&rng, 11);
    CHECK_OK(uakd_net_init(b->net, &rng));
    float *x = uakd_net_out(b->net, b->x);
    for (int i = 0; i < 2 * 8 * 36; i++) x[i] = (float)uakd_rng_normal(&rng), b->r[i] = (float)uakd_rng_normal(&rng);
}

static void dc_set_mask(dc_block *b, float m0, float m1) {
    float *m = uakd_net_out(b->net, b->mask);
    for (int c = 0; c < 8; c++) m[c] = m0, m[8 + c] = m1;
}

static double dc_loss(dc_block *b) {
    CHECK_OK(uakd_net_forward(b->net, 2, 1));
    const float *y = uakd_net_out(b->net, b->y);
    double l = 0;
    for (int i = 0; i < 2 * 8 * 36; i++) l += (double)y[i] * b->r[i];
    return l;
}

static void dc_backward(dc_block *b) {
    uakd_net_zero_grad(b->net);
    dc_loss(b);
    memcpy(uakd_net_grad(b->net, b->y), b->r, sizeof b->r);
    CHECK_OK(uakd_net_backward(b->net, 1, &b->y));
}

/* Mask 1 is the block without drop-connect, bit for bit (outputs and every gradient); a dropped
 * image passes its input through; dropping every image makes dL/dx = r and zeroes every parameter
 * gradient; keeping both at 1/p scales them by 1/p; central differences at a fixed mask (one
 * image dropped, one kept) match the analytic gradients of the parameters and the input. */
static void test_drop_connect_block(void) {
    dc_block a, b;
    dc_block_new(&a, 0);
    dc_block_new(&b, 1);
    CHECK(b.mask >= 0 && uakd_net_find(a.net, "blk.drop_connect") < 0);
    CHECK(uakd_net_num_params(a.net) == uakd_net_num_params(b.net));
    int64_t np, npb;
    uakd_net_params(a.net, &np);
    uakd_net_params(b.net, &npb);
    CHECK(np == npb);
    dc_set_mask(&b, 1, 1);
    dc_backward(&a);
    dc_backward(&b);
    CHECK(!memcmp(uakd_net_out(a.net, a.y), uakd_net_out(b.net, b.y), sizeof a.r));
    CHECK(!memcmp(uakd_net_grad(a.net, a.x), uakd_net_grad(b.net, b.x), sizeof a.r));
    float *ga = uakd_net_grads(a.net, &np), *gb = uakd_net_grads(b.net, &npb);
    CHECK(!memcmp(ga, gb, sizeof(float) * (size_t)np));
    /* both dropped: y = x, no parameter gradient */
    dc_set_mask(&b, 0, 0);
    dc_backward(&b);
    CHECK(!memcmp(uakd_net_out(b.net, b.y), uakd_net_out(b.net, b.x), sizeof b.r));
    int zero = 1;
    for (int64_t i = 0; i < npb; i++) zero &= gb[i] == 0;
    CHECK(zero);
    CHECK(!memcmp(uakd_net_grad(b.net, b.x), b.r, sizeof b.r));
    /* both kept at 1/p: gradients scale by 1/p (float rounding apart) */
    const float inv_p = (float)(1 / 0.8);
    float *g1 = malloc(sizeof(float) * (size_t)npb);
    dc_set_mask(&b, 1, 1);
    dc_backward(&b);
    memcpy(g1, gb, sizeof(float) * (size_t)npb);
    dc_set_mask(&b, inv_p, inv_p);
    dc_backward(&b);
    double worst = 0, big = 0;
    for (int64_t i = 0; i < npb; i++) big = fmax(big, fabs(g1[i]));
    for (int64_t i = 0; i < npb; i++) worst = fmax(worst, fabs(gb[i] - inv_p * g1[i]));
    CHECK_MSG(worst <= 1e-5 * big, "gradients at mask 1/p differ from 1/p x those at 1 by %g (largest %g)", worst, big);
    free(g1);
    /* image 0 dropped, image 1 kept: the dropped image's output is its input (its input gradient
     * is not r: batch norm's batch statistics tie its branch to image 1's loss) */
    dc_set_mask(&b, 0, inv_p);
    dc_backward(&b);
    const float *x = uakd_net_out(b.net, b.x), *y = uakd_net_out(b.net, b.y), *gx = uakd_net_grad(b.net, b.x);
    CHECK(!memcmp(y, x, sizeof(float) * 8 * 36));
    const int cmul = b.mask + 1; /* the channel multiply reads the branch and the mask */
    const uakd_layer_info li = uakd_net_layer(b.net, cmul);
    CHECK(li.kind == UAKD_LAYER_CMUL && li.n_inputs == 2 && li.inputs[1] == b.mask);
    const float *branch = uakd_net_out(b.net, li.inputs[0]);
    int exact = 1;
    for (int i = 8 * 36; i < 2 * 8 * 36; i++) exact &= y[i] == branch[i] * inv_p + x[i];
    CHECK(exact);
    /* central differences at this fixed mask */
    float *params = uakd_net_params(b.net, &npb);
    float *xin = uakd_net_out(b.net, b.x);
    float *gp = malloc(sizeof(float) * (size_t)npb), *gxin = malloc(sizeof b.r);
    memcpy(gp, gb, sizeof(float) * (size_t)npb);
    memcpy(gxin, gx, sizeof b.r);
    uakd_rng rng;
    uakd_rng_seed(&rng, 12);
    int checked = 0;
    for (int t = 0; t < 24; t++) {
        const int on_input = t % 3 == 0;
        float *v = on_input ? xin : params;
        const size_t i = (size_t)uakd_rng_below(&rng, on_input ? 2 * 8 * 36 : (uint64_t)npb);
        const uakd_param *p = NULL;
        for (int q = 0; !on_input && q < uakd_net_num_params(b.net); q++) {
            const uakd_param *pq = uakd_net_param(b.net, q);
            if ((int64_t)i >= pq->offset && (int64_t)i < pq->offset + pq->count) p = pq;
        }
        if (p && (p->flags & UAKD_PARAM_BUFFER)) continue;
        const float h = 1e-2f, keep = v[i];
        v[i] = keep + h;
        const double lp = dc_loss(&b);
        v[i] = keep - h;
        const double lm = dc_loss(&b);
        v[i] = keep;
        const double fd = (lp - lm) / (2 * h), an = on_input ? gxin[i] : gp[i];
        CHECK_MSG(fabs(fd - an) <= 1e-2 * fmax(1, fabs(fd)), "%s[%zu]: finite difference %.6g, analytic %.6g",
                  on_input ? "x" : p->name, i, fd, an);
        checked++;
    }
    CHECK(checked >= 12);
    free(gp), free(gxin);
    uakd_net_free(a.net);
    uakd_net_free(b.net);
}

/* The reduced network with drop-connect: rate r_i = R i / B on the blocks with a skip; a training
 * forward draws each image's mask from the rng (block by block, image by image, keep when
 * uniform < 1 - r_i) and each image's branch is exactly 0 or exactly scaled by 1/p; the same seed
 * gives the same output; other forwards (and inference builds, and R = 0) equal the network
 * without drop-connect bit for bit, and R = 0 draws nothing. */
static void test_drop_connect_network(void) {
    uakd_spnnet_config cfg = {0.25, 0.34, 16, 2, 2, 11, 128, 128, 0, 0, 0.9};
    uakd_spnnet *m = NULL, *plain = NULL, *inf = NULL;
    CHECK_OK(uakd_spnnet_new(&cfg, 4, 1, &m));
    cfg.drop_connect = 0;
    CHECK_OK(uakd_spnnet_new(&cfg, 4, 1, &plain));
    CHECK_OK(uakd_spnnet_new(&cfg, 4, 0, &inf));
    if (!m || !plain || !inf) return;
    CHECK(plain->n_drop == 0 && inf->n_drop == 0 && m->n_drop == 3); /* stages 4-6 have a second block */
    CHECK(uakd_net_num_layers(m->net) == uakd_net_num_layers(plain->net) + 2 * m->n_drop);
    const int blocks = 10; /* ceil(0.34 r) over the 7 stages: 1 + 1 + 1 + 2 + 2 + 2 + 1 */
    static const int block_index[3] = {4, 6, 8};
    for (int d = 0; d < m->n_drop; d++) CHECK_NEAR(m->drop_rate[d], 0.9 * block_index[d] / blocks, 1e-15);
    uakd_spnnet *nets[3] = {m, plain, inf};
    uakd_rng rng;
    for (int k = 0; k < 3; k++) {
        uakd_rng_seed(&rng, 21);
        CHECK_OK(uakd_net_init(nets[k]->net, &rng));
        float *x = uakd_net_out(nets[k]->net, nets[k]->input);
        for (int i = 0; i < 4 * 3 * 128 * 128; i++) x[i] = (float)sin(0.37 * i);
    }
    const size_t nh = 4 * (size_t)uakd_net_shape(m->net, m->heatmap, NULL, NULL, NULL);
    float *h0 = malloc(sizeof(float) * nh);
    /* evaluation forwards: all three equal (BN running statistics: the init's) */
    for (int k = 0; k < 3; k++) CHECK_OK(uakd_spnnet_forward(nets[k], 4, 0, NULL));
    CHECK(!memcmp(uakd_net_out(m->net, m->heatmap), uakd_net_out(plain->net, plain->heatmap), sizeof(float) * nh));
    CHECK(!memcmp(uakd_net_out(m->net, m->heatmap), uakd_net_out(inf->net, inf->heatmap), sizeof(float) * nh));
    /* R = 0 trains exactly as before and draws nothing */
    uakd_rng a, b;
    uakd_rng_seed(&a, 5);
    b = a;
    CHECK_OK(uakd_spnnet_forward(plain, 4, 1, &a));
    CHECK(!memcmp(&a, &b, sizeof a));
    CHECK_FAILS(uakd_spnnet_forward(m, 4, 1, NULL), UAKD_EINVAL);
    /* training forward with drop-connect */
    uakd_rng_seed(&a, 5);
    CHECK_OK(uakd_spnnet_forward(m, 4, 1, &a));
    memcpy(h0, uakd_net_out(m->net, m->heatmap), sizeof(float) * nh);
    uakd_rng_seed(&b, 5);
    int dropped = 0, kept = 0;
    for (int d = 0; d < m->n_drop; d++) {
        const int mask = m->drop_mask[d], cmul = mask + 1, add = mask + 2;
        const uakd_layer_info lc = uakd_net_layer(m->net, cmul), la = uakd_net_layer(m->net, add);
        CHECK(lc.kind == UAKD_LAYER_CMUL && lc.inputs[1] == mask && la.kind == UAKD_LAYER_ADD && la.inputs[0] == cmul);
        if (lc.kind != UAKD_LAYER_CMUL || la.kind != UAKD_LAYER_ADD) break;
        const size_t per = (size_t)uakd_net_shape(m->net, add, NULL, NULL, NULL);
        const float *br = uakd_net_out(m->net, lc.inputs[0]), *in = uakd_net_out(m->net, la.inputs[1]),
                    *y = uakd_net_out(m->net, add);
        const double p = 1 - m->drop_rate[d];
        for (int i = 0; i < 4; i++) {
            const int keep = uakd_rng_uniform(&b) < p;
            int exact = 1;
            for (size_t j = i * per; j < (i + 1) * per; j++) exact &= y[j] == (keep ? br[j] * (float)(1 / p) + in[j] : in[j]);
            CHECK_MSG(exact, "block %d image %d: output is not %s", d, i, keep ? "x + branch / p" : "x");
            dropped += !keep, kept += keep;
        }
    }
    CHECK(!memcmp(&a, &b, sizeof a)); /* exactly n_drop x 4 draws */
    CHECK(dropped > 0 && kept > 0);
    /* the same seed gives the same output */
    uakd_rng_seed(&a, 5);
    CHECK_OK(uakd_spnnet_forward(m, 4, 1, &a));
    CHECK(!memcmp(h0, uakd_net_out(m->net, m->heatmap), sizeof(float) * nh));
    free(h0);
    for (int k = 0; k < 3; k++) uakd_spnnet_free(nets[k]);
}

static void test_config_errors(void) {
    uakd_spnnet_config cfg;
    CHECK_FAILS(uakd_spnnet_config_phi(2, &cfg), UAKD_EINVAL);
    CHECK_OK(uakd_spnnet_config_phi(0, &cfg));
    cfg.in_w = 700;
    uakd_spnnet *m = NULL;
    CHECK_FAILS(uakd_spnnet_new(&cfg, 1, 0, &m), UAKD_EINVAL);
    CHECK(m == NULL);
    CHECK_OK(uakd_spnnet_config_phi(0, &cfg));
    cfg.in_w = cfg.in_h = 128, cfg.group_norm = 1, cfg.bifpn_width = 24; /* 24 channels, groups of 16 */
    CHECK_FAILS(uakd_spnnet_new(&cfg, 1, 0, &m), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "groupnorm") != NULL);
    CHECK_OK(uakd_spnnet_config_phi(0, &cfg));
    CHECK(cfg.drop_connect == 0.2);
    cfg.in_w = cfg.in_h = 128, cfg.drop_connect = 1;
    CHECK_FAILS(uakd_spnnet_new(&cfg, 1, 1, &m), UAKD_EINVAL);
    cfg.drop_connect = -0.1;
    CHECK_FAILS(uakd_spnnet_new(&cfg, 1, 1, &m), UAKD_EINVAL);
}

int main(void) {
    RUN(test_parity_mbconv);
    RUN(test_parity_bifpn);
    RUN(test_parity_head);
    RUN(test_parity_full);
    RUN(test_round_channels);
    RUN(test_full_size_counts);
    RUN(test_phi0_train_step);
    RUN(test_phi6_forward);
    RUN(test_drop_connect_block);
    RUN(test_drop_connect_network);
    RUN(test_config_errors);
    return TEST_END();
}
